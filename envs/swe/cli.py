"""``horizongym swe mine``: mine validated SWE-v0 tasks from a package and write them as JSONL.

A mining failure (a bad package spec, an unknown package, no source, no sandbox, an ``--out``
that cannot be written, checked before mining starts) is one line on stderr,
``horizongym: error: ...``, and exit status 2.

:func:`add_swe_commands` registers it under a ``swe`` command of an argparse parser.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from horizongym.argtypes import at_least_one, os_error, unwritable_out


def _fail(message: str) -> NoReturn:
    """Print the one-line error and exit with status 2, as the ``horizongym`` command does."""
    text = " / ".join(line.strip() for line in message.splitlines() if line.strip())
    print(f"horizongym: error: {text}", file=sys.stderr)
    raise SystemExit(2)


def _writable(out: Path) -> Path:
    """``--out``, checked before mining starts: a file path whose folder can be created and written."""
    problem = unwritable_out(out, "tasks.jsonl")
    if problem is not None:
        _fail(problem)
    return out


def cmd_mine(args: argparse.Namespace) -> None:
    """Mine ``args.package``, write its validated instances to ``args.out`` and print a summary."""
    from horizongym.envs.swe.mining import MiningError, mine_report
    from horizongym.envs.swe.packages import SourceError
    from horizongym.envs.swe.types import save_instances
    from horizongym.sandboxes import SandboxError

    out = _writable(Path(args.out))
    try:
        report = mine_report(
            args.package,
            max_candidates=args.max_candidates,
            max_tasks=args.max_tasks,
            seed=args.seed,
            workers=args.workers,
        )
    except (MiningError, SourceError, SandboxError, ValueError) as exc:
        _fail(str(exc))
    try:
        save_instances(out, report.instances)
    except OSError as exc:
        _fail(f"cannot write --out {out}: {os_error(exc)}")
    print(
        f"{report.source}: {report.candidates} mutation sites, {report.tried} mutants tried, "
        f"rejected {json.dumps(report.rejected)}, {report.seconds:.0f} s{' (cached)' if report.from_cache else ''}"
    )
    setup = report.test_setup
    dropped = ", ".join(setup.get("dropped_options", [])) or "none"
    print(f"tests run as CI does: config {setup.get('config') or 'none'}; options left out: {dropped}")
    installed = ", ".join(setup.get("installed", [])) or "nothing"
    not_installed = "; ".join(f"{k} ({v})" for k, v in setup.get("not_installed", {}).items()) or "none"
    print(f"test requirements installed: {installed}; not installed: {not_installed}")
    print(f"tests not mined from: {json.dumps(report.skipped_tests)}")
    print(f"{len(report.instances)} validated instances written to {args.out}")


def add_swe_commands(subparsers: Any) -> None:
    """Add ``swe mine`` to an argparse sub-parsers object."""
    swe = subparsers.add_parser("swe", help="SWE-v0 tasks: mine validated bugs from a package")
    commands = swe.add_subparsers(dest="swe_command", required=True)
    p = commands.add_parser("mine", help="mine validated SWE tasks from NAME==VERSION (a PyPI sdist) or embedded:NAME")
    p.add_argument("package", help="e.g. inflection==0.5.1, or embedded:textkit")
    p.add_argument("--out", required=True, help="JSONL file for the instances")
    p.add_argument("--max-candidates", type=at_least_one, default=60, metavar="N", help="mutants to try at most")
    p.add_argument(
        "--max-tasks", type=at_least_one, default=12, metavar="N", help="validated instances to keep at most"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=at_least_one, default=2, metavar="N", help="sandboxes used side by side")
    p.set_defaults(run=cmd_mine)
