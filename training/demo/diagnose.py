"""Why the demo's model fails where it does: the kind of each held-out failure, and how often
sampling solves a question that greedy decoding fails.

``python -m horizongym.training.demo.diagnose [--out runs/demo] [--stage after_sft|seed<k>]
[--samples 8] [--temperature 1.0] [--questions N]``

Failure kinds, from a greedy evaluation's episodes (``sft/eval_after_sft.jsonl``, or
``seed<k>/eval_after_rl.jsonl``) and each question's accepted answers and gold page:

* ``copy``: an accepted answer was in an observation, and the answer given was another;
* ``beyond_shown``: the gold page was retrieved, but the answer lies past the characters shown;
* ``other_page``: no search returned the gold page;
* ``no_answer``: the episode ended without an answer (turn limit, malformed actions).

Pass rates: ``samples`` episodes per question at ``temperature`` from the stage's model (SFT's
``sft/model``; an RL seed's last checkpoint), counted as a histogram of successes per question,
one for the questions greedy decoding solves and one for those it fails. A question that greedy
decoding fails and no sample solves gives RL nothing to reinforce toward its answer.

Each figure is one JSON object per line, after a readable table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAILURE_KINDS = ("copy", "beyond_shown", "other_page", "no_answer")


@dataclass(frozen=True)
class Question:
    """What a failure is judged against: the accepted answers and the gold page's title."""

    answers: tuple[str, ...]
    gold_title: str


def load_questions(data: str) -> dict[str, Question]:
    """The questions of the data spec ``jsonl:CORPUS:QUESTIONS`` by id."""
    _, corpus_path, questions_path = data.split(":")
    titles = {
        row["id"]: row["title"] for row in map(json.loads, Path(corpus_path).read_text(encoding="utf-8").splitlines())
    }
    questions = {}
    for row in map(json.loads, Path(questions_path).read_text(encoding="utf-8").splitlines()):
        questions[row["id"]] = Question(tuple(row["answers"]), titles[row["gold_doc_ids"][0]])
    return questions


def failure_kind(episode: Any, question: Question) -> str | None:
    """The kind of a greedy episode's failure (module docstring); None when it succeeded."""
    from horizongym.envs.search.rewards import answer_in_text

    if episode.success:
        return None
    if not episode.terminated:
        return "no_answer"
    shown = [step.observation for step in episode.steps]
    if any(answer_in_text(text, question.answers) for text in shown):
        return "copy"
    if any(f"(Title: {question.gold_title})" in text for text in shown):
        return "beyond_shown"
    return "other_page"


def failure_kinds(episodes: Sequence[Any], questions: dict[str, Question]) -> dict[str, int]:
    """How many episodes succeeded and how many failed in each way."""
    counts = Counter(failure_kind(e, questions[e.task_id]) or "success" for e in episodes)
    return {"episodes": len(episodes), "success": counts["success"], **{k: counts[k] for k in FAILURE_KINDS}}


def pass_histograms(
    model: Any,
    tokenizer: Any,
    recipe: Any,
    greedy: Sequence[Any],
    samples: int,
    temperature: float,
    max_new_tokens: int,
) -> dict[str, list[int]]:
    """Per greedy outcome, how many questions ``0..samples`` of their sampled episodes solved."""
    from horizongym.agents.hf import TransformersPolicy
    from horizongym.training.rollouts.engine import RolloutEngine

    policy = TransformersPolicy(
        model, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, max_batch_size=len(greedy) * samples
    )

    async def run(engine: RolloutEngine) -> list[Any]:
        try:
            return await engine.run(len(greedy), samples, seed=min(e.seed for e in greedy))
        finally:
            await policy.aclose()

    with RolloutEngine(recipe, policy, concurrency=len(greedy) * samples, progress=True) as engine:
        sampled = asyncio.run(run(engine))
    solved = Counter(e.task_id for e in sampled if e.success)
    histograms = {"greedy_success": [0] * (samples + 1), "greedy_failure": [0] * (samples + 1)}
    for episode in greedy:
        histograms["greedy_success" if episode.success else "greedy_failure"][solved[episode.task_id]] += 1
    return histograms


