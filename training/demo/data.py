"""The demo's data: the default fictional world exported as a JSONL corpus and question file
(its own single-hop questions plus generated train questions), and the pages for the copying phase."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def fresh_questions(seed: int, count: int, exclude: set[str], *, distinct: bool = False) -> list[Any]:
    """``count`` new single-hop questions over the default world (stream ``seed``) naming no entity in ``exclude``.

    They come from the world's own question builder with another seed, so they read like its
    questions. A question the world already asks is skipped, and so is one whose text holds an
    excluded name anywhere (also inside another name, as a place in a novel's title). With
    ``distinct``, each question is about an entity no earlier one of the list is about.
    """
    from horizongym.envs.search.world import default_world

    taken = set(exclude)
    chosen: list[Any] = []
    for task in default_world().new_questions(seed, hops=1):
        if len(chosen) == count:
            break
        if any(name in task.question for name in taken):
            continue
        chosen.append(task)
        if distinct:
            taken.add(task.meta["chain"][0])
    return chosen


def extra_questions(count: int, exclude: set[str], seed: int = 1) -> list[Any]:
    """``count`` generated train questions (stream ``seed``) that name no entity in ``exclude``."""
    return fresh_questions(seed, count, exclude)


HELD_OUT_STREAM = 2
"""The question stream the generated held-out questions come from (train questions use stream 1)."""


def export_world(folder: Path, hops: Sequence[int], extra: int, held_out: int = 0) -> str:
    """Write the default world's corpus and questions as JSONL; return the data spec.

    Held out (``split`` test): the world's own ``hops``-hop test questions (comparison questions
    are left out: they always need two pages), then ``held_out`` generated single-hop questions,
    each about an entity no other held-out question is about. Train: the world's own train
    questions and ``extra`` generated single-hop questions, leaving out every one that names an
    entity a held-out question is about, so held-out and train questions are disjoint in
    entities. Files are rewritten only when their content changes, so the env's corpus and
    index caches (keyed by content) are reused.
    """
    from horizongym.envs.search.world import default_world

    world = default_world()
    folder.mkdir(parents=True, exist_ok=True)
    corpus = "".join(json.dumps({"id": d.id, "title": d.title, "text": d.text}) + "\n" for d in world.iter_documents())
    own = [t for t in world.tasks if t.hops in hops and t.kind != "comparison"]
    own_test = [t for t in own if t.meta["split"] == "test"]
    tested = {t.meta["chain"][0] for t in own_test}
    train_names = {name for t in own if t.meta["split"] == "train" for name in t.meta["chain"]} - tested
    new_test = fresh_questions(HELD_OUT_STREAM, held_out, tested | train_names, distinct=True) if held_out else []
    tested |= {t.meta["chain"][0] for t in new_test}
    rows = [(t.id, t, "test") for t in own_test]
    rows += [(f"heldout-{i:05d}", t, "test") for i, t in enumerate(new_test)]
    rows += [
        (t.id, t, "train") for t in own if t.meta["split"] == "train" and not any(name in t.question for name in tested)
    ]
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
                "entity": t.meta["chain"][0],
            }
        )
        + "\n"
        for task_id, t, split in rows
    )
    name = f"questions-hops{'-'.join(map(str, hops))}-extra{extra}-heldout{held_out}.jsonl"
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
