"""Search-R1 / FlashRAG questions (Jin et al. 2025, arXiv 2503.09516; FlashRAG, arXiv 2405.13576).

The format of FlashRAG's data sets (``RUC-NLPIR/FlashRAG_datasets``: ``nq/test.jsonl``,
``hotpotqa/dev.jsonl``…), on which Search-R1 and ReSeek train: JSONL items with ``id``,
``question``, ``golden_answers`` (a list: every accepted answer) and an optional ``metadata``
object (the source data set's own fields). The corpus is a separate JSONL of
``{"id", "contents"}`` with ``contents`` = ``"Title"\\ntext`` or ``Title\\ntext``
(:func:`~horizongym.envs.search.importers.load_jsonl_corpus` reads it).

These questions name no gold documents (``gold_doc_ids`` is empty), so SearchJudge-v0 labels a
search's information useful when it contains an accepted answer, as Search-R1's own retrieval
check does (:func:`~horizongym.envs.search.rewards.answer_in_text`). ``kind`` and ``hops``:
``metadata["type"]`` when it names a multi-hop type (HotpotQA's ``bridge``/``comparison``,
2WikiMultiHopQA's four types), then with 2 hops; else ``single`` with 1 hop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from horizongym.envs.jsonl import json_objects
from horizongym.envs.search.fields import field_error, id_field, string_list, text_field, unique
from horizongym.envs.search.twowiki import TYPES
from horizongym.envs.search.types import QATask, TaskKind

__all__ = ["load_searchr1_questions"]

_MULTI_HOP: dict[str, TaskKind] = {"bridge": "bridge", **TYPES}


def _kind(metadata: dict[str, Any]) -> TaskKind:
    value = metadata.get("type")
    return _MULTI_HOP.get(value, "single") if isinstance(value, str) else "single"


def load_searchr1_questions(path: str | Path) -> list[QATask]:
    """Tasks from a Search-R1 / FlashRAG questions file (JSONL, gzip or not); see the module docstring."""
    path = Path(path)
    tasks: list[QATask] = []
    for index, where, record in json_objects(path):
        qid = id_field(where, record, "id") if "id" in record else f"line-{index + 1}"
        question = text_field(where, record, "question")
        if "golden_answers" not in record:
            raise field_error(where, "golden_answers", "a non-empty list of answer strings", missing=True)
        answers = unique(string_list(where, "golden_answers", record["golden_answers"]))
        if not answers:
            raise field_error(where, "golden_answers", "a non-empty list of answer strings", record["golden_answers"])
        metadata = record.get("metadata", {})
        if not isinstance(metadata, dict):
            raise field_error(where, "metadata", "an object", metadata)
        kind = _kind(metadata)
        meta = {k: v for k, v in record.items() if k not in ("id", "question", "golden_answers")}
        tasks.append(
            QATask(
                id=qid,
                question=question,
                answers=answers,
                gold_doc_ids=(),
                kind=kind,
                hops=1 if kind == "single" else 2,
                source="searchr1",
                meta=meta,
            )
        )
    return tasks
