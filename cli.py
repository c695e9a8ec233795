"""The ``horizongym`` command: list, play, rollout, show, team-graph, view, serve, train, kernels, sandbox, swe.

``kernels``, ``sandbox`` and ``swe`` live next to their packages (each module's ``add_*_commands``);
``train`` takes its flags from :class:`~horizongym.training.config.TrainConfig`. Torch,
transformers and the trainer load only inside ``serve`` and ``train``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import json
import sys
import traceback
import warnings
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from types import UnionType
from typing import Any, Literal, NoReturn, Union, get_args, get_origin

from gymnasium.envs.registration import load_env_creator
from pydantic import BaseModel, ValidationError

import horizongym
from horizongym.agents.base import PolicyError
from horizongym.agents.specs import SPEC_HELP, PolicySpecError, make_policy
from horizongym.argtypes import os_error, unwritable_out
from horizongym.envs import TextEnv, UnknownEnvironment, describe, registry, short_id
from horizongym.envs.kernels.cli import add_kernel_commands
from horizongym.envs.registration import is_env_url
from horizongym.envs.swe.cli import add_swe_commands
from horizongym.envs.tasklist import is_task_list_env
from horizongym.failures import InfrastructureError
from horizongym.sandboxes.cli import add_sandbox_commands
from horizongym.tools import Tool, is_tool
from horizongym.training.config import TrainConfig
from horizongym.training.rollouts import EnvRecipe, Episode, EpisodeStore, RolloutEngine, RolloutError, read_episodes
from horizongym.training.rollouts.cli import add_export_commands, add_replay_commands
from horizongym.training.rollouts.failure_report import all_failed_line, failed_episodes, failure_report
from horizongym.training.rollouts.fork_play import (
    FORK_HELP,
    SOURCE_FORM,
    ForkError,
    NotReproduced,
    fork_env,
    load_fork,
    parse_fork_source,
    play_at_keyboard,
    reach_fork,
    save_branch,
)
from horizongym.training.rollouts.report import episodes_html
from horizongym.training.rollouts.store import EpisodeFileWarning, NotAnEpisodeFile, RunFileError, read_run
from horizongym.training.rollouts.summary import format_table, summarize
from horizongym.training.rollouts.tree import BranchAt, parse_branch_at


class CommandError(Exception):
    """A user mistake: printed as one line, exit status 2."""

    status = 2


class RunFailed(CommandError):
    """The command ran but failed at its job (every episode failed, the env raised): one line, exit status 1."""

    status = 1


class _Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one line (what is wrong, and where the help is), exit status 2.

    ``add_later(add)``: options whose declaration imports something heavy are added by ``add(parser)``
    only when this parser parses or shows its help (``train``'s team flags need torch).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._later: list[Callable[[argparse.ArgumentParser], None]] = []

    def add_later(self, add: Callable[[argparse.ArgumentParser], None]) -> None:
        self._later.append(add)

    def _add_now(self) -> None:
        while self._later:
            self._later.pop(0)(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[Any, list[str]]:
        self._add_now()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._add_now()
        return super().format_help()

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see '{self.prog} --help')\n")


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
        except Exception as exc:  # the module itself raised (or is not valid Python)
            raise CommandError(
                f"cannot import '{module}' (from --import): it raised {_exception_line(exc)}; fix the module"
            ) from None


def cmd_list(args: argparse.Namespace) -> None:
    """One row per registered env; an env whose entry point does not load is listed with why, then exit 1."""
    rows, broken = [], []
    for env_id in sorted(registry):
        name = short_id(env_id)
        try:
            rows.append((name, describe(name), ", ".join(_tool_names(name)) or "-"))
        except Exception as exc:
            entry = horizongym.spec(name).entry_point
            rows.append((name, f"CANNOT LOAD its entry point {entry!r}: {_exception_line(exc)}", "-"))
            broken.append(name)
    if args.json:
        print(json.dumps([{"id": r[0], "description": r[1], "tools": r[2].split(", ")} for r in rows], indent=2))
    else:
        width = max((len(r[0]) for r in rows), default=2)
        for name, text, tools in rows:
            print(f"{name.ljust(width)}  {text}\n{' ' * width}  tools: {tools}")
    if broken:
        raise RunFailed(f"{', '.join(broken)}: registered, but the entry point does not load; fix its register() call")


def _env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """--env-kwargs, with --tasks as a shorthand for its "tasks" entry."""
    try:
        kwargs = _parse_json_object(args.env_kwargs) if args.env_kwargs is not None else {}
    except ValueError as exc:
        raise CommandError(f"--env-kwargs {exc}") from None
    if getattr(args, "tasks", None) is not None:
        kwargs["tasks"] = args.tasks
    return kwargs


def _parse_json_object(text: object) -> dict[str, Any]:
    """The JSON object ``text``; a ValueError saying what is wrong otherwise.

    ``text`` is what argparse gives: a str, or ``[]`` for ``--flag=--`` (argparse drops a ``--``).
    """
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError) as exc:  # a number too long, nesting too deep, not JSON
        raise ValueError(f"is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object, e.g. '{\"max_turns\": 8}'")
    return value


def _one_line(text: str) -> str:
    """``text`` on one line: its lines joined with `` / ``."""
    return " / ".join(line.strip() for line in text.splitlines() if line.strip())


def _exception_line(exc: BaseException) -> str:
    """``Type: message (at FILE:LINE)``, on one line, for an exception the user should see."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")]
    origin = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {_one_line(str(exc))}{origin}"


