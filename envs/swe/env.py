"""SWE-v0: fix a bug in a real Python project inside a sandbox; hidden tests decide the reward.

Each episode is one SWE-bench-format instance (:class:`~horizongym.envs.swe.types.SWEInstance`).
The agent gets the bug report and a sandbox (a Docker container with no network, where one
answers) holding the project at ``/work`` as a git repository, with three tools:

* ``bash(command)`` — a shell command in ``/work`` (output cut to the sandbox's limit);
* ``str_replace_editor(command, path, …)`` — view, create, str_replace, insert, undo_edit;
* ``submit()`` — ends the episode: the diff of ``/work`` is judged by the hidden tests in a
  fresh sandbox (:mod:`horizongym.envs.swe.harness`).

Reward: 1 if every ``FAIL_TO_PASS`` and ``PASS_TO_PASS`` test passes after the submission,
else 0 (component ``resolved``); ``info["evaluation"]`` holds every test's outcome. A replay of
an episode compares the calls, the rewards, the submitted diff (``info["patch"]``) and the test
results, not the commands' raw output (timings, process ids, dates differ from run to run). A command
stopped by a containment limit (wall-clock timeout, memory, processes, file size) or a sandbox
that dies ends the episode as truncated, with the limit in ``info["termination_reason"]``
(``command_timeout``, ``memory_limit``, ``process_limit``, ``file_size_limit``, ``sandbox_died``)
and the command and what happened in ``info["termination_detail"]``.

Infrastructure failures (:class:`~horizongym.sandboxes.base.SandboxError`, an
:class:`~horizongym.failures.InfrastructureError`) are never the agent's doing: at ``reset`` the
error is raised (the rollout engine records an ``infra_error`` and retries on a fresh env); during
a tool, the agent's sandbox dying ends the episode as ``sandbox_died`` and the sandbox of the
hidden tests failing as ``infra_error`` (both ``infra_error`` outcomes, which the engine retries);
a failure that another try cannot fix is recorded as such (``info["retryable"]`` False: not retried).

Sandboxes come warm from the process's shared :class:`~horizongym.sandboxes.pool.SandboxPool`
(``warm_pool=True``, docker only): a container given back at the end of an episode is reset (every
process killed, the workdir and /tmp emptied) and reloaded with the next instance's starting files.
The hidden tests always run in a container of their own that no agent touched.

Episodes are forkable (:mod:`horizongym.envs.snapshot`): a snapshot holds the container's files
(the workdir and ``/tmp``: what the commands changed, :mod:`horizongym.sandboxes.snapshots`) and
the episode's plain data (commands run, their log, the editor's undo history, the evaluation);
every restore runs in a new sandbox, so branches share nothing. Running processes are not kept.
``snapshot_method`` picks how the files are kept: ``"archive"`` (the default: the changes as bytes
in the snapshot, restored over a warm container of the pool) or ``"commit"`` (a committed docker
image, restored by starting a container from it; ``release_snapshot`` removes the image). The
default is the faster one on ``python -m horizongym.bench.sandbox --only-forks`` (p50 over 40
forks of an SWE-v0 episode after three edits, a 2-core machine, docker 20.10): ``archive`` 32 ms to
snapshot and 2.4 ms to restore, ``commit`` 311 ms and 375 ms (a ``docker commit``, then a cold
container start). An archive snapshot is also self-contained (picklable, restorable in any
process while the task's image exists), where a committed image lives only as long as the
process that made it. The local backend has only ``archive``.

Tasks (``tasks=``, see :mod:`horizongym.envs.tasklist` for ``split`` and ``task_order``):
``"embedded"`` (the default: bugs mined from a small library shipped with horizongym),
``"pypi"`` (bugs mined from real PyPI packages), a JSONL file path (see
:mod:`horizongym.envs.swe.data`), or a list of instances.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field

from horizongym.envs.contract import SANDBOX_LIMITS, TerminationReason
from horizongym.envs.swe.data import load_swe_tasks
from horizongym.envs.swe.editor import Editor, EditorError
from horizongym.envs.swe.harness import SWEEvaluation, evaluate_patch, sandbox_spec
from horizongym.envs.swe.types import SWEInstance
from horizongym.envs.tasklist import TaskListEnv
from horizongym.sandboxes.base import LimitName, Sandbox, SandboxError
from horizongym.sandboxes.snapshots import SandboxSnapshot, SnapshotMethod, check_method
from horizongym.tools import tool

if TYPE_CHECKING:
    from horizongym.envs.snapshot import Snapshot
    from horizongym.sandboxes.pool import SandboxPool

DIFF_COMMAND = "git add -A >/dev/null 2>&1 && git diff --cached --binary HEAD"


@dataclass
class SWEEpisode:
    """Everything one episode owns."""

    instance: SWEInstance
    sandbox: Sandbox
    editor: Editor
    commands: int = 0
    evaluation: SWEEvaluation | None = None
    log: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class SWEForkedEpisode:
    """An :class:`SWEEpisode` in a snapshot: the sandbox's files and the rest as plain data."""

    sandbox: SandboxSnapshot
    commands: int
    evaluation: SWEEvaluation | None
    log: list[dict[str, Any]]
    undo_history: dict[str, list[str]]


