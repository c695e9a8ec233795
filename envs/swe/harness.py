"""Judging a submission: the agent's diff and the hidden tests, in a fresh sandbox.

Steps (SWE-bench's evaluation, Jimenez et al. 2024, arXiv 2310.06770):

1. a new sandbox from the task's image and starting files (the agent's container is not
   reused: nothing it left behind runs during the tests);
2. the agent's diff, without its changes to test files and test configuration
   (:func:`~horizongym.envs.swe.patches.filter_patch`), applied with ``git apply``;
3. the hidden ``test_patch`` applied;
4. the test files of ``FAIL_TO_PASS`` and ``PASS_TO_PASS`` run, outcomes read from JUnit XML.

Resolved (reward 1) iff every ``FAIL_TO_PASS`` test and every ``PASS_TO_PASS`` test passes.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from horizongym.envs.swe.patches import filter_patch, is_test_path, patch_paths
from horizongym.envs.swe.testrun import JUNIT_PATH, PASSED, outcomes_for, parse_junit, selection_command
from horizongym.envs.swe.types import SWEInstance
from horizongym.sandboxes.base import Sandbox, SandboxSpec

TEST_TIMEOUT_S = 300.0
APPLY = "git apply --whitespace=nowarn --recount"


@dataclass(frozen=True)
class SWEEvaluation:
    """The verdict on one submission, with every test's outcome."""

    resolved: bool
    fail_to_pass: dict[str, str] = field(default_factory=dict)
    pass_to_pass: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    """Why the tests could not be run (the patch did not apply, the run timed out, …)."""
    dropped_files: list[str] = field(default_factory=list)
    """Test files and test configuration whose changes were not applied."""
    log: str = ""

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly digest for ``info``."""
        return {
            "resolved": self.resolved,
            "error": self.error,
            "fail_to_pass": self.fail_to_pass,
            "pass_to_pass": self.pass_to_pass,
            "dropped_files": self.dropped_files,
        }


def sandbox_spec(instance: SWEInstance) -> SandboxSpec:
    """The sandbox an instance runs in: its environment image, its starting files, ``PYTHONPATH``."""
    from horizongym.envs.swe.environments import prepare

    prepared = prepare(instance)
    workdir = "/work"
    python_path = ":".join(posixpath.normpath(posixpath.join(workdir, p)) for p in instance.environment.python_path)
    return SandboxSpec(image=prepared.image, workdir=workdir, files=prepared.files, env=(("PYTHONPATH", python_path),))


def evaluate_patch(
    instance: SWEInstance, patch: str, *, backend: str = "auto", timeout: float = TEST_TIMEOUT_S
) -> SWEEvaluation:
    """Run the hidden tests against ``patch`` in a fresh sandbox; see the module docstring."""
    from horizongym.sandboxes import open_sandbox

    sandbox = open_sandbox(sandbox_spec(instance), backend=backend)
    try:
        return run_hidden_tests(sandbox, instance, patch, timeout=timeout)
    finally:
        sandbox.close()


def run_hidden_tests(sandbox: Sandbox, instance: SWEInstance, patch: str, *, timeout: float) -> SWEEvaluation:
    """Steps 2–4 of the module docstring, in ``sandbox`` (fresh, holding the starting files)."""
    hidden = set(patch_paths(instance.test_patch))
    kept, dropped = filter_patch(patch, lambda path: not is_test_path(path) and path not in hidden)
    log: list[str] = []
    for name, text in (("submission", kept), ("hidden tests", instance.test_patch)):
        if not text.strip():
            continue
        sandbox.write_file("/tmp/horizongym.patch", text.encode())
        result = sandbox.exec(f"{APPLY} /tmp/horizongym.patch", timeout=60)
        log.append(f"$ git apply ({name})\n{result.output}")
        if result.exit_code != 0:
            return SWEEvaluation(
                resolved=False,
                error=f"the {name} patch does not apply: {result.output.strip()[-500:]}",
                dropped_files=dropped,
                log="\n".join(log),
            )
    tests = [*instance.FAIL_TO_PASS, *instance.PASS_TO_PASS]
    result = sandbox.exec(
        f"rm -f {JUNIT_PATH}; " + selection_command(instance.environment.test_command, tests), timeout
    )
    log.append(f"$ pytest (exit {result.exit_code})\n{result.output}")
    error = None
    try:
        junit = parse_junit(sandbox.read_file(JUNIT_PATH).decode("utf-8", "replace"))
    except (FileNotFoundError, ValueError) as exc:
        junit = {}
        reason = "timed out" if result.timed_out else f"wrote no report ({type(exc).__name__})"
        error = f"the test run {reason}: {result.output.strip()[-500:]}"
    fail_to_pass = outcomes_for(instance.FAIL_TO_PASS, junit)
    pass_to_pass = outcomes_for(instance.PASS_TO_PASS, junit)
    resolved = error is None and all(o == PASSED for o in [*fail_to_pass.values(), *pass_to_pass.values()])
    return SWEEvaluation(
        resolved=resolved,
        fail_to_pass=fail_to_pass,
        pass_to_pass=pass_to_pass,
        error=error,
        dropped_files=dropped,
        log="\n".join(log),
    )