def stage_episodes(out: Path, stage: str) -> Path:
    """The greedy episodes of ``stage`` (``after_sft`` or ``seed<k>``) under the demo's ``out``."""
    if stage == "after_sft":
        return out / "sft" / "eval_after_sft.jsonl"
    if stage.startswith("seed") and stage[4:].isdigit():
        return out / stage / "eval_after_rl.jsonl"
    raise ValueError(f"--stage {stage!r}: expected after_sft or seed<k> (seed0, seed1...)")


def stage_model(out: Path, stage: str) -> tuple[Any, Any]:
    """The model of ``stage``: the SFT model, with an RL seed's last checkpoint loaded into it."""
    from horizongym.training.checkpoint import latest_checkpoint, load_checkpoint
    from horizongym.training.demo.model import load_model

    if not (out / "sft" / "model").is_dir():
        raise FileNotFoundError(f"no SFT model at {out / 'sft' / 'model'}: run the demo first")
    model, tokenizer = load_model(out / "sft" / "model")
    if stage != "after_sft":
        checkpoint = latest_checkpoint(out / stage / "rl")
        if checkpoint is None:
            raise FileNotFoundError(f"no RL checkpoint under {out / stage / 'rl'}: the seed's run did not finish")
        load_checkpoint(checkpoint, model=model, restore_rng=False)
    return model, tokenizer


def max_new_tokens(out: Path) -> int:
    """The run's ``max_new_tokens`` (its ``summary.json``), else the default settings'."""
    from horizongym.training.demo.settings import DemoSettings

    summary = out / "summary.json"
    if summary.exists():
        return int(json.loads(summary.read_text(encoding="utf-8"))["settings"]["max_new_tokens"])
    return DemoSettings().max_new_tokens


def main(argv: Sequence[str] | None = None) -> int:
    """Print the failure kinds and pass rates of one stage of a finished demo run."""
    from horizongym.training.rollouts.engine import EnvRecipe
    from horizongym.training.rollouts.store import read_episodes

    parser = argparse.ArgumentParser(prog="python -m horizongym.training.demo.diagnose", description=__doc__)
    parser.add_argument("--out", default="runs/demo", help="the demo's output folder, default runs/demo")
    parser.add_argument("--stage", default="after_sft", help="after_sft (default) or seed<k>, an RL seed's result")
    parser.add_argument("--samples", type=int, default=8, help="sampled episodes per question (0: none), default 8")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature, default 1.0")
    parser.add_argument("--questions", type=int, default=None, help="the first N held-out questions (default all)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        episodes_path = stage_episodes(out, args.stage)
    except ValueError as exc:
        parser.error(str(exc))
    greedy = sorted(read_episodes(episodes_path), key=lambda e: e.seed)[: args.questions]
    if not greedy:
        parser.exit(2, f"diagnose: no episodes in {episodes_path}: run `make demo` (or the training demo) first\n")
    recipe = EnvRecipe(greedy[0].env_id, greedy[0].env_kwargs)
    kinds = failure_kinds(greedy, load_questions(str(recipe.kwargs["tasks"])))
    print(f"{args.stage}: {kinds['success']} of {kinds['episodes']} held-out questions solved; failures by kind:")
    for kind in FAILURE_KINDS:
        print(f"  {kind:<13}{kinds[kind]:>5}")
    figures: list[dict[str, Any]] = [{"figure": "failure_kinds", "stage": args.stage, **kinds}]
    if args.samples > 0:
        try:
            model, tokenizer = stage_model(out, args.stage)
        except FileNotFoundError as exc:
            parser.exit(2, f"diagnose: {exc}\n")
        histograms = pass_histograms(
            model, tokenizer, recipe, greedy, args.samples, args.temperature, max_new_tokens(out)
        )
        print(f"questions by successes of {args.samples} samples at temperature {args.temperature}:")
        for outcome, counts in histograms.items():
            print(f"  {outcome:<15}" + " ".join(f"{c:>4}" for c in counts))
        figures.append(
            {"figure": "pass_rates", "stage": args.stage, "samples": args.samples, "temperature": args.temperature}
            | histograms
        )
    for figure in figures:
        print(json.dumps(figure))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
