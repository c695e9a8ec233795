"""The AgentDropout bench: its scripted members, its random-budget control, and its CLI end to end."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from horizongym.agents.team.graph import GraphParameters
from horizongym.agents.team.messages import InboxMessage
from horizongym.agents.team.prompts import member_messages
from horizongym.bench.agentdropout_control import edge_counts, random_budget_graph
from horizongym.bench.agentdropout_team import (
    ADVERSARY,
    AGGREGATOR,
    ANSWER_TOOL,
    EXPERT,
    NOISY,
    REDUNDANT,
    ROLES,
    CodeQuiz,
    QuizMember,
    QuizPlayer,
    answer_of,
    quiz_team,
    render_message,
)
from horizongym.training.agentdropout.node_dropout import drop_agents


def say(member: QuizMember, query: int, round_: int = 0, inbox: list[InboxMessage] | None = None) -> str | None:
    """The answer ``member`` gives to ``query`` in ``round_`` with ``inbox``, through its real prompt."""
    role = ROLES[member.index]
    messages = member_messages(role.name, role.prompt, member.quiz.messages(query), round_, 2, inbox or [])
    action = asyncio.run(member.act(messages, [ANSWER_TOOL]))
    assert len(action.text.split()) == role.words
    return answer_of(action.text)


def sent(sender: str, letter: str, round_: int = 0) -> InboxMessage:
    return InboxMessage(sender, round_, render_message(ROLES[EXPERT], letter))


def test_expert_and_noisy_are_right_about_as_often_as_their_skill() -> None:
    quiz = CodeQuiz(seed=5)
    for index in (EXPERT, NOISY):
        member = QuizMember(quiz, index)
        right = np.mean([say(member, q) == quiz.answer(q) for q in range(600)])
        assert abs(right - ROLES[index].skill) < 0.06, (ROLES[index].name, right)


def test_draws_are_reproducible_per_seed_query_agent_and_round() -> None:
    quiz = CodeQuiz(seed=1)
    expert = QuizMember(quiz, EXPERT)
    assert [say(expert, q) for q in range(40)] == [say(QuizMember(CodeQuiz(1), EXPERT), q) for q in range(40)]
    assert [say(expert, q) for q in range(40)] != [say(QuizMember(CodeQuiz(2), EXPERT), q) for q in range(40)]
    assert [say(expert, q, 0) for q in range(40)] != [say(expert, q, 1) for q in range(40)]


def test_aggregator_takes_the_plurality_of_its_inbox_ties_to_the_first_seen() -> None:
    quiz = CodeQuiz(seed=0)
    aggregator = QuizMember(quiz, AGGREGATOR)
    inbox = [sent("expert", "B"), sent("noisy", "C"), sent("redundant", "B", 1), sent("adversary", "C")]
    inbox.append(sent("expert", "D"))
    assert say(aggregator, 3, 1, inbox) == "B"  # B and C have 2 each; B was seen first
    assert say(aggregator, 3, 1, [sent("noisy", "E"), sent("expert", "A"), sent("adversary", "A")]) == "A"
    weak = [say(aggregator, q) for q in range(200)]  # empty inbox: its own weak guess
    assert weak == [quiz.draw(q, AGGREGATOR, 0, 0, ROLES[AGGREGATOR].skill) for q in range(200)]
    assert 0.15 < np.mean([w == quiz.answer(q) for q, w in enumerate(weak)]) < 0.45


def test_a_rewrite_is_the_members_second_draw() -> None:
    quiz = CodeQuiz(seed=0)
    aggregator = QuizMember(quiz, AGGREGATOR)
    role = ROLES[AGGREGATOR]
    inbox = [sent("expert", "B"), sent("noisy", "C"), sent("redundant", "B")]
    messages = member_messages(role.name, role.prompt, quiz.messages(3), 0, 2, inbox)
    note = {"role": "user", "content": "[auditor] Your message contains an error.\nRewrite your message."}
    assert answer_of(asyncio.run(aggregator.act([*messages, note], [ANSWER_TOOL])).text) == "C"  # runner-up
    expert = QuizMember(quiz, EXPERT)
    messages = member_messages("expert", ROLES[EXPERT].prompt, quiz.messages(7), 1, 2, [])
    rewrite = answer_of(asyncio.run(expert.act([*messages, note], [ANSWER_TOOL])).text)
    assert rewrite == quiz.draw(7, EXPERT, 1, 1, ROLES[EXPERT].skill)


def test_redundant_copies_the_experts_draw_every_round() -> None:
    quiz = CodeQuiz(seed=3)
    expert, redundant = QuizMember(quiz, EXPERT), QuizMember(quiz, REDUNDANT)
    for q in range(50):
        for r in (0, 1):
            assert say(redundant, q, r) == say(expert, q, r)


def test_adversary_always_gives_the_same_wrong_answer() -> None:
    quiz = CodeQuiz(seed=4)
    adversary = QuizMember(quiz, ADVERSARY)
    for q in range(60):
        answers = {say(adversary, q, r, inbox) for r in (0, 1) for inbox in ([], [sent("expert", quiz.answer(q))])}
        assert len(answers) == 1
        assert answers.pop() != quiz.answer(q)
    assert ROLES[ADVERSARY].votes == 2 and ROLES[ADVERSARY].words > max(r.words for r in ROLES[:ADVERSARY])


def test_the_real_team_plays_and_is_scored_by_the_quiz() -> None:
    quiz = CodeQuiz(seed=0)
    player = QuizPlayer(quiz, quiz_team(quiz, 2))
    oracle = GraphParameters.full(len(ROLES), 2)
    drop_agents(oracle, [[NOISY, ADVERSARY]] * 2)
    graph = oracle.realise("fixed")
    results = [asyncio.run(player.play(graph, q)) for q in range(30)]
    # without the adversary and the noisy agent the expert's block (expert, copy, aggregator) always wins
    for q, result in enumerate(results):
        assert result.utility == float(quiz.draw(q, EXPERT, 1, 0, ROLES[EXPERT].skill) == quiz.answer(q))
        assert player.played[q].calls == 6 and result.prompt_tokens > 0
    assert results[0].completion_tokens == 2 * sum(ROLES[i].words for i in (EXPERT, AGGREGATOR, REDUNDANT))


def test_random_budget_control_keeps_the_reference_counts_and_varies_the_choice() -> None:
    params = GraphParameters.full(len(ROLES), 2)
    drop_agents(params, [[NOISY], [ADVERSARY]])
    params.spatial_logits[:] = np.random.default_rng(0).normal(size=params.spatial_logits.shape)
    rng = np.random.default_rng(1)
    dropped: set[tuple[int, ...]] = set()
    for _ in range(50):
        reference = params.realise("sampled", rng)
        control = random_budget_graph(reference, rng)
        assert edge_counts(control) == edge_counts(reference)
        dropped.add(tuple(np.flatnonzero(~control.active[0])))
    assert len(dropped) > 2  # the dropped agent is drawn, not copied


def test_quick_run_end_to_end_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    command = [sys.executable, "-m", "horizongym.bench.agentdropout", "--quick", "--seeds", "1"]
    command += ["--train-queries", "4", "--test-queries", "4", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    figures = [json.loads(line) for line in lines if line.startswith("{")]
    assert lines[-len(figures) :] == [json.dumps(f, ensure_ascii=False) for f in figures]  # the figures come last
    metrics = {f["metric"] for f in figures}
    for metric in ("accuracy", "prompt_tokens", "completion_tokens", "token_reduction", "accuracy_delta"):
        assert metric in metrics
    assert {"gain_vs_random_budget", "adversary_drop_rate", "drop_rate", "training_plays"} <= metrics
    methods = {f["params"].get("method") for f in figures if f["metric"] == "accuracy"}
    assert {"full_T1", "full_T2", "edge_only", "node_only", "random_budget", "oracle", "firewall_v2"} <= methods
    assert {"node_edge_faithful", "node_edge_principled"} <= methods
    report = json.loads((out / "agentdropout.json").read_text())
    assert report["settings"]["test_queries"] == 4 and report["figures"] == figures
    assert (out / "agentdropout.png").stat().st_size > 0


@pytest.mark.parametrize("flag", ["--seeds", "--test-queries"])
def test_sizes_below_one_are_refused(flag: str) -> None:
    command = [sys.executable, "-m", "horizongym.bench.agentdropout", flag, "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert done.returncode != 0 and "must be at least 1" in done.stderr
