"""Task instances in the SWE-bench format, with the recipe of their execution environment.

The fields ``instance_id … PASS_TO_PASS`` are SWE-bench's (Jimenez et al., 2024,
arXiv 2310.06770): ``patch`` is the gold fix, ``test_patch`` the tests that judge it, which
the agent never sees. :class:`SWEEnvironment` says how to rebuild, on any machine, the
image the tests run in and the agent's starting files (the source release, then
``start_patch``: the bug, and the hidden test files taken out).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_TEST_COMMAND = "python -m pytest -p no:cacheprovider -q"


class SWEEnvironment(BaseModel):
    """How to rebuild an instance's environment image and starting files (harness-only)."""

    model_config = ConfigDict(frozen=True)

    source: str
    """``pypi:NAME==VERSION`` (the sdist from PyPI) or ``embedded:NAME`` (shipped with horizongym)."""
    sdist_sha256: str = ""
    """SHA-256 of the source archive (checked when it is downloaded again); empty for embedded sources."""
    dependencies: list[str] = Field(default_factory=list)
    """Requirements installed besides pytest, from wheels, while the image is built."""
    python_path: list[str] = Field(default_factory=lambda: ["."])
    """Import roots, relative to the working directory (``PYTHONPATH``)."""
    test_command: str = DEFAULT_TEST_COMMAND
    start_patch: str = ""
    """Unified diff from the pristine source to the agent's starting state (never shown to the agent)."""


class SWEInstance(BaseModel):
    """One task: fix the bug that ``problem_statement`` describes, so the hidden tests pass."""

    model_config = ConfigDict(frozen=True)

    instance_id: str
    repo: str
    base_commit: str
    problem_statement: str
    patch: str
    test_patch: str
    FAIL_TO_PASS: list[str]
    PASS_TO_PASS: list[str]
    version: str = ""
    created_at: str = ""
    environment: SWEEnvironment


def load_instances(path: str | Path) -> list[SWEInstance]:
    """Instances from a JSONL file (one per line; blank lines ignored)."""
    items = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                items.append(SWEInstance.model_validate_json(line))
            except ValidationError as error:
                problems = error.errors(include_url=False, include_input=False)
                shown = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'the line'}: {e['msg']}" for e in problems[:3]
                )
                more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
                raise ValueError(f"{path}:{number}: not a valid SWE instance: {shown}{more}") from None
    return items


def save_instances(path: str | Path, items: Iterable[SWEInstance]) -> None:
    """Write instances as JSONL (replacing the file atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(item.model_dump(), sort_keys=True) + "\n" for item in items), encoding="utf-8")
    tmp.replace(path)