def _settings(args: argparse.Namespace, flag: str = "--env-kwargs") -> tuple[str, str]:
    """How the env's settings were given on the command line (``--env-kwargs '{...}' --tasks X``), and
    the flags to fix."""
    given = [(flag, getattr(args, flag.removeprefix("--").replace("-", "_"), None))]
    if flag == "--env-kwargs":
        given.append(("--tasks", getattr(args, "tasks", None)))
    named = [(name, value) for name, value in given if value is not None]
    if not named:
        return "its default settings", "check how the env is registered and its code"
    shown = " ".join(f"{name} {value if isinstance(value, str) else json.dumps(value)}" for name, value in named)
    return shown, "fix " + " or ".join(name for name, _ in named)


def _env_keywords(env_id: str) -> list[str]:
    """The keyword arguments the constructor of ``env_id`` takes, along its ``**kwargs`` chain."""
    entry = horizongym.spec(env_id).entry_point
    creator = load_env_creator(entry) if isinstance(entry, str) else entry
    if creator is None:
        return []
    functions: list[Callable[..., Any]] = (
        [c.__init__ for c in creator.__mro__ if "__init__" in vars(c)] if inspect.isclass(creator) else [creator]
    )
    names: set[str] = set()
    for function in functions:
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            break
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        names.update(p.name for p in parameters if p.kind in kinds and p.name != "self")
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            break
    return sorted(names)


def _build_env(
    env_id: str, kwargs: dict[str, Any], args: argparse.Namespace, *, flag: str = "--env-kwargs", what: str = ""
) -> Any:
    """``horizongym.make(env_id, **kwargs)``; a constructor that raises is one line naming the value and the fix."""
    try:
        return horizongym.make(env_id, disable_env_checker=True, **kwargs)
    except Exception as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, type(exc)) else exc  # Gymnasium re-raises a TypeError
        shown, fix = _settings(args, flag)
        hint = ""
        if isinstance(cause, TypeError) and "keyword argument" in str(cause):
            hint = f"; {env_id} takes {', '.join(_env_keywords(env_id)) or 'no keyword arguments'}"
        raise CommandError(
            f"cannot build {what}{env_id} with {shown}: {type(cause).__name__}: {_one_line(str(cause))}{hint}; {fix}"
        ) from None


def _check_env(env_id: str, kwargs: dict[str, Any], args: argparse.Namespace, **options: str) -> None:
    """Build the env once and close it, so that a bad setting fails before anything slow starts."""
    env = _build_env(env_id, kwargs, args, **options)
    env.close()


def _checked_out_path(value: str) -> Path:
    """``--out`` FILE: a file path whose folder can be created and written (checked before a long run)."""
    out = Path(value)
    problem = unwritable_out(out, "episodes.jsonl")
    if problem is not None:
        raise CommandError(problem)
    return out


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type: a ``kind`` number above zero (``int`` or ``float``)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _port(text: str) -> int:
    """An argparse type: a TCP port number, 0 to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, got {value}")
    return value


def _non_negative(text: str) -> float:
    """An argparse type: a float of at least 0 (a temperature)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def cmd_play(args: argparse.Namespace) -> None:
    if args.from_run is not None:
        _play_from(args)
        return
    if args.no_save:
        raise CommandError("--no-save goes with --from (plain play saves nothing)")
    if args.env_id is None:
        raise CommandError(f"play needs ENV_ID, or --from {SOURCE_FORM} to play on from a recorded turn")
    args.seed = 0 if args.seed is None else args.seed
    env = _build_env(args.env_id, _env_kwargs(args), args)
    try:
        _play(env, args)
    finally:
        env.close()


