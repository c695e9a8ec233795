"""A stored run in the formats other tools read: a Hugging Face dataset, ATIF trajectories, chat SFT JSONL.

    horizongym export RUN.jsonl --format hf|atif|sft-jsonl --out PATH

* ``hf``: a ``datasets.Dataset`` written with ``save_to_disk(PATH)``, one row per episode, in the
  conversational format TRL's ``SFTTrainer`` and ``GRPOTrainer`` read (``trl.data_utils``): by
  default ``prompt`` (the system prompt and the first observation) and ``completion`` (every later
  message), or with ``layout="messages"`` the whole conversation as ``messages`` (the layout for
  SFT on the actions alone, with TRL's ``assistant_only_loss``: a completion holds the env's
  answers too, and SFT on prompt-completion rows learns them as well). Assistant tool
  calls carry their arguments as objects, as chat templates expect. Beside them: ``tools`` (the
  env's OpenAI function schemas, which TRL renders into the prompt), ``reward``,
  ``reward_components`` (summed over the turns), ``success``, ``outcome``, ``trainable``,
  ``termination_reason``, ``env_id``, ``env_kwargs``, ``seed``, ``sample``, ``task_id``,
  ``policy``, ``num_turns``, and per turn ``prompt_token_ids``, ``completion_token_ids`` and
  ``logprobs`` (None where the policy kept none, e.g. a remote model's). Messages, tools and reward
  components are ``datasets.Json`` values: each row reads back exactly as written, where Arrow's
  inferred structs would give every message and schema the keys of all the others.
* ``atif``: a folder with one ATIF trajectory JSON file per episode (see
  :mod:`horizongym.training.rollouts.atif`).
* ``sft-jsonl``: one line per episode, ``{"messages": [...], "tools": [...]}``: the chat format of
  OpenAI's fine-tuning files, which most SFT trainers read; tool-call arguments are JSON text there,
  as in OpenAI's API.

Which episodes: ``hf`` and ``sft-jsonl`` leave out the episodes the policy did not earn (their
outcome is an infrastructure, env or policy error: :attr:`Episode.trainable`) unless
``include_failed``; ``atif`` keeps every episode, its outcome in the trajectory. ``only_success``
keeps the successful episodes only, in every format. What was left out, and why, is in the
summary line.

The tool schemas are not in the records: each env (id and keyword arguments) is built and reset
once to read them, as ``training.sft`` does. Every export is written whole or not at all (into a
temporary path renamed into place), and never over an existing file or a folder that holds files.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, cast, get_args

from horizongym.agents.base import Message
from horizongym.argtypes import os_error
from horizongym.training.rollouts.atif import atif_trajectory
from horizongym.training.rollouts.engine import EnvRecipe
from horizongym.training.rollouts.failure_report import failure_counts
from horizongym.training.rollouts.store import RunFileError, read_run
from horizongym.training.rollouts.trajectory import Episode

ExportFormat = Literal["hf", "atif", "sft-jsonl"]
FORMATS: Final[tuple[str, ...]] = get_args(ExportFormat)
Layout = Literal["prompt-completion", "messages"]
LAYOUTS: Final[tuple[str, ...]] = get_args(Layout)

CHAT_KEYS: Final = ("role", "content", "tool_calls", "tool_call_id", "name")
"""The keys of an OpenAI chat message; a record's own marks (``fresh_context``) are left out."""

ToolsOf = Callable[[Episode], list[dict[str, Any]]]
"""The tool schemas offered in an episode."""


class ExportError(ValueError):
    """Why a run cannot be exported, in one line that names the fix."""


def chat_messages(episode: Episode, *, arguments: Literal["object", "json"]) -> list[Message]:
    """The episode's conversation as OpenAI chat messages.

    ``arguments``: tool-call arguments as objects (chat templates, TRL) or as JSON text (OpenAI's API).
    """
    messages: list[Message] = []
    for message in episode.messages:
        clean: Message = {key: message[key] for key in CHAT_KEYS if key in message}
        if clean.get("tool_calls"):
            clean["tool_calls"] = [_call(call, arguments) for call in clean["tool_calls"]]
        messages.append(clean)
    return messages


