"""The embedded demo's pipeline end to end, at toy sizes (``--quick``), and its data and SFT pieces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from horizongym.training.demo import CHATML_TEMPLATE, QUICK, STAGES, main
from horizongym.training.demo.diagnose import FAILURE_KINDS


def test_quick_demo_writes_summary_plot_and_episodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["--quick", "--seeds", "2", "--out", str(out)]) == 0

    summary = json.loads((out / "summary.json").read_text())
    results = summary["results"]
    assert {(r["seed"], r["stage"]) for r in results} == {(s, stage) for s in (0, 1) for stage in STAGES}
    assert len(results) == 6 and summary["sft_shared"] is True
    for result in results:
        assert 0.0 <= result["ci_low"] <= result["success"] <= result["ci_high"] <= 1.0
        assert result["episodes"] == result["n"] == len(result["outcomes"]) == QUICK.eval_tasks
        assert result["success"] == sum(result["outcomes"]) / result["n"]
        assert isinstance(result["mean_reward"], float)
    # One SFT run: both RL seeds report the same before/after SFT figures.
    for stage in STAGES[:2]:
        assert (
            len({json.dumps({k: v for k, v in r.items() if k != "seed"}) for r in results if r["stage"] == stage}) == 1
        )
    assert summary["wall_seconds"] > 0 and summary["settings"]["hidden_size"] > 0
    assert summary["env_kwargs"]["train"]["split"] == "train" and summary["env_kwargs"]["test"]["split"] == "test"
    assert summary["env_kwargs"]["train"]["instructions"] is False
    assert set(summary["verdict"]) >= {"rl_minus_sft", "seed_spread", "p_value", "rl_beats_sft"}
    assert set(summary["paired"]) >= {"delta", "p_value", "per_seed"} and 0 < summary["paired"]["p_value"] <= 1
    assert set(summary["paired"]["per_seed"]) == {"0", "1"}
    assert set(summary["sft"]["sft_losses"]) == {"repeat", "question", "episodes"}
    assert all(len(summary["curves"][str(s)]["rl_reward"]) == QUICK.rl_steps for s in (0, 1))
    # RL seeds draw different train questions (task order differs, not only sampling).
    trained = [
        {json.loads(line)["task_id"] for line in (out / f"seed{s}" / "rl" / "episodes.jsonl").read_text().splitlines()}
        for s in (0, 1)
    ]
    assert trained[0] != trained[1]

    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    kinds = summary["failure_kinds"]
    assert set(kinds) == {"after_sft", "seed0", "seed1"}
    for row in kinds.values():
        assert row["episodes"] == row["success"] + sum(row[k] for k in FAILURE_KINDS) == QUICK.eval_tasks
    after_sft = next(r for r in results if r["stage"] == "after_sft")
    assert kinds["after_sft"]["success"] == sum(after_sft["outcomes"])

    episodes = {stage: out / "sft" / f"eval_{stage}.jsonl" for stage in STAGES[:2]}
    episodes |= {f"after_rl {s}": out / f"seed{s}" / "eval_after_rl.jsonl" for s in (0, 1)}
    for path in episodes.values():
        lines = path.read_text().splitlines()
        assert len(lines) == results[0]["episodes"]
        first = json.loads(lines[0])
        assert first["env_id"].endswith("SearchJudge-v0")
        assert str(first["messages"][0]["content"]).startswith("Question: ")
    for seed in (0, 1):
        assert (out / f"seed{seed}" / "rl" / "episodes.jsonl").read_text().strip()
        assert (out / f"seed{seed}" / "rl" / "metrics.jsonl").read_text().strip()
    assert (out / "expert_sft.jsonl").read_text().strip()

    from horizongym.training.demo import diagnose

    capsys.readouterr()
    assert diagnose.main(["--out", str(out), "--stage", "seed1", "--samples", "2"]) == 0
    kinds, rates = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert kinds["figure"] == "failure_kinds" and kinds["episodes"] == QUICK.eval_tasks
    assert kinds["success"] + sum(kinds[k] for k in diagnose.FAILURE_KINDS) == QUICK.eval_tasks
    assert rates["figure"] == "pass_rates" and len(rates["greedy_failure"]) == 3
    assert sum(rates["greedy_success"]) + sum(rates["greedy_failure"]) == QUICK.eval_tasks
    assert sum(rates["greedy_success"]) == kinds["success"]

    # A second run with the same settings and data reuses the SFT model instead of training it again.
    model_file = next((out / "sft" / "model").glob("*.safetensors"))
    stamp = model_file.stat().st_mtime_ns
    assert main(["--quick", "--seeds", "1", "--out", str(out), "--workers", "1"]) == 0
    assert model_file.stat().st_mtime_ns == stamp
    again = json.loads((out / "summary.json").read_text())
    assert again["sft"] == summary["sft"]

    # The held-out questions: the world's own single-hop test questions, then generated ones, each about
    # its own entity; no train question names an entity that a held-out question is about.
    from horizongym.envs.search.world import default_world

    questions = [json.loads(line) for line in next((out / "data").glob("questions-*.jsonl")).read_text().splitlines()]
    world_test = [t for t in default_world().tasks if t.hops == 1 and t.meta["split"] == "test"]
    held_out = [q for q in questions if q["split"] == "test"]
    assert [q["id"] for q in held_out[:40]] == [t.id for t in world_test]
    assert len(held_out) == 40 + QUICK.held_out and all(q["id"].startswith("heldout-") for q in held_out[40:])
    after_sft = next(r["success"] for r in results if r["stage"] == "after_sft")
    for seed in (0, 1):
        curve = summary["curves"][str(seed)]["held_out_success"]
        assert curve[0] == [0, after_sft] and [step for step, _ in curve] == list(range(QUICK.rl_steps + 1))


def test_held_out_questions_share_no_entity_with_any_train_question(tmp_path: Path) -> None:
    from horizongym.training.demo import export_world

    data = export_world(tmp_path, (1,), 400, 200)
    questions = [json.loads(line) for line in Path(data.split(":")[2]).read_text().splitlines()]
    held_out = [q for q in questions if q["split"] == "test"]
    train = [q for q in questions if q["split"] == "train"]
    assert len(held_out) == 240 and len(train) > 400
    names = {q["entity"] for q in held_out}
    assert len(names) == 240  # each held-out question is about its own entity
    assert all(q["entity"] in q["question"] for q in questions)
    assert not any(name in q["question"] for q in train for name in names)


def test_episode_rows_pack_each_episode_into_one_weighted_sequence() -> None:
    from horizongym.agents.tiny import build_byte_tokenizer
    from horizongym.training.curriculum import episode_rows, trim_first_message
    from horizongym.training.rollouts.trajectory import Episode, Step

    tokenizer = build_byte_tokenizer()
    tokenizer.chat_template = CHATML_TEMPLATE
    prompt = "Long instructions.\nQuestion: Who?"
    episode = Episode(
        env_id="SearchJudge-v0",
        seed=0,
        messages=[{"role": "user", "content": prompt}],
        steps=[
            Step(turn=1, action="<search>X</search>", observation="<information>X</information>"),
            Step(turn=2, action="<answer>Y</answer>", observation="Correct."),
        ],
        success=True,
    )
    (full,) = episode_rows(tokenizer, [episode], context_weight=0.5)
    tokens, weights = full
    text = tokenizer.decode(tokens)
    assert text.startswith("<|im_start|>user\nLong instructions.") and text.endswith("<answer>Y</answer><|im_end|>")
    assert sum(w == 1.0 for w in weights) == len("<search>X</search>") + len("<answer>Y</answer>") + 2
    assert set(weights) == {0.5, 1.0}
    (short,) = episode_rows(tokenizer, [episode], edit=trim_first_message("Question:"), turns=1)
    assert tokenizer.decode(short[0]) == (
        "<|im_start|>user\nQuestion: Who?<|im_end|>\n<|im_start|>assistant\n<search>X</search><|im_end|>"
    )
    assert episode_rows(tokenizer, [episode.model_copy(update={"success": False})]) == []


def test_copy_pages_leave_out_the_pages_of_held_out_questions(tmp_path: Path) -> None:
    from horizongym.training.demo import copy_pages, export_world

    data = export_world(tmp_path, (1,), 5)
    _, corpus_path, questions_path = data.split(":")
    corpus = [json.loads(line) for line in Path(corpus_path).read_text().splitlines()]
    questions = [json.loads(line) for line in Path(questions_path).read_text().splitlines()]
    held_out = {d for q in questions if q["split"] == "test" for d in q["gold_doc_ids"]}
    trained = {d for q in questions if q["split"] == "train" for d in q["gold_doc_ids"]}
    pages = set(copy_pages(data))
    by_id = {row["id"]: row["text"] for row in corpus}
    assert held_out and not any(by_id[d] in pages for d in held_out)
    assert all(by_id[d] in pages for d in trained - held_out)
    assert len(pages) == len({row["text"] for row in corpus if row["id"] not in held_out})


def test_sft_key_changes_with_sft_settings_and_data_but_not_with_rl_settings(tmp_path: Path) -> None:
    from dataclasses import replace

    from horizongym.training.demo import QUICK, export_world

    data = export_world(tmp_path, (1,), 5)
    key = QUICK.sft_key(data)
    rl_only = replace(QUICK, rl_steps=9, rl_lr=1.0, group_size=3, temperature=0.5, rl_judge_weight=0.0)
    assert rl_only.sft_key(data) == key
    assert replace(QUICK, sft_lr=1e-2).sft_key(data) != key
    assert replace(QUICK, instructions=True).sft_key(data) != key
    assert QUICK.sft_key(export_world(tmp_path / "other", (1,), 6)) != key


def test_diagnose_names_each_failure_kind_and_refuses_a_missing_run(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from horizongym.training.demo.diagnose import Question, failure_kind, main

    question = Question(answers=("1747",), gold_title="Rakrimere")

    def episode(success: bool, terminated: bool, *observations: str) -> SimpleNamespace:
        steps = [SimpleNamespace(observation=text) for text in observations]
        return SimpleNamespace(success=success, terminated=terminated, steps=steps)

    page = "<information>Doc 1(Title: Rakrimere) Rakrimere is a town. Founded in 1747, it</information>"
    assert failure_kind(episode(True, True, page, "Correct."), question) is None
    assert failure_kind(episode(False, True, page, "Answer recorded."), question) == "copy"
    assert failure_kind(episode(False, True, page.replace("1747", "…"), ""), question) == "beyond_shown"
    assert failure_kind(episode(False, True, "<information>Doc 1(Title: Rakrimere Academy) …", ""), question) == (
        "other_page"
    )
    assert failure_kind(episode(False, False, page), question) == "no_answer"
    with pytest.raises(SystemExit) as exited:
        main(["--out", str(tmp_path / "nothing")])
    assert exited.value.code == 2
    with pytest.raises(SystemExit):
        main(["--stage", "rl"])


def test_rl_reward_settings_change_the_rl_env_alone(tmp_path: Path) -> None:
    from dataclasses import replace

    from horizongym.envs.search.env import SearchJudgeEnv
    from horizongym.training.demo import QUICK, export_world

    data = export_world(tmp_path, (1,), 5)
    assert QUICK.rl_env_kwargs(data) == {**QUICK.env_kwargs(data, "train"), "task_order": "random"}
    settings = replace(QUICK, rl_judge_weight=0.0, rl_answer_metric="chars")
    kwargs = settings.rl_env_kwargs(data)
    assert (kwargs["judge_weight"], kwargs["answer_metric"]) == (0.0, "chars")
    assert settings.env_kwargs(data, "test") == QUICK.env_kwargs(data, "test")
    env = SearchJudgeEnv(**kwargs)
    assert (env.judge_weight, env.answer_metric) == (0.0, "chars")
    with pytest.raises(ValueError, match="rl_answer_metric must be one of"):
        replace(QUICK, rl_answer_metric="bleu")


def test_sft_does_not_depend_on_the_order_the_expert_episodes_were_stored_in(tmp_path: Path) -> None:
    """The expert's episodes land in completion order; SFT must train on the same data either way."""
    from horizongym.training.demo import QUICK, expert_episodes, export_world, run_sft

    data = export_world(tmp_path / "data", (1,), 20)
    stored = tmp_path / "expert.jsonl"
    expert_episodes(data, QUICK, stored)
    lines = stored.read_text().splitlines()
    assert len(lines) > 2
    reversed_path = tmp_path / "expert-reversed.jsonl"
    reversed_path.write_text("\n".join(reversed(lines)) + "\n")

    weights = []
    for name, path in (("a", stored), ("b", reversed_path)):
        run_sft(data, path, QUICK, tmp_path / name)
        weights.append(next((tmp_path / name / "sft" / "model").glob("*.safetensors")).read_bytes())
    assert weights[0] == weights[1]


