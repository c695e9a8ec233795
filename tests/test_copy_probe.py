"""The copy probe's sequences, its measures and the figures it prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from horizongym.agents.tiny import build_byte_tokenizer, build_tiny_model
from horizongym.bench import copy_probe
from horizongym.bench.copy_probe import answer_context, answer_rows, weighted_loss
from horizongym.training.curriculum import repeat_rows
from horizongym.training.rollouts.trajectory import Episode, Step


def test_repeat_rows_weigh_exactly_the_second_copy() -> None:
    tokenizer = build_byte_tokenizer()
    pages = ["Krastygrad is a city in Stothostan with a population of 2,666. " * 4]
    for tokens, weights in repeat_rows(tokenizer, pages, 20, seed=3):
        assert len(tokens) == len(weights)
        copy = int(sum(weights))
        first, newline, second = tokens[:copy], tokens[copy], tokens[copy + 1 :]
        assert first == second and 60 <= copy <= 160 and newline == ord("\n")
        assert weights == [0.0] * (copy + 1) + [1.0] * copy


def _episode() -> Episode:
    return Episode(
        env_id="SearchJudge-v0",
        seed=0,
        task_id="t1",
        messages=[{"role": "user", "content": "Answer the question below.\nQuestion: In which year was X founded?"}],
        steps=[
            Step(turn=1, action="<search>X</search>", observation="<information>X was founded in 1696.</information>"),
            Step(turn=2, action="<judge>Yes</judge> <answer>1696</answer>", observation="Correct."),
        ],
    )


def test_answer_rows_are_question_and_page_then_the_weighted_action() -> None:
    tokenizer = build_byte_tokenizer()
    episode = _episode()
    assert answer_context(episode) == (
        "Question: In which year was X founded?\n<information>X was founded in 1696.</information>\n"
    )
    [(tokens, weights)] = answer_rows(tokenizer, [episode])
    action = [t for t, w in zip(tokens, weights, strict=True) if w == 1.0]
    assert tokenizer.decode(action[:-1]) == "<judge>Yes</judge> <answer>1696</answer>"
    assert action[-1] == tokenizer.eos_token_id
    assert weights[: len(tokens) - len(action)] == [0.0] * (len(tokens) - len(action))


def test_weighted_loss_counts_only_weight_one_tokens(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(build_tiny_model(tmp_path, hidden_size=16, num_layers=1, num_heads=2))
    tokens = [ord(c) for c in "abcabc"]
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=torch.tensor([tokens])).logits[0, :-1], dim=-1)
    expected = -(logprobs[3, tokens[4]] + logprobs[4, tokens[5]]) / 2
    value = weighted_loss(model, [(tokens, [0.0, 0.0, 0.0, 0.0, 1.0, 1.0])])
    assert value == pytest.approx(float(expected), rel=1e-5)


def test_quick_probe_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert copy_probe.main(["--quick"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [f["metric"] for f in lines] == ["repeat_copy_loss", "answer_action_loss", "answer_exact_match", "seconds"]
    values = {f["metric"]: f["value"] for f in lines}
    assert 0 < values["repeat_copy_loss"] < 10 and 0 < values["answer_action_loss"] < 10
    assert 0.0 <= values["answer_exact_match"] <= 1.0
    assert lines[2]["params"]["held_out"] == 8 and lines[0]["params"]["hidden"] == 32
