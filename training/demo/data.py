"""The demo's data: the default fictional world exported as a JSONL corpus and question file
(its own single-hop questions plus generated train questions), and the pages for the copying phase."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def extra_questions(count: int, exclude: set[str], seed: int = 1) -> list[Any]:
    """``count`` new single-hop questions over the default world that name no entity in ``exclude``.

    They come from the world's own question builder with another seed, so they read like its
    questions. A question the world already asks is skipped, and so is one whose text holds an
    excluded name anywhere (also inside another name, as a place in a novel's title).
    """
    from horizongym.envs.search.world import default_world

    fresh = default_world().new_questions(seed, hops=1)
    return list(itertools.islice((t for t in fresh if not any(name in t.question for name in exclude)), count))


def export_world(folder: Path, hops: Sequence[int], extra: int) -> str:
    """Write the default world's corpus and questions as JSONL; return the data spec.

    The questions are the world's ``hops``-hop questions with its own train/test split
    (comparison questions are left out: they always need two pages), plus ``extra`` generated
    single-hop train questions that name no entity a test question is about. Files are
    rewritten only when their content changes, so the env's corpus and index caches (keyed by
    content) are reused.
    """
    from horizongym.envs.search.world import default_world

    world = default_world()
    folder.mkdir(parents=True, exist_ok=True)
    corpus = "".join(json.dumps({"id": d.id, "title": d.title, "text": d.text}) + "\n" for d in world.iter_documents())
    own = [t for t in world.tasks if t.hops in hops and t.kind != "comparison"]
    tested = {t.meta["chain"][0] for t in own if t.meta["split"] == "test"}
    rows = [(t.id, t, t.meta["split"]) for t in own]
    rows += [(f"extra-{i:05d}", t, "train") for i, t in enumerate(extra_questions(extra, tested))]
    questions = "".join(
        json.dumps(
            {
                "id": task_id,
                "question": t.question,
                "answers": list(t.answers),
                "gold_doc_ids": list(t.gold_doc_ids),
                "type": t.kind,
                "hops": t.hops,
                "split": split,
            }
        )
        + "\n"
        for task_id, t, split in rows
    )
    name = f"questions-hops{'-'.join(map(str, hops))}-extra{extra}.jsonl"
    corpus_path, questions_path = folder / "corpus.jsonl", folder / name
    for path, text in ((corpus_path, corpus), (questions_path, questions)):
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return f"jsonl:{corpus_path.resolve()}:{questions_path.resolve()}"


def copy_pages(data: str) -> list[str]:
    """The corpus texts for the copying phase, without the pages the held-out questions are about."""
    _, corpus_path, questions_path = data.split(":")
    held_out = {
        doc_id
        for line in Path(questions_path).read_text(encoding="utf-8").splitlines()
        if (row := json.loads(line))["split"] == "test"
        for doc_id in row["gold_doc_ids"]
    }
    rows = (json.loads(line) for line in Path(corpus_path).read_text(encoding="utf-8").splitlines())
    return [row["text"] for row in rows if row["id"] not in held_out]


def split_size(data: str, split: str) -> int:
    """The number of questions in ``split`` of the data spec ``data``."""
    from horizongym.envs.search.env import SearchJudgeEnv

    return len(SearchJudgeEnv(tasks=data, split=split).tasks)
