"""``horizongym replay``: re-run a stored run's actions and check the env answers the same; or rescore it.
``horizongym export``: write a stored run in the formats other tools read.

    horizongym replay RUN.jsonl [--env-kwargs JSON] [--out REPORT]
    horizongym replay RUN.jsonl --rescore [--reward-kwargs JSON] --out NEW.jsonl
    horizongym export RUN.jsonl --format hf|atif|sft-jsonl --out PATH [--only-success] [--include-failed]

The first prints each episode that differs with its first difference, then one summary line,
and exits 1 when any episode differs (``--out`` writes every episode's verdict as JSONL; see
:mod:`horizongym.training.rollouts.replay`). The second recomputes every reward from the
recorded reward events with the new reward settings, runs no tool, and writes a new run file
(see :mod:`horizongym.training.rollouts.rescore`). A mistake (a missing file, bad JSON, an env
that cannot be built or rescored) is one line on stderr, ``horizongym: error: ...``, and exit
status 2.

``export`` writes a Hugging Face dataset, ATIF trajectories or chat SFT JSONL (see
:mod:`horizongym.training.rollouts.export`), then one summary line: what it wrote and what it left
out. Its mistakes are one line and exit status 2 too.

:func:`add_replay_commands` and :func:`add_export_commands` register ``replay`` and ``export`` on an
argparse sub-parsers object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from horizongym.training.rollouts.replay import EpisodeReplay, ReplayError, replay_episodes
from horizongym.training.rollouts.rescore import RescoreError, rescore_episodes, write_episodes
from horizongym.training.rollouts.store import RunFileError, read_run
from horizongym.training.rollouts.trajectory import Episode


def _fail(message: str) -> NoReturn:
    """Print the one-line error and exit with status 2, as the ``horizongym`` command does."""
    print(f"horizongym: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _json_object(flag: str, text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"{flag} is not valid JSON ({exc})")
    if not isinstance(value, dict):
        _fail(f"{flag} must be a JSON object, e.g. '{{\"max_turns\": 8}}'")
    return value


def _episodes(path: Path) -> list[Episode]:
    try:
        return read_run(path, "replay")
    except RunFileError as exc:
        _fail(str(exc))


def cmd_replay(args: argparse.Namespace) -> None:
    """Replay or rescore the episodes of ``args.run_file``."""
    path = Path(args.run_file)
    env_kwargs = _json_object("--env-kwargs", args.env_kwargs)
    reward_kwargs = _json_object("--reward-kwargs", args.reward_kwargs)
    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        _fail(f"--out {out} is a folder; give a file path such as {out / 'report.jsonl'}")
    if out is not None and out.exists() and out.resolve() == path.resolve():
        _fail(f"--out {out} is the run being read; choose another file")
    if args.rescore:
        rescore(path, out, env_kwargs, reward_kwargs)
    else:
        if args.reward_kwargs:
            _fail("--reward-kwargs goes with --rescore")
        replay(path, out, env_kwargs, progress=not args.quiet)


def replay(path: Path, out: Path | None, env_kwargs: dict[str, Any], *, progress: bool) -> None:
    episodes = _episodes(path)
    verdicts: list[EpisodeReplay] = []
    try:
        for verdict in replay_episodes(episodes, env_kwargs=env_kwargs, progress=progress):
            verdicts.append(verdict)
            if verdict.status == "differs":
                print(verdict.describe(), flush=True)
    except ReplayError as exc:
        _fail(str(exc))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(v.to_json(), ensure_ascii=False) + "\n" for v in verdicts), encoding="utf-8")
    differ = sum(v.status == "differs" for v in verdicts)
    skipped = sum(v.status == "skipped" for v in verdicts)
    matched = len(verdicts) - differ - skipped
    also = f", {skipped} skipped (infrastructure failures)" if skipped else ""
    report = f"; report: {out}" if out is not None else ""
    if differ:
        print(f"replay: {differ} of {len(verdicts)} episodes differ, {matched} match{also}{report}")
        raise SystemExit(1)
    print(f"replay: all {matched} replayed episodes match{also}{report}")


def rescore(path: Path, out: Path | None, env_kwargs: dict[str, Any], reward_kwargs: dict[str, Any]) -> None:
    if out is None:
        _fail("--rescore writes a new run file: give it with --out NEW.jsonl")
    if out.exists() and out.stat().st_size > 0:
        _fail(f"{out} already exists; choose another --out (a rescore never overwrites a run)")
    episodes = _episodes(path)
    try:
        rescored = rescore_episodes(episodes, reward_kwargs, env_kwargs=env_kwargs)
    except RescoreError as exc:
        _fail(str(exc))
    write_episodes(out, rescored)
    before = sum(e.total_reward for e in episodes) / len(episodes)
    after = sum(e.total_reward for e in rescored) / len(rescored)
    settings = json.dumps(reward_kwargs) if reward_kwargs else "the recorded settings"
    print(f"rescore: {len(rescored)} episodes with {settings}: mean reward {before:.4g} -> {after:.4g}; wrote {out}")


def add_replay_commands(subparsers: Any) -> None:
    """Add ``replay`` to an argparse sub-parsers object."""
    p = subparsers.add_parser(
        "replay",
        help="re-run a run's recorded actions and check the env answers the same; or --rescore it",
        description=(__doc__ or "").partition("\n\n")[0],
    )
    p.add_argument("run_file", metavar="RUN.jsonl", help="the episodes to replay (a rollout's --out)")
    p.add_argument("--env-kwargs", metavar="JSON", help="JSON object updating every episode's env keyword arguments")
    p.add_argument("--out", help="replay: write each episode's verdict here (JSONL); --rescore: the new run file")
    p.add_argument("--rescore", action="store_true", help="recompute rewards from the recorded reward events")
    p.add_argument("--reward-kwargs", metavar="JSON", help="with --rescore: the new reward settings (JSON object)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        metavar="MODULE",
        help="import MODULE first (a module of yours that registers environments); repeatable",
    )
    p.set_defaults(run=cmd_replay)


def cmd_export(args: argparse.Namespace) -> None:
    """Export the episodes of ``args.run_file`` as ``args.format`` to ``args.out``."""
    from horizongym.training.rollouts.export import ExportError, export_run

    if args.layout is not None and args.format != "hf":
        _fail("--layout goes with --format hf")
    try:
        result = export_run(
            args.run_file,
            args.format,
            args.out,
            include_failed=args.include_failed,
            only_success=args.only_success,
            layout=args.layout or "prompt-completion",
        )
    except ExportError as exc:
        _fail(str(exc))
    print(result.line())


def add_export_commands(subparsers: Any) -> None:
    """Add ``export`` to an argparse sub-parsers object."""
    p = subparsers.add_parser(
        "export",
        help="write a run as a Hugging Face dataset, ATIF trajectories or chat SFT JSONL",
        description="Write a stored run in the formats other tools read.",
    )
    p.add_argument("run_file", metavar="RUN.jsonl", help="the episodes to export (a rollout's --out)")
    p.add_argument(
        "--format",
        required=True,
        choices=["hf", "atif", "sft-jsonl"],
        help="hf: a datasets folder (save_to_disk) for TRL; atif: a folder of ATIF trajectory files; "
        "sft-jsonl: one {messages, tools} line per episode",
    )
    p.add_argument("--out", required=True, help="a new folder (hf, atif) or file (sft-jsonl)")
    p.add_argument("--only-success", action="store_true", help="keep the successful episodes only")
    p.add_argument(
        "--include-failed",
        action="store_true",
        help="hf, sft-jsonl: keep the episodes that failed on infrastructure, env or policy errors too "
        "(atif keeps every episode)",
    )
    p.add_argument(
        "--layout",
        choices=["prompt-completion", "messages"],
        help="with --format hf: the conversation as prompt + completion columns (the default; what GRPO reads) "
        "or as one messages column (SFT on the actions only: assistant_only_loss)",
    )
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        metavar="MODULE",
        help="import MODULE first (a module of yours that registers environments); repeatable",
    )
    p.set_defaults(run=cmd_export)
