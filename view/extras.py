"""What an episode's env family recorded beyond messages, for the episode view (``EXTRAS``).

* ``swe_diff`` (SWE-v0): the patch the episode submitted, the ``patch`` its ``submit`` turn put in
  its step info (``envs/swe/env.py``); null when it submitted none.
* ``kernel`` (KernelGen-v0): one row per evaluated submission, from the ``evaluation`` of its
  step info (``envs/kernels/env.py`` ``evaluation_info``): ``turn``, ``status``, ``speedup``,
  ``runtime_ms`` (the candidate's time), ``reference_ms``, ``compile_s`` (null: the evaluation
  records its total ``seconds``, which the row keeps, not the build's share), and the rest of it.
* ``search`` (SearchJudge-v0): one row per search: its ``turn``, ``query``, the documents it
  returned (``id``, ``title``, ``gold``), and the agent's ``verdict`` on them (the next ``judge``
  reward event, null when never judged), plus ``useful`` (a gold document among them, as the env
  judged it). Titles are read from the recorded ``<information>``; ids and ``gold`` from the env:
  the search is run again on the env's retriever for the episode's task and kept only when it
  returns the recorded titles (else ``id`` and ``gold`` are null: the corpus changed).

Every key is null for the other envs.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from horizongym.envs.registration import short_id
from horizongym.training.rollouts.trajectory import Episode

_DOC = re.compile(r"(?:^|<information>)Doc \d+\(Title: (.*?)\) ", re.MULTILINE)


def episode_extras(episode: Episode) -> dict[str, Any]:
    """The EXTRAS of ``episode`` (module docstring)."""
    family = short_id(episode.env_id)
    return {
        "swe_diff": swe_diff(episode) if family == "SWE-v0" else None,
        "kernel": kernel_rows(episode) if family == "KernelGen-v0" else None,
        "search": search_rows(episode) if family == "SearchJudge-v0" else None,
    }


def swe_diff(episode: Episode) -> str | None:
    patches = [step.info["patch"] for step in episode.steps if isinstance(step.info.get("patch"), str)]
    return patches[-1] if patches else None


def kernel_rows(episode: Episode) -> list[dict[str, Any]]:
    rows = []
    for step in episode.steps:
        evaluation = step.info.get("evaluation")
        if not isinstance(evaluation, dict):
            continue
        rows.append(
            {
                "turn": step.turn,
                "status": evaluation.get("status"),
                "speedup": evaluation.get("speedup"),
                "compile_s": evaluation.get("compile_s"),
                "runtime_ms": evaluation.get("candidate_ms"),
                "reference_ms": evaluation.get("reference_ms"),
                **{k: v for k, v in evaluation.items() if k not in ("status", "speedup", "reference_ms")},
            }
        )
    return rows


def search_rows(episode: Episode) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    pending: dict[str, Any] | None = None
    for step in episode.steps:
        judgments = iter([e for e in step.reward_events if e.get("event") == "judge"])
        for index, result in enumerate(step.tool_results):
            if result.get("error"):
                continue
            if result.get("name") == "search":
                call = step.tool_calls[index] if index < len(step.tool_calls) else {}
                query = str((call.get("arguments") or {}).get("query", ""))
                titles = _DOC.findall(str(result.get("content", "")))
                pending = {"turn": step.turn, "query": query, "docs": _docs(episode, query, titles)}
                pending.update(verdict=None, useful=None)
                rows.append(pending)
            elif result.get("name") == "judge":
                event = next(judgments, None)
                if event is not None and pending is not None:
                    pending.update(verdict=event.get("verdict"), useful=event.get("useful"))
                    pending = None
    return rows


def _docs(episode: Episode, query: str, titles: list[str]) -> list[dict[str, Any]]:
    hits = _search_again(episode, query)
    if hits is not None and [title for _, title, _ in hits] == titles:
        return [{"id": doc_id, "title": title, "gold": gold} for doc_id, title, gold in hits]
    return [{"id": None, "title": title, "gold": None} for title in titles]


_envs: dict[str, Any] = {}
_envs_lock = threading.Lock()


def _search_again(episode: Episode, query: str) -> list[tuple[str, str, bool]] | None:
    """(id, title, gold) of the documents the env's retriever returns for ``query`` on the episode's
    task; None when the env cannot be built or the task is not found. One env per settings, kept."""
    key = json.dumps([episode.env_id, episode.env_kwargs], sort_keys=True, default=str)
    with _envs_lock:
        if key not in _envs:
            try:
                import horizongym

                _envs[key] = horizongym.make(episode.env_id, **episode.env_kwargs).unwrapped
            except Exception:  # an env not registered here, or settings that no longer build
                _envs[key] = None
        env = _envs[key]
        if env is None or episode.task_id is None:
            return None
        try:
            env.reset(options={"task_id": episode.task_id})
            gold = set(env.episode.task.gold_doc_ids)
            hits = env.retriever.search([query], env.top_k)[0]
        except Exception:  # a task the env no longer has
            return None
    return [(hit.document.id, hit.document.title, hit.document.id in gold) for hit in hits]