class SWEEnv(TaskListEnv[SWEInstance, SWEEpisode]):
    """Fix a bug in a real Python project; hidden tests judge the diff (SWE-bench format)."""

    description = "fixes a bug in a Python project in a sandbox with bash and an editor; hidden tests judge the diff"
    max_turns = 40
    blocking = True
    replay_compares: ClassVar[tuple[str, ...]] = (
        "reward",
        "reward_components",
        "tool_calls",
        "error",
        "patch",
        "evaluation",
    )

    def __init__(
        self,
        *,
        tasks: str | list[SWEInstance] = "embedded",
        split: str = "train",
        task_order: str = "random",
        backend: Literal["auto", "docker", "local"] = "auto",
        command_timeout: float = 30.0,
        test_timeout: float = 300.0,
        warm_pool: bool = True,
        snapshot_method: SnapshotMethod = "archive",
        **kwargs: Any,
    ) -> None:
        if check_method(snapshot_method) == "commit" and backend == "local":
            raise ValueError("snapshot_method='commit' needs docker; the local backend has only 'archive'")
        super().__init__(tasks=load_swe_tasks(tasks), split=split, task_order=task_order, **kwargs)
        self.backend = backend
        self.command_timeout = command_timeout
        self.test_timeout = test_timeout
        self.warm_pool = warm_pool
        self.snapshot_method: SnapshotMethod = snapshot_method

    @classmethod
    def needs_docker(cls, kwargs: Mapping[str, Any]) -> bool:
        """Every backend but ``local`` runs the episodes in Docker containers (``auto`` falls back to
        local folders only where no engine answers: a cluster must not place them there)."""
        return kwargs.get("backend", "auto") != "local"

    # ----- episodes -------------------------------------------------------------------
    def task_id(self, task: SWEInstance) -> str:
        return task.instance_id

    def start_episode(self, task: SWEInstance) -> tuple[SWEEpisode, str]:
        from horizongym.sandboxes import open_sandbox

        sandbox = open_sandbox(sandbox_spec(task), backend=self.backend, pool=self._pool())
        return SWEEpisode(task, sandbox, Editor(sandbox)), self.prompt(task, sandbox)

    def release_episode(self, episode: SWEEpisode) -> None:
        episode.sandbox.close()

    # ----- forking (horizongym.envs.snapshot) ----------------------------------------------
    def fork_state(self) -> Any:
        """The task's id and the episode as an :class:`SWEForkedEpisode` (its sandbox's files snapshot
        by ``snapshot_method``)."""
        from horizongym.sandboxes.snapshots import snapshot_sandbox

        episode = self.episode
        try:
            files = snapshot_sandbox(episode.sandbox, self.snapshot_method)
        except SandboxError as error:
            raise SandboxError(
                f"could not snapshot the episode's sandbox: {error}", retryable=error.retryable
            ) from error
        forked = SWEForkedEpisode(
            sandbox=files,
            commands=episode.commands,
            evaluation=copy.deepcopy(episode.evaluation),
            log=copy.deepcopy(episode.log),
            undo_history=copy.deepcopy(episode.editor.history),
        )
        return {"task_id": self.task_id(self.current_task), "episode": forked}

    def load_fork_state(self, state: Any) -> None:
        """Restore the snapshot's files into a new sandbox, rebuild the editor over it, and make that the episode."""
        from horizongym.sandboxes.snapshots import restore_sandbox

        forked = state["episode"]
        if not isinstance(forked, SWEForkedEpisode):
            raise ValueError(f"not a snapshot of an SWE-v0 episode: its episode is a {type(forked).__name__}")
        instance = self._task_by_id(state["task_id"])
        sandbox = restore_sandbox(forked.sandbox, pool=self._pool() if forked.sandbox.backend == "docker" else None)
        editor = Editor(sandbox)
        editor.history = forked.undo_history
        episode = SWEEpisode(instance, sandbox, editor, forked.commands, forked.evaluation, forked.log)
        super().load_fork_state({**state, "episode": episode})

    def release_snapshot(self, snapshot: Snapshot) -> None:
        """Remove the committed image of a ``commit`` snapshot (an ``archive`` one holds nothing outside)."""
        from horizongym.envs.base import TextEnvSnapshot
        from horizongym.sandboxes.snapshots import release_snapshot

        payload = snapshot.state
        if isinstance(payload, TextEnvSnapshot) and isinstance(payload.own.get("episode"), SWEForkedEpisode):
            release_snapshot(payload.own["episode"].sandbox)

    def _pool(self) -> SandboxPool | None:
        """The process's shared warm pool, when episodes run in docker and ``warm_pool`` is on."""
        from horizongym.sandboxes import docker_available
        from horizongym.sandboxes.pool import shared_pool

        if not self.warm_pool or self.backend == "local" or (self.backend == "auto" and not docker_available()):
            return None
        return shared_pool()

    def prompt(self, instance: SWEInstance, sandbox: Sandbox) -> str:
        workdir = sandbox.spec.workdir
        isolation = "" if sandbox.isolated else "\n(This sandbox is a local folder: nothing is isolated.)"
        return (
            f"Instance: {instance.instance_id}\n"
            f"A bug was reported in the Python project {instance.repo}, checked out at {workdir} "
            "(a git repository; the package imports from there, and `python -m pytest` runs tests).\n\n"
            f"<issue>\n{instance.problem_statement.strip()}\n</issue>\n\n"
            "Find the cause and fix it by editing the project's source files (bash and str_replace_editor; "
            "there is no network). When you are done, call submit(). Hidden tests then judge your changes; "
            f"changes to test files are ignored.{isolation}"
        )

    def _stop(self, limit: LimitName, detail: str) -> None:
        """End the episode as truncated: a containment limit was hit, or the sandbox died."""
        self.truncate_episode(SANDBOX_LIMITS[limit], detail)

    def _sandbox_failed(self, error: SandboxError, *, judging: bool = False) -> str:
        """End the episode on an infrastructure failure (see the module docstring); the tool's answer."""
        which = "the sandbox that runs the hidden tests" if judging else "the sandbox"
        detail = f"{which} stopped working: {error}"
        reason: TerminationReason = "infra_error" if judging else "sandbox_died"
        self.truncate_episode(reason, detail, retryable=error.retryable)
        self.end_turn()
        return f"The episode ends: {detail}"

    # ----- tools ----------------------------------------------------------------------
    @tool
    def bash(self, command: str) -> str:
        """Run a bash command in the repository folder and return its output (stdout and stderr).

        Args:
            command: the command line, e.g. "grep -rn 'def parse' src | head".
        """
        episode = self.episode
        episode.commands += 1
        try:
            result = episode.sandbox.exec(command, timeout=self.command_timeout)
        except SandboxError as error:
            return self._sandbox_failed(error)
        episode.log.append({"command": command, "exit_code": result.exit_code, "limit": result.limit})
        output = result.output if result.output.strip() else "(no output)"
        if result.limit is not None:
            reason = {
                "timeout": f"the command ran past its {self.command_timeout:g} s limit and was killed",
                "memory": "the command ran out of memory and was killed",
                "pids": "the command started too many processes and was killed",
                "file_size": "the command wrote a file larger than the limit and was killed",
                "sandbox_died": "the sandbox died",
            }[result.limit]
            self._stop(result.limit, f"{command!r}: {reason}")
            return f"{output}\n\n[{reason}; the episode ends]"
        return output if result.exit_code == 0 else f"{output}\n[exit code {result.exit_code}]"

    @tool
    def str_replace_editor(
        self,
        command: Literal["view", "create", "str_replace", "insert", "undo_edit"],
        path: str,
        file_text: str | None = None,
        old_str: str | None = None,
        new_str: str | None = None,
        insert_line: Annotated[int, Field(ge=0)] | None = None,
        view_range: list[int] | None = None,
    ) -> str:
        """View, create and edit files. Paths are absolute (the repository is in /work).

        Args:
            command: view (a file with line numbers, or a folder), create (a new file), str_replace
                (replace old_str, which must occur exactly once, by new_str), insert (new_str after line
                insert_line) or undo_edit (undo the last edit of the file).
            path: absolute path of a file or folder.
            file_text: the content of the new file (create).
            old_str: the exact text to replace, including indentation (str_replace).
            new_str: the replacement (str_replace) or the text to insert (insert).
            insert_line: the line after which new_str is inserted; 0 inserts at the top (insert).
            view_range: [first, last] lines to show, last = -1 for the end of the file (view).
        """
        episode = self.episode
        try:
            return episode.editor.run(
                command,
                path,
                file_text=file_text,
                old_str=old_str,
                new_str=new_str,
                insert_line=insert_line,
                view_range=view_range,
            )
        except EditorError as error:
            return f"Error: {error}"
        except SandboxError as error:
            return self._sandbox_failed(error)

    @tool
    def submit(self) -> str:
        """Submit your changes to /work; hidden tests judge them and the episode ends."""
        episode = self.episode
        try:
            diff = episode.sandbox.exec(DIFF_COMMAND, timeout=60).output
        except SandboxError as error:
            return self._sandbox_failed(error)
        try:
            evaluation = evaluate_patch(episode.instance, diff, backend=self.backend, timeout=self.test_timeout)
        except SandboxError as error:
            return self._sandbox_failed(error, judging=True)
        episode.evaluation = evaluation
        self.add_reward("resolved", 1.0 if evaluation.resolved else 0.0)
        self.set_info("evaluation", evaluation.summary())
        self.set_info("patch", diff)
        self.end_episode(success=evaluation.resolved)
        failed = sum(o != "passed" for o in [*evaluation.fail_to_pass.values(), *evaluation.pass_to_pass.values()])
        total = len(evaluation.fail_to_pass) + len(evaluation.pass_to_pass)
        verdict = "resolved" if evaluation.resolved else "not resolved"
        detail = f" ({evaluation.error})" if evaluation.error else f" ({failed} of {total} hidden tests fail)"
        return f"Submitted. The hidden tests say: {verdict}{detail if not evaluation.resolved else ''}."