def test_the_policy_prompts_are_the_sft_rows_prompts_tools_or_not() -> None:
    """The demo's template leaves the tool schemas out: a policy given the env's tools must prompt the model
    with exactly the text SFT trained it on (rendered without tools)."""
    from horizongym.agents.hf import encode_prompt
    from horizongym.agents.tiny import build_byte_tokenizer

    tokenizer = build_byte_tokenizer()
    tokenizer.chat_template = CHATML_TEMPLATE
    messages = [{"role": "user", "content": "Question: Who?"}]
    tools = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
    assert encode_prompt(tokenizer, messages, tools) == encode_prompt(tokenizer, messages, None)
    assert tokenizer.decode(encode_prompt(tokenizer, messages, tools)) == (
        "<|im_start|>user\nQuestion: Who?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_set_changes_settings_and_refuses_unknown_fields() -> None:
    from horizongym.training.demo.settings import DemoSettings, with_overrides

    settings = with_overrides(DemoSettings(), ["rl_lr=2e-4", "dynamic_sampling=false", "advantage=grpo", "hops=[1, 2]"])
    assert (settings.rl_lr, settings.dynamic_sampling, settings.advantage) == (2e-4, False, "grpo")
    assert settings.hops == (1, 2)
    with pytest.raises(ValueError, match="expected FIELD=VALUE"):
        with_overrides(DemoSettings(), ["learning_rate=1"])
    with pytest.raises(SystemExit):
        main(["--quick", "--set", "nonsense"])
