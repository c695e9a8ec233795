"""The ``horizongym`` command: list, play, rollout, show, serve, train, kernels, sandbox, swe."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from gymnasium.envs.registration import load_env_creator

import horizongym
from horizongym.agents.base import PolicyError
from horizongym.agents.human import HumanPolicy
from horizongym.agents.specs import SPEC_HELP, PolicySpecError, make_policy
from horizongym.envs import TextEnv, UnknownEnvironment, describe, registry, short_id
from horizongym.sandboxes.cli import add_sandbox_commands
from horizongym.tools import Tool, is_tool
from horizongym.training.rollouts import EnvRecipe, EpisodeStore, RolloutEngine, read_episodes
from horizongym.training.rollouts.report import episodes_html
from horizongym.training.rollouts.summary import format_table, summarize


class CommandError(Exception):
    """A user mistake: printed as one line, exit status 2."""


def _tool_names(env_id: str) -> list[str]:
    entry = horizongym.spec(env_id).entry_point
    creator = load_env_creator(entry) if isinstance(entry, str) else entry
    if not (inspect.isclass(creator) and issubclass(creator, TextEnv)):
        return []
    return sorted(
        Tool(member).name for _, member in inspect.getmembers(creator) if callable(member) and is_tool(member)
    )


def _import_modules(args: argparse.Namespace) -> None:
    """Import the modules named by --import, so the environments they register can be used."""
    modules = getattr(args, "imports", None) or []
    if modules and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise CommandError(f"cannot import '{module}' (from --import): {exc}") from None


def cmd_list(args: argparse.Namespace) -> None:
    rows = []
    for env_id in sorted(registry):
        name = short_id(env_id)
        rows.append((name, describe(name), ", ".join(_tool_names(name)) or "-"))
    if args.json:
        print(json.dumps([{"id": r[0], "description": r[1], "tools": r[2].split(", ")} for r in rows], indent=2))
        return
    width = max((len(r[0]) for r in rows), default=2)
    for name, text, tools in rows:
        print(f"{name.ljust(width)}  {text}\n{' ' * width}  tools: {tools}")


def _env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """--env-kwargs, with --tasks as a shorthand for its "tasks" entry."""
    kwargs = _parse_kwargs(args.env_kwargs)
    if getattr(args, "tasks", None):
        kwargs["tasks"] = args.tasks
    return kwargs


def _parse_kwargs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--env-kwargs is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise CommandError("--env-kwargs must be a JSON object, e.g. '{\"max_turns\": 8}'")
    return value


def cmd_play(args: argparse.Namespace) -> None:
    env = horizongym.make(args.env_id, **_env_kwargs(args))
    human = HumanPolicy()
    observation, info = env.reset(seed=args.seed)
    print(f"== {args.env_id} · task {info.get('task_id')} · seed {args.seed}")
    print("Type an action (tool call or text). '/tools' lists tools, '/quit' stops; end a line with \\ to continue.")
    print(f"\n{observation}\n")
    total = 0.0
    while True:
        try:
            action = asyncio.run(human.act([], info.get("tools", [])))
        except PolicyError:
            print("\nstopped.")
            break
        observation, reward, terminated, truncated, info = env.step(action.text)
        total += float(reward)
        components = ", ".join(f"{k} {v:+g}" for k, v in info.get("reward_components", {}).items())
        detail = f" ({components})" if components else ""
        print(f"\n{observation}\n[reward {float(reward):+g}{detail} · total {total:+g}]\n")
        if terminated or truncated:
            print(f"episode over: {info.get('termination_reason', 'done')} · total reward {total:+g}")
            break
    env.close()


def cmd_rollout(args: argparse.Namespace) -> None:
    horizongym.spec(args.env_id)
    try:
        policy = make_policy(args.policy, args.env_id, temperature=args.temperature, max_tokens=args.max_tokens)
    except PolicySpecError as exc:
        raise CommandError(str(exc)) from None
    out = Path(args.out)
    if out.is_dir():
        raise CommandError(f"--out {out} is a folder; give a file path such as {out / 'episodes.jsonl'}")
    if out.exists() and out.stat().st_size > 0 and not args.resume:
        raise CommandError(f"{out} already holds episodes: pass --resume to continue that run, or choose another --out")
    recipe = EnvRecipe(args.env_id, _env_kwargs(args))

    async def run() -> None:
        check = getattr(policy, "check", None)
        try:
            if check is not None:
                served = await check()
                model = getattr(policy, "model", None)
                if served and model not in served:
                    print(f"warning: {model!r} is not among the served models {served}", file=sys.stderr)
            with (
                EpisodeStore(out) as store,
                RolloutEngine(
                    recipe,
                    policy,
                    concurrency=args.concurrency,
                    max_turns=args.max_turns,
                    episode_timeout_s=args.timeout,
                    store=store,
                    system_prompt=args.system_prompt,
                    progress=not args.quiet,
                ) as engine,
            ):
                await engine.run(args.n, args.group, seed=args.seed, resume=args.resume)
        except PolicyError as exc:
            raise CommandError(str(exc)) from None
        finally:
            await policy.aclose()

    asyncio.run(run())
    episodes = [e for e in read_episodes(out) if e.env_id == args.env_id]
    print(format_table(summarize(episodes)))
    print(f"episodes: {out}")


def cmd_show(args: argparse.Namespace) -> None:
    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"no episode file at {path}")
    episodes = read_episodes(path)
    if not episodes:
        raise CommandError(f"{path} holds no episodes")
    print(format_table(summarize(episodes)))
    if args.html:
        Path(args.html).write_text(episodes_html(episodes, f"horizongym · {path.name}"), encoding="utf-8")
        print(f"page: {args.html}")


def cmd_serve(args: argparse.Namespace) -> None:
    model_dir = Path(args.model_dir)
    if not (model_dir / "config.json").is_file():
        raise CommandError(f"no model at {model_dir}: expected a folder written by save_pretrained (with config.json)")
    from horizongym.agents.serving import serve

    serve(
        str(model_dir),
        host=args.host,
        port=args.port,
        model_name=args.model_name,
        max_batch_size=args.max_batch_size,
        max_new_tokens=args.max_new_tokens,
    )


def _train_model(spec: str, out: Path, seed: int) -> tuple[Any, Any]:
    """The initial model and tokenizer of ``train --policy``: ``tiny`` (built in OUT/init) or ``hf:PATH``."""
    if spec == "tiny":
        from horizongym.agents.tiny import build_tiny_model

        path = out / "init"
        if not (path / "config.json").is_file():
            build_tiny_model(path, seed=seed)
    elif spec.startswith("hf:"):
        path = Path(spec.removeprefix("hf:")).expanduser()
        if not (path / "config.json").is_file():
            raise CommandError(f"no model at '{path}': expected a folder written by save_pretrained (with config.json)")
    else:
        raise CommandError(f"train needs --policy tiny or --policy hf:PATH, not '{spec}'")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot load a model from {path}: {exc}") from None
    return model, tokenizer


def cmd_train(args: argparse.Namespace) -> None:
    from pydantic import ValidationError

    from horizongym.training.trainer import TrainConfig, Trainer

    horizongym.spec(args.env_id)
    out = Path(args.out)
    try:
        config = TrainConfig(
            env_id=args.env_id,
            env_kwargs=_env_kwargs(args),
            advantage=args.advantage,
            group_size=args.group,
            tasks_per_step=args.tasks_per_step,
            steps=args.steps,
            lr=args.lr,
            ppo_epochs=args.ppo_epochs,
            micro_batch_size=args.micro_batch_size,
            grad_accumulation=args.grad_accumulation,
            clip_low=args.clip_low,
            clip_high=args.clip_high,
            ratio_level=args.ratio_level,
            kl_coef=args.kl_coef,
            lora_rank=args.lora_rank,
            precision=args.precision,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            max_turns=args.max_turns,
            system_prompt=args.system_prompt,
            eval_every=args.eval_every,
            eval_tasks=args.eval_tasks,
            checkpoint_every=args.checkpoint_every,
            seed=args.seed,
            out_dir=str(out),
            dp_size=args.dp_size,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise CommandError(f"bad training settings: {problems}") from None
    if not args.resume and ((out / "metrics.jsonl").exists() or (out / "checkpoints").exists()):
        raise CommandError(f"{out} already holds a training run: pass --resume to continue it, or choose another --out")
    model, tokenizer = _train_model(args.policy, out, args.seed)
    trainer = Trainer(config, model, tokenizer, progress=not args.quiet)
    try:
        records = trainer.train(resume=args.resume)
    except (PolicyError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if records:
        last = records[-1]
        print(f"step {last['step']}: reward {last['reward_mean']:.3f}, success {last['success_rate']:.1%}")
    print(f"metrics: {out / 'metrics.jsonl'}")
    print(f"checkpoints: {out / 'checkpoints'}")


def cmd_kernels_tasks(args: argparse.Namespace) -> None:
    from horizongym.envs.kernels.data import load_kernel_tasks

    tasks = load_kernel_tasks(args.tasks, [args.level] if args.level else None)
    width = max(len(task.id) for task in tasks)
    for task in tasks:
        print(f"{task.id.ljust(width)}  {task.description}")


def cmd_kernels_eval(args: argparse.Namespace) -> None:
    from horizongym.envs.kernels.data import load_kernel_tasks
    from horizongym.envs.kernels.env import evaluation_info
    from horizongym.envs.kernels.evaluator import KernelEvaluator
    from horizongym.envs.kernels.feedback import describe
    from horizongym.envs.kernels.rewards import make_scheme

    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"no candidate file at {path}")
    task = next((t for t in load_kernel_tasks(args.tasks) if args.task in (t.name, t.id)), None)
    if task is None:
        raise CommandError(f"no task {args.task!r}; see 'horizongym kernels tasks'")
    try:
        evaluator = KernelEvaluator(args.backend, trials=args.trials, threads=args.threads)
        scheme = make_scheme(args.reward)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    result = evaluator.evaluate(task, path.read_text())
    components = scheme.components(result)
    if args.json:
        print(json.dumps({**evaluation_info(result), "reward_components": components}, indent=2))
    else:
        print(describe(result, components, threads=evaluator.threads, turns_left=0))


def _add_env_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-kwargs", help="JSON object of keyword arguments for the env")
    parser.add_argument("--tasks", help="the env's task source (same as --env-kwargs '{\"tasks\": ...}')")
    _add_import_option(parser)


def _add_import_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        metavar="MODULE",
        help="import MODULE first (a module of yours that registers environments); repeatable",
    )


def cmd_swe_mine(args: argparse.Namespace) -> None:
    from horizongym.envs.swe.mining import MiningError, mine_report
    from horizongym.envs.swe.packages import SourceError
    from horizongym.envs.swe.types import save_instances
    from horizongym.sandboxes import SandboxError

    try:
        report = mine_report(
            args.package,
            max_candidates=args.max_candidates,
            max_tasks=args.max_tasks,
            seed=args.seed,
            workers=args.workers,
        )
    except (MiningError, SourceError, SandboxError) as exc:
        raise CommandError(str(exc)) from None
    save_instances(args.out, report.instances)
    print(
        f"{report.source}: {report.candidates} mutation sites, {report.tried} mutants tried, "
        f"rejected {json.dumps(report.rejected)}, {report.seconds:.0f} s{' (cached)' if report.from_cache else ''}"
    )
    print(f"{len(report.instances)} validated instances written to {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="horizongym", description=horizongym.__doc__)
    parser.add_argument("--version", action="version", version=horizongym.__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("list", help="registered environments, with their tools")
    p.add_argument("--json", action="store_true")
    _add_import_option(p)
    p.set_defaults(run=cmd_list)

    p = commands.add_parser("play", help="play an environment yourself at the terminal")
    p.add_argument("env_id")
    p.add_argument("--seed", type=int, default=0)
    _add_env_options(p)
    p.set_defaults(run=cmd_play)

    p = commands.add_parser("rollout", help="run episodes with a policy and store them as JSONL")
    p.add_argument("env_id")
    p.add_argument("--policy", default="expert", help=SPEC_HELP)
    p.add_argument("-n", type=int, default=16, help="number of tasks (seeds seed..seed+n-1)")
    p.add_argument("--group", type=int, default=1, help="samples per task")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/episodes.jsonl")
    p.add_argument("--resume", action="store_true", help="continue --out, skipping finished episodes")
    p.add_argument("--max-turns", type=int, help="engine-side turn limit per episode")
    p.add_argument("--timeout", type=float, help="wall-clock limit per episode, seconds")
    p.add_argument("--system-prompt")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-tokens", type=int, help="completion length limit (default: the server's or 256 for hf:)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_env_options(p)
    p.set_defaults(run=cmd_rollout)

    p = commands.add_parser("show", help="summarize a JSONL episode file")
    p.add_argument("file")
    p.add_argument("--html", help="also write a page of every episode to this path")
    p.set_defaults(run=cmd_show)

    p = commands.add_parser("serve", help="OpenAI-compatible server for a local transformers model")
    p.add_argument("model_dir")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model-name", help="id clients use (default: the folder name)")
    p.add_argument("--max-batch-size", type=int, default=16, help="requests generated together")
    p.add_argument("--max-new-tokens", type=int, default=1024, help="completion limit when a request sets none")
    p.set_defaults(run=cmd_serve)

    p = commands.add_parser("train", help="train a transformers model on an environment with RL")
    p.add_argument("env_id")
    p.add_argument("--policy", default="tiny", help="tiny (a small random model built in OUT/init) or hf:PATH")
    p.add_argument("--advantage", default="eapo", choices=("grpo", "eapo", "hcapo", "eapo+hcapo", "hca"))
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--group", type=int, default=4, help="episodes per task")
    p.add_argument("--tasks-per-step", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--ppo-epochs", type=int, default=1)
    p.add_argument("--micro-batch-size", type=int, default=4)
    p.add_argument("--grad-accumulation", type=int, help="micro-batches per optimizer step (default: all)")
    p.add_argument("--clip-low", type=float, default=0.2)
    p.add_argument("--clip-high", type=float, default=0.2)
    p.add_argument("--ratio-level", choices=("token", "sequence"), default="token", help="PPO or GSPO ratios")
    p.add_argument("--kl-coef", type=float, default=0.0, help="weight of the KL penalty to the initial model")
    p.add_argument("--lora-rank", type=int, help="train LoRA adapters of this rank instead of every weight")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-turns", type=int, help="engine-side turn limit per episode")
    p.add_argument("--system-prompt")
    p.add_argument("--eval-every", type=int, default=0, help="evaluate on held-out tasks every K steps (0: never)")
    p.add_argument("--eval-tasks", type=int, default=16)
    p.add_argument("--checkpoint-every", type=int, default=0, help="checkpoint every K steps (0: at the end only)")
    p.add_argument("--dp-size", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/train")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_env_options(p)
    p.set_defaults(run=cmd_train)

    kernels = commands.add_parser("kernels", help="KernelGen tasks, and evaluating a kernel file").add_subparsers(
        dest="kernels_command", required=True
    )
    p = kernels.add_parser("tasks", help="list the kernel tasks")
    p.add_argument("--level", type=int, choices=(1, 2, 3))
    p.add_argument("--tasks", default="catalog", help="catalog (built in) or kernelbench:PATH")
    p.set_defaults(run=cmd_kernels_tasks)
    p = kernels.add_parser("eval", help="build, check and time a candidate file, as KernelGen-v0 does")
    p.add_argument("task", help="task name or id, e.g. softmax or L1/softmax")
    p.add_argument("file", help="Python file defining ModelNew")
    p.add_argument("--backend", default="auto", help="auto, cpu, cuda or compile-only")
    p.add_argument("--reward", default="kevin", help="kevin or milestones")
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tasks", default="catalog", help="catalog (built in) or kernelbench:PATH")
    p.add_argument("--json", action="store_true", help="print the evaluation as JSON")
    p.set_defaults(run=cmd_kernels_eval)

    add_sandbox_commands(commands)
    swe = commands.add_parser("swe", help="SWE-v0 tasks: mine validated bugs from a package").add_subparsers(
        dest="swe_command", required=True
    )
    p = swe.add_parser("mine", help="mine validated SWE tasks from NAME==VERSION (a PyPI sdist) or embedded:NAME")
    p.add_argument("package", help="e.g. inflection==0.5.1, or embedded:textkit")
    p.add_argument("--out", required=True, help="JSONL file for the instances")
    p.add_argument("--max-candidates", type=int, default=60, help="mutants to try at most")
    p.add_argument("--max-tasks", type=int, default=12, help="validated instances to keep at most")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="sandboxes used side by side")
    p.set_defaults(run=cmd_swe_mine)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _import_modules(args)
        args.run(args)
    except (CommandError, UnknownEnvironment) as exc:
        print(f"horizongym: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