def _call(call: dict[str, Any], arguments: Literal["object", "json"]) -> dict[str, Any]:
    function = dict(call.get("function") or {})
    value = function.get("arguments")
    if arguments == "object" and isinstance(value, str):
        with contextlib.suppress(ValueError):  # text that is not JSON stays as the model wrote it
            function["arguments"] = json.loads(value)
    elif arguments == "json" and not isinstance(value, str):
        function["arguments"] = json.dumps(value if value is not None else {}, ensure_ascii=False)
    return {**call, "function": function}


def opening_length(messages: Sequence[Message]) -> int:
    """How many messages open the conversation before the first assistant turn (system prompt, first observation)."""
    for index, message in enumerate(messages):
        if message.get("role") == "assistant":
            return index
    return len(messages)


def reward_components(episode: Episode) -> dict[str, float]:
    """Each reward component summed over the episode's turns (they sum to its reward)."""
    total: dict[str, float] = {}
    for step in episode.steps:
        for name, value in step.reward_components.items():
            total[name] = total.get(name, 0.0) + value
    return total


def _per_turn(values: Iterable[list[Any] | None]) -> list[list[Any] | None] | None:
    """One entry per turn (None where the policy kept nothing); None when no turn kept any."""
    listed = [list(v) if v is not None else None for v in values]
    return listed if any(v is not None for v in listed) else None


def hf_row(episode: Episode, tools: list[dict[str, Any]], layout: Layout = "prompt-completion") -> dict[str, Any]:
    """One row of the ``hf`` dataset (see the module docstring for its columns)."""
    messages = chat_messages(episode, arguments="object")
    row: dict[str, Any]
    if layout == "messages":
        row = {"messages": messages}
    else:
        split = opening_length(messages)
        row = {"prompt": messages[:split], "completion": messages[split:]}
    row.update(
        tools=tools,
        reward=episode.total_reward,
        reward_components=reward_components(episode),
        success=episode.success,
        outcome=episode.outcome,
        trainable=episode.trainable,
        termination_reason=episode.termination_reason,
        env_id=episode.env_id,
        env_kwargs=json.loads(json.dumps(episode.env_kwargs, default=str)),
        seed=episode.seed,
        sample=episode.sample,
        task_id=episode.task_id,
        policy=episode.policy,
        num_turns=episode.num_turns,
        prompt_token_ids=_per_turn(s.prompt_token_ids for s in episode.steps),
        completion_token_ids=_per_turn(s.token_ids for s in episode.steps),
        logprobs=_per_turn(s.logprobs for s in episode.steps),
    )
    return row


def sft_record(episode: Episode, tools: list[dict[str, Any]]) -> dict[str, Any]:
    """One line of the ``sft-jsonl`` file: the conversation and the tools offered."""
    return {"messages": chat_messages(episode, arguments="json"), "tools": tools}


def _hf_features(layout: Layout) -> Any:
    from datasets import Features, Json, List, Value

    if layout == "messages":
        conversation = {"messages": List(Json())}
    else:
        conversation = {"prompt": List(Json()), "completion": List(Json())}
    return Features(
        {
            **conversation,
            "tools": List(Json()),
            "reward": Value("float64"),
            "reward_components": Json(),
            "success": Value("bool"),
            "outcome": Value("string"),
            "trainable": Value("bool"),
            "termination_reason": Value("string"),
            "env_id": Value("string"),
            "env_kwargs": Json(),
            "seed": Value("int64"),
            "sample": Value("int64"),
            "task_id": Value("string"),
            "policy": Value("string"),
            "num_turns": Value("int64"),
            "prompt_token_ids": List(List(Value("int64"))),
            "completion_token_ids": List(List(Value("int64"))),
            "logprobs": List(List(Value("float64"))),
        }
    )


