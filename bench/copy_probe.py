"""How soon a tiny byte-level model learns to copy, the skill the embedded demo's SearchJudge needs.

The demo (:mod:`horizongym.training.demo`) succeeds on a question only if the model copies two
spans: the entity from the question into ``<search>``, and the answer out of the page into
``<answer>``. This probe trains the demo's model (same config, same byte tokenizer, same SFT
loss, :func:`~horizongym.training.curriculum.train_phases`) on the two copying skills in their
simplest form, on the demo's own data, and measures them:

1. ``repeat``: a segment ``s`` of a corpus page (60 to 160 bytes; the pages of held-out
   questions left out, as in the demo), a newline, ``s`` again; the
   loss is on the second copy only. The second copy is predictable byte for byte only by
   looking back at the first (an induction head, Olsson et al. 2022, "In-context Learning and
   Induction Heads"), so its loss falls from the text's language-model loss (~2 nats per
   byte) towards 0 once the model copies.
2. ``answer``: ``Question: q`` and the expert's first observation (the page excerpt), then the
   expert's answering action ``<judge>…</judge> <answer>a</answer>``, loss on the action only:
   the demo's answer turn without the chat template and instructions.

Both phases run under one AdamW schedule. Measured after training, on data not trained on:

- ``repeat_copy_loss``: mean loss per byte of the second copy on 64 held-out segments (seed
  ``10_000``), nats per byte;
- ``answer_exact_match``: greedy decoding of the answer turn on the held-out test questions that
  the expert solves, exact match of the ``<answer>`` span with the question's answers
  (:func:`~horizongym.envs.search.rewards.exact_match`), with ``answer_action_loss`` (nats per
  action byte, the same held-out turns);
- ``seconds``: the training's wall time.

Figures (``{"bench": "copy_probe", "metric", "value", "unit", "params"}``, one JSON line each,
last): params ``hidden``, ``layers``, ``heads``, ``repeat_steps``, ``answer_steps``, ``batch``.

    python -m horizongym.bench.copy_probe [--quick] [--hidden 64 --layers 2 --heads 4]
        [--repeat-steps 600 --answer-steps 1500]

The full run (600 repeat and 1,500 answer steps of 32 sequences, the demo's hidden-64 2-layer
model) takes about 12 minutes on one CPU core; ``--repeat-steps 0`` measures the same model
without the copying phase; ``--quick`` (a 1-layer hidden-32 model, 40 + 40
steps of 8, 8 held-out questions) checks the pipeline in under a minute, its numbers mean
nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from horizongym.envs.search.rewards import exact_match
from horizongym.training.curriculum import Phase, Row, repeat_rows, train_phases
from horizongym.training.demo import (
    DemoSettings,
    build_model,
    copy_pages,
    expert_episodes,
    export_world,
    split_size,
)
from horizongym.training.rollouts.trajectory import Episode

HELD_OUT_SEED = 10_000
ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def answer_context(episode: Episode) -> str:
    """The answer turn's context: the question and the expert's first observation."""
    question = str(episode.messages[0]["content"]).split("Question: ", 1)[-1]
    return f"Question: {question}\n{episode.steps[0].observation}\n"


def answer_rows(tokenizer: Any, episodes: Sequence[Episode]) -> list[Row]:
    """The expert's answer turns (context weight 0, action and eos weight 1)."""
    rows: list[Row] = []
    for episode in episodes:
        context = tokenizer(answer_context(episode), add_special_tokens=False)["input_ids"]
        action = tokenizer(episode.steps[1].action, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append((context + action, [0.0] * len(context) + [1.0] * len(action)))
    return rows


@torch.no_grad()
def weighted_loss(model: Any, rows: Sequence[Row]) -> float:
    """Mean loss per weight-1 token of ``rows`` (nats)."""
    total, count = 0.0, 0
    for tokens, weights in rows:
        ids = torch.tensor([tokens])
        logprobs = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
        picked = logprobs.gather(1, ids[0, 1:, None]).squeeze(1)
        mask = torch.tensor(weights[1:]) == 1.0
        total += float(-(picked[mask]).sum())
        count += int(mask.sum())
    return total / max(count, 1)


@torch.no_grad()
def answer_exact_match(model: Any, tokenizer: Any, episodes: Sequence[Episode], answers: dict[str, list[str]]) -> float:
    """Share of ``episodes`` whose greedy answer turn gives one of the task's answers exactly."""
    hits = 0
    for episode in episodes:
        ids = tokenizer(answer_context(episode), add_special_tokens=False)["input_ids"]
        out = model.generate(
            torch.tensor([ids]),
            max_new_tokens=64,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        match = ANSWER.search(tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True))
        hits += match is not None and exact_match(match.group(1), answers[str(episode.task_id)]) == 1.0
    return hits / max(len(episodes), 1)


def run(
    settings: DemoSettings, repeat_steps: int, answer_steps: int, batch: int, held_out: int | None
) -> list[dict[str, Any]]:
    """Train one model through both phases and measure it; returns the figures."""
    with tempfile.TemporaryDirectory(prefix="copy-probe-") as tmp:
        folder = Path(tmp)
        data = export_world(folder / "data", settings.hops, settings.extra_questions)
        print(f"== expert episodes: {split_size(data, 'train')} train, {split_size(data, 'test')} test questions")
        train = [e for e in expert_episodes(data, settings, folder / "train.jsonl") if e.success]
        test = [e for e in expert_episodes(data, settings, folder / "test.jsonl", split="test") if e.success]
        test = test[:held_out]
        questions = [json.loads(line) for line in Path(data.split(":")[-1]).read_text(encoding="utf-8").splitlines()]
        answers = {q["id"]: q["answers"] for q in questions}
        pages = copy_pages(data)
        model, tokenizer = build_model(folder / "model", settings, seed=0)
        phases = [
            Phase("repeat", repeat_rows(tokenizer, pages, repeat_steps * batch, seed=0), repeat_steps, batch),
            Phase("answer", answer_rows(tokenizer, train), answer_steps, batch),
        ]
        print(f"== training on {len(train)} answer turns, {repeat_steps} + {answer_steps} steps of {batch}")
        start = time.perf_counter()
        train_phases(
            model,
            [p for p in phases if p.steps],
            lr=settings.sft_lr,
            seed=0,
            pad_token_id=int(tokenizer.pad_token_id),
            log=lambda line: print("   " + line, flush=True),
        )
        seconds = time.perf_counter() - start
        model.eval()
        held_out_repeat = repeat_rows(tokenizer, pages, 64, seed=HELD_OUT_SEED)
        params = {
            "hidden": settings.hidden_size,
            "layers": settings.num_layers,
            "heads": settings.num_heads,
            "repeat_steps": repeat_steps,
            "answer_steps": answer_steps,
            "batch": batch,
        }
        return [
            figure("repeat_copy_loss", weighted_loss(model, held_out_repeat), "nats/byte", **params),
            figure("answer_action_loss", weighted_loss(model, answer_rows(tokenizer, test)), "nats/byte", **params),
            figure(
                "answer_exact_match",
                answer_exact_match(model, tokenizer, test, answers),
                "fraction",
                held_out=len(test),
                **params,
            ),
            figure("seconds", seconds, "s", **params),
        ]


def figure(metric: str, value: float, unit: str, **params: Any) -> dict[str, Any]:
    return {"bench": "copy_probe", "metric": metric, "value": round(float(value), 4), "unit": unit, "params": params}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m horizongym.bench.copy_probe", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="toy sizes, under a minute; the numbers mean nothing")
    parser.add_argument("--hidden", type=int, default=None, help="hidden size (default: the demo's)")
    parser.add_argument("--layers", type=int, default=None, help="layers (default: the demo's)")
    parser.add_argument("--heads", type=int, default=None, help="attention heads (default: the demo's)")
    parser.add_argument("--repeat-steps", type=int, default=None, help="repeat-phase steps (default 600)")
    parser.add_argument("--answer-steps", type=int, default=None, help="answer-phase steps (default 1500)")
    args = parser.parse_args(argv)
    steps: tuple[int, int, int, int | None]
    if args.quick:
        settings = replace(
            DemoSettings(), extra_questions=200, sft_tasks=200, hidden_size=32, num_layers=1, num_heads=2
        )
        steps = (40, 40, 8, 8)
    else:
        settings, steps = DemoSettings(), (600, 1500, 32, None)
    settings = replace(
        settings,
        hidden_size=args.hidden or settings.hidden_size,
        num_layers=args.layers or settings.num_layers,
        num_heads=args.heads or settings.num_heads,
    )
    repeat_steps, answer_steps, batch, held_out = steps
    repeat_steps = repeat_steps if args.repeat_steps is None else args.repeat_steps
    answer_steps = answer_steps if args.answer_steps is None else args.answer_steps
    for line in run(settings, repeat_steps, answer_steps, batch, held_out):
        print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