_PLAY_HELP = "Type an action (tool call or text). '/tools' lists tools, '/quit' stops; end a line with \\ to continue."


def _play(env: Any, args: argparse.Namespace) -> None:
    """The keyboard loop of ``play``; an env that raises ends it with one line (exit status 1)."""
    try:
        observation, info = env.reset(seed=args.seed)
    except Exception as exc:
        raise _env_raised(args, f"reset (seed {args.seed})", exc) from None
    print(f"== {args.env_id} · task {info.get('task_id')} · seed {args.seed}")
    print(_PLAY_HELP)
    print(f"\n{observation}\n")
    played = play_at_keyboard(env, observation, info)
    if played.raised is not None:
        raise _env_raised(args, f"step {len(played.steps) + 1}", played.raised)


def _play_from(args: argparse.Namespace) -> None:
    """``play --from RUN.jsonl#EPISODE:TURN`` (:mod:`~horizongym.training.rollouts.fork_play`): replay the
    episode to the turn, hand the keyboard over, store the continuation as a branch of the episode."""
    given = [
        flag
        for flag, value in (("--seed", args.seed), ("--env-kwargs", args.env_kwargs), ("--tasks", args.tasks))
        if value is not None
    ]
    if given:
        raise CommandError(f"--from plays the episode with its own seed and env settings: drop {' and '.join(given)}")
    try:
        source = parse_fork_source(args.from_run)
        original = load_fork(source, args.env_id)
        env = fork_env(original)
    except ForkError as exc:
        raise CommandError(str(exc)) from None
    try:
        try:
            reached = reach_fork(env, original, source.turn)
        except NotReproduced as exc:
            raise RunFailed(f"cannot play on from {source}: {exc}") from None
        kept = original.steps[: source.turn]
        print(f"== {original.env_id} · task {original.task_id} · seed {original.seed} · on from {source}")
        print(f"replayed {len(kept)} recorded turn{'s' if len(kept) != 1 else ''}; the env answered each as recorded")
        for step in kept:
            print(f"  turn {step.turn}: {_one_line(step.action)[:100]}")
        print(_PLAY_HELP)
        print(f"\n{reached.observation}\n")
        played = play_at_keyboard(
            env, reached.observation, reached.info, turn=source.turn, total=sum(s.reward for s in kept)
        )
        if not played.steps and played.raised is None:
            print("no turn played: nothing saved")
        elif args.no_save:
            print("not saved (--no-save)")
        else:
            try:
                branch = save_branch(source, original, played, env)
            except OSError as exc:
                raise RunFailed(f"cannot save the branch to {source.path}: {os_error(exc)}") from None
            print(f"saved: branch {branch.branch} of episode {source.episode} (seed {branch.seed}) in {source.path}")
        if played.raised is not None:
            where = f"step {source.turn + len(played.steps) + 1} (on from {source})"
            raise RunFailed(f"{original.env_id} raised in {where}: {_exception_line(played.raised)}")
    finally:
        env.close()


def _env_raised(args: argparse.Namespace, where: str, exc: Exception) -> RunFailed:
    """The one line of an env that raised in ``play``: where, with which settings, what, and the fix."""
    if isinstance(exc, InfrastructureError):  # what runs the env failed (a server, a sandbox), not its code
        return RunFailed(f"{args.env_id} failed in {where}: {type(exc).__name__}: {_one_line(str(exc))}")
    shown, fix = _settings(args)
    return RunFailed(f"{args.env_id} raised in {where} with {shown}: {_exception_line(exc)}; {fix}, or the env's code")


