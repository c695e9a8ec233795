"""``horizongym kernels tasks`` and ``horizongym kernels eval``: KernelGen's operators, and one candidate file judged.

``tasks`` lists the kernel tasks (built-in catalog or a KernelBench folder); ``eval`` builds,
checks and times a candidate file exactly as ``KernelGen-v0`` does, and prints what the agent
would see (or the evaluation as JSON). A mistake (missing file, unknown task or task source, bad backend), or an
evaluator that cannot work on this machine (no compiler, a full disk), is one line on stderr,
``horizongym: error: ...``, and exit status 2 (a candidate that fails to build or check is a result,
printed, not an error).

:func:`add_kernel_commands` registers both under a ``kernels`` command of an argparse parser.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from horizongym.argtypes import at_least_one, os_error

if TYPE_CHECKING:
    from horizongym.envs.kernels.types import KernelTask

TASKS_HELP = "catalog (built in) or kernelbench:PATH"


def _fail(message: str) -> NoReturn:
    """Print the one-line error and exit with status 2, as the ``horizongym`` command does."""
    text = " / ".join(line.strip() for line in message.splitlines() if line.strip())
    print(f"horizongym: error: {text}", file=sys.stderr)
    raise SystemExit(2)


def _load_tasks(spec: str, levels: list[int] | None) -> list[KernelTask]:
    """The tasks of ``--tasks`` at ``levels``; a missing folder or a bad spec fails with one line."""
    from horizongym.envs.kernels.data import load_kernel_tasks

    try:
        return load_kernel_tasks(spec, levels)
    except (OSError, ValueError) as exc:
        _fail(f"{exc} (--tasks takes {TASKS_HELP})")


def cmd_tasks(args: argparse.Namespace) -> None:
    """Print one line per kernel task: its id and description."""
    tasks = _load_tasks(args.tasks, [args.level] if args.level else None)
    width = max(len(task.id) for task in tasks)
    for task in tasks:
        print(f"{task.id.ljust(width)}  {task.description}")


def cmd_eval(args: argparse.Namespace) -> None:
    """Build, check and time ``args.file`` for ``args.task``; print the feedback or the JSON evaluation."""
    from horizongym.envs.kernels.env import evaluation_info
    from horizongym.envs.kernels.evaluator import EvaluatorError, KernelEvaluator
    from horizongym.envs.kernels.feedback import describe
    from horizongym.envs.kernels.rewards import make_scheme

    path = Path(args.file)
    if not path.is_file():
        _fail(f"no candidate file at {path}")
    task = next((t for t in _load_tasks(args.tasks, None) if args.task in (t.name, t.id)), None)
    if task is None:
        _fail(f"no task {args.task!r}; see 'horizongym kernels tasks'")
    try:
        evaluator = KernelEvaluator(args.backend, trials=args.trials, threads=args.threads)
        scheme = make_scheme(args.reward)
    except ValueError as exc:
        _fail(str(exc))
    try:
        candidate = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        _fail(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); the candidate is a Python file")
    except OSError as exc:
        _fail(f"cannot read {path}: {os_error(exc)}")
    try:
        result = evaluator.evaluate(task, candidate)
    except EvaluatorError as exc:
        _fail(f"the evaluator failed, not the candidate: {exc}")
    components = scheme.components(result)
    if args.json:
        print(json.dumps({**evaluation_info(result), "reward_components": components}, indent=2))
    else:
        print(describe(result, components, threads=evaluator.threads, turns_left=0))


def add_kernel_commands(subparsers: Any) -> None:
    """Add ``kernels tasks`` and ``kernels eval`` to an argparse sub-parsers object."""
    kernels = subparsers.add_parser("kernels", help="KernelGen tasks, and evaluating a kernel file")
    commands = kernels.add_subparsers(dest="kernels_command", required=True)
    p = commands.add_parser("tasks", help="list the kernel tasks")
    p.add_argument("--level", type=int, choices=(1, 2, 3))
    p.add_argument("--tasks", default="catalog", help=TASKS_HELP)
    p.set_defaults(run=cmd_tasks)
    p = commands.add_parser("eval", help="build, check and time a candidate file, as KernelGen-v0 does")
    p.add_argument("task", help="task name or id, e.g. softmax or L1/softmax")
    p.add_argument("file", help="Python file defining ModelNew")
    p.add_argument("--backend", default="auto", help="auto, cpu, cuda or compile-only")
    p.add_argument("--reward", default="kevin", help="kevin or milestones")
    p.add_argument("--trials", type=at_least_one, default=200, metavar="N")
    p.add_argument("--threads", type=at_least_one, default=1, metavar="N")
    p.add_argument("--tasks", default="catalog", help=TASKS_HELP)
    p.add_argument("--json", action="store_true", help="print the evaluation as JSON")
    p.set_defaults(run=cmd_eval)