class EnvTools:
    """The tool schemas each env offers: the env is built and reset once per env id and keyword arguments."""

    def __init__(self) -> None:
        self._cache: dict[str, list[dict[str, Any]]] = {}

    def __call__(self, episode: Episode) -> list[dict[str, Any]]:
        key = json.dumps([episode.env_id, episode.env_kwargs], sort_keys=True, default=str)
        if key not in self._cache:
            self._cache[key] = self._read(episode)
        return self._cache[key]

    @staticmethod
    def _read(episode: Episode) -> list[dict[str, Any]]:
        try:
            env = EnvRecipe(episode.env_id, dict(episode.env_kwargs)).build()
        except Exception as exc:
            raise ExportError(
                f"cannot build {episode.env_id} with {episode.env_kwargs} to read its tools: "
                f"{type(exc).__name__}: {_first_line(exc)} (an env of your own: name its module with --import MODULE)"
            ) from exc
        try:
            return [dict(schema) for schema in env.reset(seed=episode.seed)[1].get("tools", [])]
        except Exception as exc:
            raise ExportError(
                f"cannot reset {episode.env_id} to read its tools: {type(exc).__name__}: {_first_line(exc)}"
            ) from exc
        finally:
            env.close()


@dataclass
class ExportResult:
    """What an export wrote and what it left out."""

    format: str
    out: Path
    written: int
    failed: list[Episode] = field(default_factory=list)
    """Episodes left out because the policy did not earn them (``include_failed`` keeps them)."""
    unsuccessful: int = 0
    """Episodes left out by ``only_success``."""
    empty: int = 0
    """Episodes left out for having no messages (their env failed before the first observation)."""

    def line(self) -> str:
        """The summary line the command prints."""
        episodes = "episode" if self.written == 1 else "episodes"
        text = f"export: wrote {self.written} {episodes} as {self.format} to {self.out}"
        return text + (f"; left out {', '.join(self.left_out())}" if self.left_out() else "")

    def left_out(self) -> list[str]:
        parts = []
        if self.failed:
            parts.append(f"{len(self.failed)} failed ({failure_counts(self.failed)}; --include-failed keeps them)")
        if self.unsuccessful:
            parts.append(f"{self.unsuccessful} unsuccessful (--only-success)")
        if self.empty:
            parts.append(f"{self.empty} with no messages (their env failed before the first observation)")
        return parts


def export_run(
    run: str | os.PathLike[str],
    format: str,
    out: str | os.PathLike[str],
    *,
    include_failed: bool = False,
    only_success: bool = False,
    layout: str = "prompt-completion",
    tools: ToolsOf | None = None,
) -> ExportResult:
    """Export the episodes of the run file ``run`` (see :func:`export_episodes`).

    Raises :class:`ExportError` for a missing, unreadable or empty run, and for what
    :func:`export_episodes` refuses.
    """
    path, target = Path(run), Path(out)
    if not path.is_file():
        raise ExportError(f"no episode file at {path}" + (" (it is a folder)" if path.is_dir() else ""))
    if target.exists() and target.resolve() == path.resolve():
        raise ExportError(f"--out {target} is the run being read; choose another path")
    check_out(format, target, layout)
    try:
        episodes = read_run(path, "export")
    except RunFileError as exc:
        raise ExportError(str(exc)) from None
    return export_episodes(
        episodes, format, target, include_failed=include_failed, only_success=only_success, layout=layout, tools=tools
    )