def cmd_rollout(args: argparse.Namespace) -> None:
    if not is_env_url(args.env_id):  # an env server's URL is checked by its first reset
        horizongym.spec(args.env_id)
    kwargs = _env_kwargs(args)
    out = _checked_out_path(args.out)
    if out.exists() and out.stat().st_size > 0 and not args.resume:
        raise CommandError(f"{out} already holds episodes: pass --resume to continue that run, or choose another --out")
    _check_env(args.env_id, kwargs, args)
    try:
        policy = make_policy(args.policy, args.env_id, temperature=args.temperature, max_tokens=args.max_tokens)
    except PolicySpecError as exc:
        raise CommandError(str(exc)) from None
    except PolicyError as exc:  # a model folder that does not load
        raise CommandError(f"--policy {args.policy}: {_one_line(str(exc))}") from None
    recipe = EnvRecipe(args.env_id, kwargs)
    if args.backend != "ray" and (args.address or args.ray_workers):
        raise CommandError(f"{'--address' if args.address else '--ray-workers'} goes with --backend ray")
    if args.tree == 1 and args.branch_at is not None:
        raise CommandError("--branch-at goes with --tree K (K >= 2 branches per fork)")
    if args.tree > 1 and args.backend == "ray":
        raise CommandError("--tree runs with --backend asyncio: Ray actors' envs cannot be forked; drop --backend ray")
    workers = args.ray_workers or args.concurrency

    def env_factory() -> contextlib.AbstractContextManager[Callable[[], Any] | None]:
        if args.backend != "ray":
            return contextlib.nullcontext()
        from horizongym.training.rollouts.ray_backend import ray_envs

        return ray_envs(recipe, address=args.address, workers=workers)

    async def run() -> list[Episode]:
        check = getattr(policy, "check", None)
        try:
            if check is not None:
                served = await check()
                model = getattr(policy, "model", None)
                if served and model not in served:
                    print(f"warning: {model!r} is not among the served models {served}", file=sys.stderr)
            with (
                EpisodeStore(out) as store,
                env_factory() as envs,  # envs in Ray actors with --backend ray; else None: in this process
                RolloutEngine(
                    recipe,
                    policy,
                    concurrency=workers,
                    env_factory=envs,
                    max_turns=args.max_turns,
                    episode_timeout_s=args.timeout,
                    max_attempts=args.max_attempts,
                    store=store,
                    system_prompt=args.system_prompt,
                    progress=not args.quiet,
                    tree=args.tree,
                    branch_at=args.branch_at or "random",
                ) as engine,
            ):
                played = await engine.run(args.n, args.group, seed=args.seed, resume=args.resume)
                if args.tree > 1:
                    trees.append(engine.tree_stats.line())
                return played
        except (PolicyError, RolloutError) as exc:
            raise CommandError(str(exc)) from None
        except NotAnEpisodeFile as exc:
            raise CommandError(f"cannot resume: {exc}; choose another --out") from None
        finally:
            await policy.aclose()

    trees: list[str] = []
    new = asyncio.run(run())
    episodes = [e for e in read_episodes(out) if e.env_id == args.env_id]
    print(format_table(summarize(episodes)))
    for line in trees:  # this run's trees: trunks, branches, env steps
        print(line)
    failed = failed_episodes(new)
    if failed:
        print(failure_report(failed, len(new)))
    print(f"episodes: {out}")
    if failed and len(failed) == len(new):
        raise RunFailed(all_failed_line(failed, _settings(args)[0]))


