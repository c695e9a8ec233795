"""The ``horizongym`` command: list, play, rollout, show, serve, train, kernels, sandbox, swe.

``kernels``, ``sandbox`` and ``swe`` live next to their packages (each module's ``add_*_commands``);
``train`` takes its flags from :class:`~horizongym.training.config.TrainConfig`. Torch,
transformers and the trainer load only inside ``serve`` and ``train``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import sys
from collections.abc import Collection, Mapping
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from gymnasium.envs.registration import load_env_creator
from pydantic import BaseModel, ValidationError

import horizongym
from horizongym.agents.base import PolicyError
from horizongym.agents.human import HumanPolicy
from horizongym.agents.specs import SPEC_HELP, PolicySpecError, make_policy
from horizongym.envs import TextEnv, UnknownEnvironment, describe, registry, short_id
from horizongym.envs.kernels.cli import add_kernel_commands
from horizongym.envs.swe.cli import add_swe_commands
from horizongym.sandboxes.cli import add_sandbox_commands
from horizongym.tools import Tool, is_tool
from horizongym.training.config import TrainConfig
from horizongym.training.rollouts import EnvRecipe, EpisodeStore, RolloutEngine, RolloutError, read_episodes
from horizongym.training.rollouts.cli import add_replay_commands
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
    try:
        kwargs = _parse_json_object(args.env_kwargs) if args.env_kwargs else {}
    except ValueError as exc:
        raise CommandError(f"--env-kwargs {exc}") from None
    if getattr(args, "tasks", None):
        kwargs["tasks"] = args.tasks
    return kwargs


def _parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object ``text``; a ValueError saying what is wrong otherwise."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object, e.g. '{\"max_turns\": 8}'")
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
        except (PolicyError, RolloutError) as exc:
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


TRAIN_ENV_FIELDS = frozenset({"env_id", "env_kwargs"})
"""TrainConfig fields set by the options every env command shares: ENV_ID and --env-kwargs/--data."""

TRAIN_FLAGS = {"group_size": "--group", "out_dir": "--out"}
"""TrainConfig fields whose flag is not ``--kebab-case`` of the name (these are the names ``rollout`` uses)."""


def config_flag(name: str, flags: Mapping[str, str]) -> str:
    """The flag of the config field ``name``: ``flags[name]``, else ``--`` and the name in kebab-case."""
    return flags.get(name, "--" + name.replace("_", "-"))


def add_config_flags(
    parser: argparse.ArgumentParser, model: type[BaseModel], *, skip: Collection[str], flags: Mapping[str, str]
) -> None:
    """One flag per field of ``model`` (but ``skip``): its type, its default, its description as help.

    ``X | None`` takes X; ``Literal`` values become choices; ``bool`` becomes ``--flag/--no-flag``;
    a ``dict`` is read as a JSON object. The parsed value lands under the field's name.
    """
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        default = field.get_default(call_default_factory=True)
        help_text = _field_help(field.description or "", model, flags)
        if default is not None and not isinstance(default, bool):  # argparse shows a bool's default itself
            help_text = f"{help_text.removesuffix('.')} (default: {_shown(default)})"
        options = _argument_options(f"{model.__name__}.{name}", field.annotation)
        parser.add_argument(config_flag(name, flags), dest=name, default=default, help=help_text, **options)


def _shown(default: Any) -> str:
    """A default as the help text shows it: JSON for a dict, ``1e-05`` style for a float."""
    if isinstance(default, dict):
        return json.dumps(default)
    return f"{default:g}" if isinstance(default, float) else str(default)


def _field_help(description: str, model: type[BaseModel], flags: Mapping[str, str]) -> str:
    """``description`` on one line, each ````field```` of ``model`` named by its flag, ``%`` escaped for argparse."""
    parts = description.split("``")
    for i in range(1, len(parts), 2):
        if parts[i] in model.model_fields:
            parts[i] = config_flag(parts[i], flags)
    return " ".join("".join(parts).split()).replace("%", "%%")


def _argument_options(where: str, annotation: Any) -> dict[str, Any]:
    """argparse options (type, choices, action, metavar) that read a value of type ``annotation``."""
    if get_origin(annotation) in (Union, UnionType):
        kinds = [a for a in get_args(annotation) if a is not type(None)]
        if len(kinds) != 1:
            raise TypeError(f"{where}: no flag reads a {annotation}; use one type, or X | None")
        annotation = kinds[0]
    if get_origin(annotation) is Literal:
        choices = get_args(annotation)
        return {"choices": choices, "type": type(choices[0])}
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction}
    if get_origin(annotation) is dict or annotation is dict:
        return {"type": _json_object, "metavar": "JSON"}
    metavars: dict[Any, str] = {int: "N", float: "X", str: "TEXT"}
    if annotation not in metavars:
        raise TypeError(f"{where}: no flag reads a {annotation}; use int, float, str, bool, Literal or dict")
    return {"type": annotation, "metavar": metavars[annotation]}


def _json_object(text: str) -> dict[str, Any]:
    """argparse type of dict fields: a JSON object."""
    try:
        return _parse_json_object(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of parsed ``train`` arguments (one field per flag, env options merged)."""
    values = {name: getattr(args, name) for name in TrainConfig.model_fields if name not in TRAIN_ENV_FIELDS}
    try:
        return TrainConfig(env_id=args.env_id, env_kwargs=_env_kwargs(args), **values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{config_flag(str(e['loc'][0]), TRAIN_FLAGS) if e['loc'] else 'settings'}: {e['msg']}"
            for e in exc.errors()
        )
        raise CommandError(f"bad training settings: {problems}") from None


def cmd_train(args: argparse.Namespace) -> None:
    from horizongym.training.trainer import Trainer

    horizongym.spec(args.env_id)
    config = train_config(args)
    out = Path(config.out_dir)
    if not args.resume and ((out / "metrics.jsonl").exists() or (out / "checkpoints").exists()):
        raise CommandError(f"{out} already holds a training run: pass --resume to continue it, or choose another --out")
    model, tokenizer = _train_model(args.policy, out, config.seed)
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


def _add_env_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-kwargs", metavar="JSON", help="JSON object of keyword arguments for the env")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="horizongym",
        description=(horizongym.__doc__ or "").partition("\n\n")[0],
        epilog="'horizongym COMMAND --help' lists a command's options.",
    )
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

    p = commands.add_parser(
        "train",
        help="train a transformers model on an environment with RL",
        usage="%(prog)s ENV_ID [--policy tiny|hf:PATH] [--out DIR] [--resume] [--SETTING VALUE ...]",
    )
    p.add_argument("env_id")
    p.add_argument("--policy", default="tiny", help="tiny (a small random model built in OUT/init) or hf:PATH")
    add_config_flags(p, TrainConfig, skip=TRAIN_ENV_FIELDS, flags=TRAIN_FLAGS)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_env_options(p)
    p.set_defaults(run=cmd_train)

    add_kernel_commands(commands)
    add_sandbox_commands(commands)
    add_swe_commands(commands)
    add_replay_commands(commands)
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