def check_out(format: str, out: Path, layout: str = "prompt-completion") -> None:
    """Raise :class:`ExportError` when ``format`` or ``layout`` is unknown or ``out`` cannot take the export.

    Checked before any episode is read or any env built. The folder ``out`` goes in is created.
    """
    if format not in FORMATS:
        raise ExportError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if layout not in LAYOUTS:
        raise ExportError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if format == "hf" and importlib.util.find_spec("datasets") is None:
        raise ExportError("--format hf needs the datasets package: pip install 'horizongym[adapters]'")
    folder = format != "sft-jsonl"
    if folder and out.is_file():
        raise ExportError(f"--out {out} is a file; --format {format} writes a folder: give a new folder's path")
    if not folder and out.is_dir():
        raise ExportError(f"--out {out} is a folder; give a file path such as {out / 'sft.jsonl'}")
    if (out.is_dir() and any(out.iterdir())) or (out.is_file() and out.stat().st_size > 0):
        raise ExportError(f"--out {out} already exists; choose another path (an export never overwrites)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".probe")
        os.rmdir(probe)
    except OSError as exc:
        raise ExportError(f"cannot write --out {out}: {os_error(exc)}; choose another path") from None


def export_episodes(
    episodes: Sequence[Episode],
    format: str,
    out: str | os.PathLike[str],
    *,
    include_failed: bool = False,
    only_success: bool = False,
    layout: str = "prompt-completion",
    tools: ToolsOf | None = None,
) -> ExportResult:
    """Write ``episodes`` to ``out`` in ``format`` (``hf``, ``atif`` or ``sft-jsonl``; see the module docstring).

    ``tools`` gives each episode's tool schemas (default: :class:`EnvTools`, which builds its env).
    Raises :class:`ExportError` when ``out`` cannot take the export, an env cannot be built to read
    its tools, or every episode is left out.
    """
    target = Path(out)
    check_out(format, target, layout)
    result = ExportResult(format=format, out=target, written=0)
    kept: list[Episode] = []
    for episode in episodes:
        if format != "atif" and not include_failed and not episode.trainable:
            result.failed.append(episode)
        elif only_success and episode.success is not True:
            result.unsuccessful += 1
        elif not episode.messages:
            result.empty += 1
        else:
            kept.append(episode)
    if not kept:
        why = ", ".join(result.left_out())
        raise ExportError(f"nothing to export: all {len(episodes)} episodes were left out ({why})")
    tools_of = tools or EnvTools()
    columns = cast(Layout, layout)  # checked above
    try:
        if format == "hf":
            rows = [hf_row(e, tools_of(e), columns) for e in kept]
            _write_atomically(target, lambda tmp: _save_dataset(rows, columns, tmp))
        elif format == "atif":
            documents = [(_atif_name(i, e), atif_trajectory(e, tools_of(e))) for i, e in enumerate(kept)]
            _write_atomically(target, lambda tmp: _write_json_files(documents, tmp))
        else:
            lines = [json.dumps(sft_record(e, tools_of(e)), ensure_ascii=False) + "\n" for e in kept]
            _write_atomically(target, lambda tmp: tmp.write_text("".join(lines), encoding="utf-8"))
    except OSError as exc:
        raise ExportError(f"cannot write --out {target}: {os_error(exc)}; choose another path") from None
    result.written = len(kept)
    return result


def _atif_name(index: int, episode: Episode) -> str:
    """``00003-KeyChain-v0-seed2-sample0.json``: in run order, and unique within the run."""
    env = "".join(c if c.isalnum() or c in "-_." else "_" for c in episode.env_id.rpartition("/")[2])
    return f"{index:05d}-{env}-seed{episode.seed}-sample{episode.sample}.json"


def _save_dataset(rows: list[dict[str, Any]], layout: Layout, folder: Path) -> None:
    from datasets import Dataset
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    dataset = Dataset.from_list(rows, features=_hf_features(layout))
    bars_were_on = not are_progress_bars_disabled()
    disable_progress_bars()  # the summary line says what was written
    try:
        dataset.save_to_disk(str(folder))
    finally:
        if bars_were_on:
            enable_progress_bars()


def _write_json_files(documents: list[tuple[str, dict[str, Any]]], folder: Path) -> None:
    folder.mkdir()
    for name, document in documents:
        (folder / name).write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _write_atomically(target: Path, write: Callable[[Path], Any]) -> None:
    """Have ``write`` fill a temporary path beside ``target``, then rename it into place; on failure remove it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    temporary = scratch / "export"
    try:
        write(temporary)
        os.replace(temporary, target)  # an empty folder or empty file at ``target`` is replaced
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