def cmd_show(args: argparse.Namespace) -> None:
    path = Path(args.file)
    try:
        episodes = read_run(path, "show")
    except RunFileError as exc:
        raise CommandError(str(exc)) from None
    print(format_table(summarize(episodes)))
    if any(episode.branch for episode in episodes):  # a run of trees (rollout --tree, play --from)
        from horizongym.training.rollouts.tree import TreeStats

        trees = TreeStats()
        for episode in episodes:
            trees.count(episode)
        print(trees.line())
    failed = failed_episodes(episodes)
    if failed:
        print(failure_report(failed, len(episodes)))
    if args.html:
        try:
            Path(args.html).write_text(episodes_html(episodes, f"horizongym · {path.name}"), encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write --html {args.html}: {os_error(exc)}; choose another path") from None
        print(f"page: {args.html}")


def cmd_team_graph(args: argparse.Namespace) -> None:
    from horizongym.agents.team.picture import NotATeamTrace, recorded_turn, turn_svg

    try:
        episodes = read_run(Path(args.file), "team-graph")
    except RunFileError as exc:
        raise CommandError(str(exc)) from None
    if not 0 <= args.episode < len(episodes):
        raise CommandError(f"--episode {args.episode}: {args.file} holds episodes 0..{len(episodes) - 1}")
    try:
        svg = turn_svg(recorded_turn(list(episodes[args.episode].steps), args.turn))
    except NotATeamTrace as exc:
        raise RunFailed(f"{args.file} episode {args.episode}: {exc}") from None
    try:
        Path(args.out).write_text(svg, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write --out {args.out}: {os_error(exc)}; choose another path") from None
    print(f"picture: {args.out}")


def cmd_view(args: argparse.Namespace) -> None:
    try:
        from horizongym.view.catalog import RunCatalog, RunSourceError
        from horizongym.view.play import BrowserPlay
        from horizongym.view.serve import serve_view
    except ModuleNotFoundError as exc:
        raise CommandError(f"view needs {exc.name}: pip install 'horizongym[view]'") from None
    try:
        catalog = RunCatalog(args.paths, tokenizer=args.tokenizer)
        catalog.add(args.play_out)
    except RunSourceError as exc:
        raise CommandError(str(exc)) from None
    for run in catalog.runs:
        if run.index.skipped:
            print(
                f"horizongym: warning: {run.episodes_path}: skipped {run.index.skipped} lines "
                f"(the first, {run.index.first_problem})",
                file=sys.stderr,
            )
    try:
        serve_view(catalog, args.host, args.port, play=BrowserPlay(catalog, Path(args.play_out)))
    except OSError as exc:
        where = f"{args.host}:{args.port}"
        raise CommandError(f"cannot listen on {where}: {os_error(exc)}; choose another --port") from None


def cmd_serve(args: argparse.Namespace) -> None:
    model_dir = Path(args.model_dir)
    if args.model_dir == "smollm2" or args.model_dir.startswith("hf:gguf:"):  # a GGUF model (agents.gguf)
        from horizongym.agents.gguf import GGUFNotFound, gguf_source
        from horizongym.agents.hf import TransformersPolicy

        try:
            folder, name = gguf_source(args.model_dir) or (model_dir, "")
            policy = TransformersPolicy(folder, gguf_file=name, max_batch_size=args.max_batch_size)
        except (GGUFNotFound, PolicyError) as exc:
            raise CommandError(str(exc)) from None
        from horizongym.agents.serving import serve as serve_policy

        policy.max_new_tokens = args.max_new_tokens
        serve_policy(policy, host=args.host, port=args.port, model_name=args.model_name)
        return
    if not (model_dir / "config.json").is_file():
        raise CommandError(f"no model at {model_dir}: expected a folder written by save_pretrained (with config.json)")
    from horizongym.agents.serving import serve

    try:
        serve(
            str(model_dir),
            host=args.host,
            port=args.port,
            model_name=args.model_name,
            max_batch_size=args.max_batch_size,
            max_new_tokens=args.max_new_tokens,
        )
    except PolicyError as exc:
        raise CommandError(str(exc)) from None


def cmd_serve_env(args: argparse.Namespace) -> None:
    try:
        horizongym.spec(args.env_id)
    except UnknownEnvironment:
        known = ", ".join(sorted(short_id(env_id) for env_id in registry))
        raise CommandError(f"unknown environment '{args.env_id}'; the registered ones: {known}") from None
    kwargs = _env_kwargs(args)
    _check_env(args.env_id, kwargs, args)
    try:
        from horizongym.envs.remote.server import EnvBuildError, serve_env
    except ModuleNotFoundError as exc:
        raise CommandError(f"serve-env needs {exc.name}: pip install 'horizongym[env-server]'") from None

    try:
        serve_env(
            args.env_id,
            kwargs,
            host=args.host,
            port=args.port,
            max_sessions=args.max_sessions,
            idle_timeout_s=args.idle_timeout,
        )
    except EnvBuildError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(
            f"cannot listen on {args.host}:{args.port}: {os_error(exc)}; choose another --port"
        ) from None


def _train_model(spec: str, out: Path, seed: int) -> tuple[Any, Any]:
    """The initial model and tokenizer of ``train --policy``: ``tiny`` (built in OUT/init) or ``hf:PATH``."""
    if spec == "tiny":
        from horizongym.agents.tiny import build_tiny_model
        from horizongym.cache import build_atomically

        path = out / "init"  # built once, whole, even when several ranks ask for it at once
        if not (path / "config.json").is_file():
            build_atomically(path, lambda tmp: build_tiny_model(tmp, seed=seed))
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

TRAIN_FLAGS = {"group_size": "--group", "out_dir": "--out", "ray_address": "--address"}
"""TrainConfig fields whose flag is not ``--kebab-case`` of the name (these are the names ``rollout`` uses)."""


def config_flag(name: str, flags: Mapping[str, str]) -> str:
    """The flag of the config field ``name``: ``flags[name]``, else ``--`` and the name in kebab-case."""
    return flags.get(name, "--" + name.replace("_", "-"))


def add_config_flags(
    parser: argparse._ActionsContainer,
    model: type[BaseModel],
    *,
    skip: Collection[str],
    flags: Mapping[str, str],
    dest_prefix: str = "",
) -> None:
    """One flag per field of ``model`` (but ``skip``): its type, its default, its description as help.

    ``X | None`` takes X; ``Literal`` values become choices; ``bool`` becomes ``--flag/--no-flag``;
    a ``dict`` is read as a JSON object. The parsed value lands under ``dest_prefix`` + the field's name.
    """
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        default = field.get_default(call_default_factory=True)
        help_text = _field_help(field.description or "", model, flags)
        if default is not None and not isinstance(default, bool):  # argparse shows a bool's default itself
            help_text = f"{help_text.removesuffix('.')} (default: {_shown(default)})"
        options = _argument_options(f"{model.__name__}.{name}", field.annotation)
        parser.add_argument(
            config_flag(name, flags), dest=dest_prefix + name, default=default, help=help_text, **options
        )


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
        config = TrainConfig(env_id=args.env_id, env_kwargs=_env_kwargs(args), **values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{config_flag(str(e['loc'][0]), TRAIN_FLAGS) if e['loc'] else 'settings'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise CommandError(f"bad training settings: {problems}") from None
    return config


def cmd_train(args: argparse.Namespace) -> None:
    if args.policy.startswith("team:"):
        return _train_team(args)
    from horizongym.training.trainer import NothingToLearn, Trainer

    remote = is_env_url(args.env_id)  # a served env: its settings are the server's
    if not remote:
        horizongym.spec(args.env_id)
    config = train_config(args)
    out = Path(config.out_dir)
    if not args.resume and ((out / "metrics.jsonl").exists() or (out / "checkpoints").exists()):
        raise CommandError(f"{out} already holds a training run: pass --resume to continue it, or choose another --out")
    _check_env(config.env_id, config.env_kwargs, args)
    if config.eval_every and config.eval_tasks and config.eval_env_kwargs is not None:
        _check_env(config.env_id, config.eval_env_kwargs, args, flag="--eval-env-kwargs", what="the evaluation env of ")
    elif config.eval_every and config.eval_tasks and is_task_list_env(config.env_id):
        _check_env(
            config.env_id, {**config.env_kwargs, "split": "test"}, args, what="the evaluation env (split=test) of "
        )
    model, tokenizer = _train_model(args.policy, out, config.seed)
    try:
        trainer = Trainer(config, model, tokenizer, progress=not args.quiet)
        records = trainer.train(resume=args.resume)
    except NothingToLearn as exc:
        print(failure_report(exc.failed, len(exc.failed)))
        raise RunFailed(f"nothing can be learned: {exc}") from None
    except (PolicyError, RolloutError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if not trainer.ranks.is_main:  # under torchrun, rank 0 reports
        return
    if records:
        last = records[-1]
        print(f"step {last['step']}: reward {last['reward_mean']:.3f}, success {last['success_rate']:.1%}")
    print(f"metrics: {out / 'metrics.jsonl'}")
    print(f"checkpoints: {out / 'checkpoints'}")


def _add_team_flags(parser: argparse.ArgumentParser) -> None:
    """``train``'s AgentDropout flags (for ``--policy team:CONFIG``), from AgentDropoutConfig's fields."""
    from horizongym.training.team_train import TEAM_DEST, TEAM_FLAGS, TEAM_SHARED, AgentDropoutConfig

    group = parser.add_argument_group("team training (--policy team:CONFIG: AgentDropout learns the team's graph)")
    add_config_flags(group, AgentDropoutConfig, skip=TEAM_SHARED, flags=TEAM_FLAGS, dest_prefix=TEAM_DEST)
    group.add_argument(
        "--eval-queries", type=_positive(int), default=20, metavar="N", help="held-out tasks scored (default 20)"
    )


def _train_team(args: argparse.Namespace) -> None:
    """``train ENV --policy team:CONFIG``: :mod:`horizongym.training.team_train`, one line per mistake."""
    from horizongym.training.agentdropout.env_play import EnvPlayError
    from horizongym.training.team_train import (
        TeamTrainError,
        TeamTrainSettings,
        dropout_config,
        train_team,
        unused_train_settings,
    )

    if args.resume:
        raise CommandError("--resume is not supported for team training; start a new run with another --out")
    horizongym.spec(args.env_id)
    config = train_config(args)
    unused = [config_flag(name, TRAIN_FLAGS) for name in unused_train_settings(vars(args))]
    if unused:
        raise CommandError(f"{', '.join(unused)}: not a team-training setting; see 'horizongym train --help'")
    eval_kwargs = config.eval_env_kwargs
    if eval_kwargs is None:
        eval_kwargs = {**config.env_kwargs, "split": "test"} if is_task_list_env(config.env_id) else config.env_kwargs
    _check_env(config.env_id, config.env_kwargs, args)
    default_tokens = TrainConfig.model_fields["max_new_tokens"].default
    try:
        settings = TeamTrainSettings(
            env_id=config.env_id,
            team_config=Path(args.policy.removeprefix("team:")),
            out=Path(config.out_dir),
            dropout=dropout_config(vars(args)),
            env_kwargs=config.env_kwargs,
            eval_env_kwargs=eval_kwargs,
            eval_queries=args.eval_queries,
            task_seed_start=config.task_seed_start,
            eval_seed_start=config.eval_seed_start,
            max_turns=config.max_turns,
            max_attempts=config.max_attempts,
            system_prompt=config.system_prompt,
            temperature=config.temperature,
            max_tokens=None if config.max_new_tokens == default_tokens else config.max_new_tokens,
            progress=not args.quiet,
        )
        result = train_team(settings)
    except (TeamTrainError, EnvPlayError, PolicyError, RolloutError) as exc:
        raise CommandError(str(exc)) from None
    print(result.line())
    for name, path in result.files.items():
        print(f"{name}: {path}")


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


def _tree_size(text: str) -> int:
    """argparse type of --tree: K >= 2 branches per fork (1: no tree)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be K >= 2 branches per fork (1: no tree), not {text!r}")
    return value


def _branch_at(text: str) -> BranchAt:
    """argparse type of --branch-at: all, random or a turn N >= 1."""
    try:
        return parse_branch_at(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be all, random or a turn N >= 1, not {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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

    p = commands.add_parser(
        "play",
        help="play an environment yourself at the terminal",
        description=f"Play ENV_ID at the terminal, or {FORK_HELP}",
    )
    p.add_argument("env_id", nargs="?", help="a registered env id (with --from: optional, must be the episode's)")
    p.add_argument("--seed", type=int, help="the task's seed (default 0; with --from: the episode's)")
    p.add_argument("--from", dest="from_run", metavar=SOURCE_FORM, help="play on from turn TURN of a recorded episode")
    p.add_argument("--no-save", action="store_true", help="with --from: do not save the continuation")
    _add_env_options(p)
    p.set_defaults(run=cmd_play)

    p = commands.add_parser("rollout", help="run episodes with a policy and store them as JSONL")
    p.add_argument("env_id", help="a registered env id, or an env server's URL (ws://HOST:PORT)")
    p.add_argument("--policy", default="expert", help=SPEC_HELP)
    p.add_argument("-n", type=_positive(int), default=16, help="number of tasks (seeds seed..seed+n-1)")
    p.add_argument("--group", type=_positive(int), default=1, help="samples per task")
    p.add_argument("--concurrency", type=_positive(int), default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/episodes.jsonl")
    p.add_argument("--resume", action="store_true", help="continue --out, skipping finished episodes")
    p.add_argument("--max-turns", type=_positive(int), help="engine-side turn limit per episode")
    p.add_argument("--timeout", type=_positive(float), help="wall-clock limit per episode, seconds")
    p.add_argument(
        "--max-attempts",
        type=_positive(int),
        default=3,
        help="tries per episode when infrastructure fails (a dead container, a lost server or Ray actor) (default 3)",
    )
    p.add_argument("--system-prompt")
    p.add_argument("--temperature", type=_non_negative, default=1.0)
    p.add_argument(
        "--max-tokens", type=_positive(int), help="completion length limit (default: the server's or 256 for hf:)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--backend", choices=["asyncio", "ray"], default="asyncio", help="envs in this process, or in Ray actors"
    )
    p.add_argument(
        "--address", help="with --backend ray: the cluster to join, auto or HOST:PORT (default: a local one)"
    )
    p.add_argument("--ray-workers", type=_positive(int), help="with --backend ray: env actors (default: --concurrency)")
    p.add_argument(
        "--tree",
        type=_tree_size,
        default=1,
        metavar="K",
        help="play each task as a tree: fork its trunk into K branches (K-1 new continuations) at --branch-at",
    )
    p.add_argument(
        "--branch-at",
        type=_branch_at,
        metavar="{all,random,N}",
        help="with --tree: fork after every turn, after one random turn (the default), or after turn N",
    )
    _add_env_options(p)
    p.set_defaults(run=cmd_rollout)

    p = commands.add_parser("show", help="summarize a JSONL episode file")
    p.add_argument("file")
    p.add_argument("--html", help="also write a page of every episode to this path")
    p.set_defaults(run=cmd_show)

    p = commands.add_parser("team-graph", help="an SVG of a recorded team turn: active agents and edges")
    p.add_argument("file", metavar="RUN.jsonl")
    p.add_argument("--episode", type=int, default=0, help="the episode's index in the file (default 0)")
    p.add_argument("--turn", type=_positive(int), help="the turn, counting from 1 (default: the first team turn)")
    p.add_argument("--out", required=True, metavar="FILE.svg")
    p.set_defaults(run=cmd_team_graph)

    p = commands.add_parser("view", help="a local web app over run files and training runs (and play)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="a run file (RUN.jsonl) or a trainer's --out folder")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=8765)
    p.add_argument("--play-out", default="runs/play.jsonl", help="where episodes played in the browser are saved")
    p.add_argument("--tokenizer", metavar="DIR", help="the tokenizer folder that decodes the runs' token ids")
    p.set_defaults(run=cmd_view)

    p = commands.add_parser("serve", help="OpenAI-compatible server for a local transformers model")
    p.add_argument("model_dir")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=8000)
    p.add_argument("--model-name", help="id clients use (default: the folder name)")
    p.add_argument("--max-batch-size", type=_positive(int), default=16, help="requests generated together")
    p.add_argument(
        "--max-new-tokens", type=_positive(int), default=1024, help="completion limit when a request sets none"
    )
    p.set_defaults(run=cmd_serve)

    p = commands.add_parser("serve-env", help="serve an environment over OpenEnv's contract (WebSocket, HTTP, MCP)")
    p.add_argument("env_id")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=8010)
    p.add_argument("--max-sessions", type=_positive(int), default=64, help="sessions open at once (one env each)")
    p.add_argument("--idle-timeout", type=_positive(float), default=300.0, metavar="S", help="close a session idle S s")
    _add_env_options(p)
    p.set_defaults(run=cmd_serve_env)

    p = train = commands.add_parser(
        "train",
        help="train a transformers model on an environment with RL",
        usage="%(prog)s ENV_ID [--policy tiny|hf:PATH|team:CONFIG] [--out DIR] [--resume] [--SETTING VALUE ...]",
    )
    p.add_argument("env_id")
    p.add_argument(
        "--policy",
        default="tiny",
        help="tiny (a small random model built in OUT/init), hf:PATH, or team:CONFIG (AgentDropout trains "
        "the team's graph, its agents fixed)",
    )
    add_config_flags(p, TrainConfig, skip=TRAIN_ENV_FIELDS, flags=TRAIN_FLAGS)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_env_options(p)
    assert isinstance(train, _Parser)
    train.add_later(_add_team_flags)
    p.set_defaults(run=cmd_train)

    add_kernel_commands(commands)
    add_sandbox_commands(commands)
    add_swe_commands(commands)
    add_replay_commands(commands)
    add_export_commands(commands)
    from horizongym.training.rollouts.indicators_cli import add_team_indicators_command

    add_team_indicators_command(commands)
    return parser


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """Warnings about the user's files as one line each, ``horizongym: warning: ...``; others as Python shows them."""
    if issubclass(category, EpisodeFileWarning):
        print(f"horizongym: warning: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), end="", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status: 0, 1 when it ran and failed, 2 for a mistake in its input."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a mistake argparse reported
        return exc.code if isinstance(exc.code, int) else 2
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            _import_modules(args)
            args.run(args)
        except CommandError as exc:
            print(f"horizongym: error: {_one_line(str(exc))}", file=sys.stderr)
            return exc.status
        except UnknownEnvironment as exc:
            print(f"horizongym: error: {_one_line(str(exc))}", file=sys.stderr)
            return 2
        except SystemExit as exc:  # the sub-commands' own one-line errors
            return exc.code if isinstance(exc.code, int) else 1
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
