"""The tiny-transformers AgentDropout bench: its task, its trained members, and a run end to end."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from horizongym.agents.hf import TransformersPolicy
from horizongym.agents.team.graph import GraphParameters
from horizongym.bench.agentdropout_tiny_team import (
    ADVERSARY,
    EXPERT,
    NOISY,
    ROLES,
    ItemCodes,
    MemberSizes,
    Models,
    TinyMember,
    TinyPlayer,
    answer_of,
    item_of,
    member_accuracy,
    model_input,
    reply,
    tiny_team,
    training_example,
)

TINY = MemberSizes(expert_steps=80, noisy_steps=15, n_items=2, batch=8)
"""Test sizes: two items, so the expert learns its table in ~80 small steps; trained once, then cached."""
TINY_FLAGS = [
    "--expert-steps",
    "80",
    "--noisy-steps",
    "15",
    "--member-batch",
    "8",
    "--items",
    "2",
    "--accuracy-queries",
    "10",
]


def test_each_query_names_one_item_and_has_one_right_digit() -> None:
    task = ItemCodes(seed=3)
    assert task.codes == ItemCodes(seed=9).codes  # the table is the world's, not the seed's
    items = [task.item(q) for q in range(400)]
    assert set(items) == set(range(20))
    assert items == [ItemCodes(seed=3).item(q) for q in range(400)]
    assert items != [ItemCodes(seed=4).item(q) for q in range(400)]
    for q in range(20):
        assert item_of(task.messages(q)) == task.item(q)
        right = [d for d in "0123456789" if task.is_right(q, reply(d))]
        assert right == [task.answer(q)]
    assert answer_of(reply(7, adversary=True)) == "7" and answer_of("no tag") is None
    with pytest.raises(ValueError, match=r"n_items must be 1\.\.20"):
        ItemCodes(0, n_items=21)


def test_training_examples_follow_the_spec_roles_and_labels() -> None:
    import random

    specs = TINY.specs()
    rng = random.Random(0)
    task = ItemCodes(0, n_items=2)
    for name, shift in (("expert", 0), ("adversary", 1)):
        for _ in range(20):
            messages, text, digit = training_example(specs[name], rng)
            item = item_of(messages)
            assert digit == (task.codes[item] + shift) % 10 and answer_of(text) == str(digit)
            assert messages[-1]["content"].startswith("[team round")
    noisy, right = specs["noisy"], 0
    for _ in range(1000):
        messages, text, digit = training_example(noisy, rng)
        right += digit == task.codes[item_of(messages)]
    assert noisy.right_share == 0.4 and 0.35 < right / 1000 < 0.45
    assert noisy.start == specs["expert"]  # fine-tuned from the expert's trained model


def test_the_model_reads_its_team_prompt_with_the_question_last() -> None:
    import random

    messages, _, _ = training_example(TINY.specs()["expert"], random.Random(1))
    seen = model_input(messages)
    assert sorted(map(str, seen)) == sorted(map(str, messages))  # the same messages, so the same tokens
    assert seen[-1]["content"] == "What is the code of item " + ItemCodes.item_name(item_of(messages)) + "?"
    assert seen[-2]["content"].startswith("[team round")
    assert model_input(seen[-1:]) == seen[-1:]


@pytest.fixture(scope="module")
def models() -> Models:
    return Models.load(TINY)


def test_members_are_trained_transformers_models(models: Models) -> None:
    assert all(isinstance(p, TransformersPolicy) for p in (models.expert, models.noisy, models.adversary))
    assert type(models.expert.model).__name__ == "LlamaForCausalLM"
    assert len(set(models.folders.values())) == 3


def test_trained_members_have_graded_skill_as_designed(models: Models) -> None:
    """Deterministic (fixed seeds); measured at test size: expert 1.0, noisy 0.3, adversary 0.0."""
    members = models.members()
    held_out = ItemCodes(10**6, n_items=2)

    def accuracy(index: int) -> float:
        return asyncio.run(member_accuracy(members[index], index, held_out, range(100)))

    expert, noisy, adversary = accuracy(EXPERT), accuracy(NOISY), accuracy(ADVERSARY)
    assert expert >= 0.9 and adversary <= 0.05
    assert 0.1 <= noisy <= 0.75 and expert - noisy >= 0.2


def test_the_real_team_plays_with_token_id_accounts_and_memo(models: Models) -> None:
    members = models.members()
    task = ItemCodes(seed=0, n_items=2)
    player = TinyPlayer(task, tiny_team(members, 2))
    full = GraphParameters.full(len(ROLES), 2).realise("fixed")
    first = [asyncio.run(player.play(full, q)) for q in range(6)]
    decoded = sum(m.decoded for m in members if isinstance(m, TinyMember))
    again = [asyncio.run(player.play(full, q)) for q in range(6)]
    assert again == first  # greedy members: the same play, answered from the memo
    assert sum(m.decoded for m in members if isinstance(m, TinyMember)) == decoded
    assert all(player.played[q].calls == 10 for q in range(6))
    # token ids, not words: every prompt holds the byte-tokenized question and more
    assert first[0].prompt_tokens > 10 * len(task.messages(0)[1]["content"].encode())


def test_one_seed_tiny_run_end_to_end_through_the_cli(tmp_path: Path, models: Models) -> None:
    out = tmp_path / "bench"
    command = [sys.executable, "-m", "horizongym.bench.agentdropout_tiny", "--quick", *TINY_FLAGS]
    command += ["--train-queries", "4", "--test-queries", "4", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    figures = [json.loads(line) for line in lines if line.startswith("{")]
    assert lines[-len(figures) :] == [json.dumps(f, ensure_ascii=False) for f in figures]  # the figures come last
    assert {f["bench"] for f in figures} == {"agentdropout_tiny"}
    metrics = {f["metric"] for f in figures}
    for metric in ("accuracy", "prompt_tokens", "completion_tokens", "token_reduction", "accuracy_delta"):
        assert metric in metrics
    assert {"gain_vs_random_budget", "adversary_drop_rate", "member_accuracy", "training_plays"} <= metrics
    methods = {f["params"].get("method") for f in figures if f["metric"] == "accuracy"}
    assert methods == {"full_T1", "full_T2", "node_edge_faithful", "random_budget", "oracle"}
    report = json.loads((out / "agentdropout_tiny.json").read_text())
    assert report["settings"]["test_queries"] == 4 and report["figures"] == figures


def test_bad_sizes_are_refused_in_one_line() -> None:
    command = [sys.executable, "-m", "horizongym.bench.agentdropout_tiny", "--items", "21"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert done.returncode != 0 and "--items must be at most 20" in done.stderr
    command = [sys.executable, "-m", "horizongym.bench.agentdropout_tiny", "--noisy-temperature", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert done.returncode != 0 and "--noisy-temperature must be above 0" in done.stderr
    with pytest.raises(ValueError, match="temperature must be at least 0"):
        TinyMember(None, "noisy", -1.0)  # type: ignore[arg-type]
