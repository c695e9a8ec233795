"""The Markovian workspace wrapper, the LongChain-v0 env and its expert, and the context measurement."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from gymnasium.utils.env_checker import check_env

import horizongym
from horizongym.agents import Action, Message, Policy, expert_for
from horizongym.agents.experts.longchain import LongChainExpert, workspace_action
from horizongym.bench.context import context_tokens
from horizongym.envs.longchain import LongChainEnv
from horizongym.envs.workspace import (
    EMPTY_REPORT,
    REPORT_TOOL,
    MarkovianWorkspace,
    make_workspace,
    split_round,
)
from horizongym.training.rollouts import EnvRecipe, RolloutEngine


def _chain_start(env: MarkovianWorkspace) -> tuple[str, str]:
    """The start key and the key it points to, read from the inner env."""
    inner = env.unwrapped
    assert isinstance(inner, LongChainEnv)
    return inner.chain[0], inner.chain[1]


def _play(env: Any, policy: LongChainExpert, seed: int) -> tuple[float, bool, int]:
    """Play one episode by hand; returns (total reward, success, steps)."""
    observation, info = env.reset(seed=seed)
    messages: list[Message] = [{"role": "user", "content": observation}]
    total, steps = 0.0, 0
    while True:
        action = policy.decide(messages, info["tools"], None)
        observation, reward, terminated, truncated, info = env.step(action.env_action())
        total += float(reward)
        steps += 1
        messages = [{"role": "user", "content": observation}]
        if terminated or truncated:
            return total, bool(info.get("success")), steps


# ----- LongChain-v0 -------------------------------------------------------------------------
def test_longchain_passes_check_env() -> None:
    env = horizongym.make("LongChain-v0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=False)
    env.close()


@pytest.mark.parametrize("length", [5, 300])
def test_longchain_expert_solves_plain_chains(length: int) -> None:
    recipe = EnvRecipe("LongChain-v0", {"length": length})
    with RolloutEngine(recipe, expert_for("LongChain-v0"), concurrency=2, progress=False) as engine:
        episodes = engine.run_sync(3, seed=7)
    assert len(episodes) == 3
    for episode in episodes:
        assert episode.success and episode.total_reward == 1.0 and len(episode.steps) == length + 1
        assert not any(step.info.get("fresh_context") for step in episode.steps)
    env = horizongym.make("LongChain-v0", length=length)
    assert _play(env, LongChainExpert(), seed=0) == (1.0, True, length + 1)


def test_longchain_is_deterministic_per_seed_and_sets_its_turn_limit() -> None:
    a, b = LongChainEnv(length=4096), LongChainEnv(length=4096)
    first_a, info_a = a.reset(seed=3)
    first_b, info_b = b.reset(seed=3)
    assert (first_a, info_a["task_id"], a.store) == (first_b, info_b["task_id"], b.store)
    assert a.max_turns == 4096 + 2 and len(set(a.chain)) == 4096
    assert a.reset(seed=4)[0] != first_a
    env = LongChainEnv(min_length=2, max_length=6)
    env.reset(seed=0, options={"length": 9})
    assert len(env.chain) == 9 and env.max_turns == 11
    assert LongChainEnv(max_turns=3).max_turns == 3
    with pytest.raises(ValueError):
        LongChainEnv(length=5000)


# ----- the wrapper ----------------------------------------------------------------------------
def test_workspace_passes_check_env() -> None:
    env = make_workspace("LongChain-v0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checker warning is a failure, except the one about wrappers
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version.*")
        check_env(env, skip_render_check=False)
    env.close()


def test_reset_shows_question_round_format_and_empty_report() -> None:
    env = make_workspace("LongChain-v0", length=4)
    inner_first, _ = LongChainEnv(length=4).reset(seed=2)
    observation, info = env.reset(seed=2)
    assert observation.startswith(inner_first)
    assert "<report>" in observation and REPORT_TOOL in observation
    assert observation.endswith(f"Report: {EMPTY_REPORT}")
    names = [schema["function"]["name"] for schema in info["tools"]]
    assert names == ["answer", "lookup", REPORT_TOOL]
    assert info["workspace_round"] == 0 and info["report_chars"] == 0


def test_report_replaces_the_previous_one_and_fresh_context_is_set() -> None:
    env = make_workspace("LongChain-v0", length=6)
    env.reset(seed=0)
    start, nxt = _chain_start(env)
    observation, reward, terminated, truncated, info = env.step(
        workspace_action("first report", f"<lookup>{start}</lookup>", think="secret thoughts")
    )
    assert "first report" in observation and "secret thoughts" not in observation
    assert f"Last action:\n<lookup>{start}</lookup>" in observation
    assert observation.endswith(f"Result:\n{start} = -> {nxt}")
    assert info["fresh_context"] is True and info["workspace_round"] == 1
    assert info["report_chars"] == len("first report") and info["turn"] == 1
    assert (reward, terminated, truncated) == (0.0, False, False)
    observation, *_, info = env.step(workspace_action("second report", f"<lookup>{nxt}</lookup>"))
    assert "second report" in observation and "first report" not in observation
    assert info["fresh_context"] is True and "workspace_notes" not in info


def test_missing_report_keeps_the_old_one_with_a_note() -> None:
    env = make_workspace("LongChain-v0", length=6)
    env.reset(seed=0)
    start, nxt = _chain_start(env)
    env.step(workspace_action("keep me", f"<lookup>{start}</lookup>"))
    observation, reward, *_, info = env.step(f"<lookup>{nxt}</lookup>")
    assert "Report:\nkeep me" in observation
    assert "Note: your reply had no <report>" in observation
    assert info["fresh_context"] is True and info["workspace_notes"] and reward == 0.0


def test_overlong_report_is_cut_with_a_note() -> None:
    env = make_workspace("LongChain-v0", length=6)
    env.reset(seed=0)
    start, _ = _chain_start(env)
    observation, *_, info = env.step(workspace_action("x" * 2500, f"<lookup>{start}</lookup>"))
    assert info["report_chars"] == 2000 and env.report == "x" * 2000
    assert "it was cut to the first 2000" in observation and "x" * 2001 not in observation
    short = MarkovianWorkspace(horizongym.make("LongChain-v0"), max_report_chars=10)
    short.reset(seed=0)
    assert short.step("<report>0123456789abc</report><lookup>k0000</lookup>")[-1]["report_chars"] == 10


def test_update_report_tool_call_form() -> None:
    env = make_workspace("LongChain-v0", length=6)
    env.reset(seed=0)
    start, nxt = _chain_start(env)
    report_call = json.dumps({"name": REPORT_TOOL, "arguments": {"report": "via the tool"}})
    lookup_call = json.dumps({"name": "lookup", "arguments": {"key": start}})
    observation, reward, *_, info = env.step(
        f"<tool_call>{report_call}</tool_call>\n<tool_call>{lookup_call}</tool_call>"
    )
    assert "Report:\nvia the tool" in observation and observation.endswith(f"{start} = -> {nxt}")
    assert [call["name"] for call in info["tool_calls"]] == ["lookup"] and reward == 0.0
    # an OpenAI tool_calls structure written as JSON text
    openai = [
        {"id": "a", "type": "function", "function": {"name": REPORT_TOOL, "arguments": '{"report": "openai form"}'}},
        {"id": "b", "type": "function", "function": {"name": "lookup", "arguments": json.dumps({"key": nxt})}},
    ]
    observation, *_, info = env.step(json.dumps(openai))
    assert "Report:\nopenai form" in observation and "workspace_notes" not in info
    # a bad update_report call is a note, never an exception
    bad = json.dumps({"name": REPORT_TOOL, "arguments": {"text": 1}})
    observation, *_, info = env.step(f"<tool_call>{bad}</tool_call><lookup>{nxt}</lookup>")
    assert "Report:\nopenai form" in observation and any("update_report" in n for n in info["workspace_notes"])


@pytest.mark.parametrize(
    "action",
    [
        "",
        "just words",
        "<report>unclosed report <lookup>k0001</lookup>",
        "<report>ok</report><tool_call>{not json}</tool_call>",
        "<report>ok</report>",
        "<think>never closed <report>r</report>",
        "</report></think><report>",
        "<tool_call>[1, 2]</tool_call><report>x</report>",
        '{"tool_calls": 5, "update_report": 1}',
    ],
)
def test_malformed_actions_give_the_inner_envs_correction_and_penalty(action: str) -> None:
    env = make_workspace("LongChain-v0", length=6)
    env.reset(seed=0)
    observation, reward, terminated, truncated, info = env.step(action)
    assert info["fresh_context"] is True and "Result:" in observation
    if "lookup" not in action:
        assert float(reward) == pytest.approx(-0.1) and info["reward_components"] == {"format": -0.1}
        assert "error" in info
    assert not terminated and not truncated


def test_split_round_parts() -> None:
    reply = split_round("<think>a</think><report> r1 </report><report>r2</report> <answer>5</answer>")
    assert (reply.report, reply.action) == ("r2", "<answer>5</answer>")
    assert any("several" in note for note in reply.notes)
    reply = split_round("reasoning without an opening tag</think><report>r</report><lookup>k1</lookup>")
    assert (reply.report, reply.action, reply.notes) == ("r", "<lookup>k1</lookup>", [])
    assert split_round("<report></report><lookup>k1</lookup>").report == ""


def test_round_limit_truncates_and_raises_the_inner_turn_limit() -> None:
    env = MarkovianWorkspace(horizongym.make("LongChain-v0", length=50), max_rounds=3)
    env.reset(seed=0)
    inner = env.unwrapped
    assert isinstance(inner, LongChainEnv) and inner.max_turns == 52  # already above max_rounds
    for _ in range(2):
        assert env.step("<report>r</report>nothing")[3] is False
    observation, _, terminated, truncated, info = env.step("<report>r</report>nothing")
    assert (terminated, truncated, info["termination_reason"]) == (False, True, "max_turns")
    assert "Round limit reached (3 rounds)" in observation
    with pytest.raises(Exception, match="reset"):
        env.step("<report>r</report>")
    long = make_workspace("LongChain-v0", max_rounds=2048, length=3)
    long.reset(seed=0)
    assert isinstance(long.unwrapped, LongChainEnv) and long.unwrapped.max_turns == 2048


# ----- long horizons through the rollout engine -----------------------------------------------
class Recording(Policy):
    """Wraps the LongChain expert and records the size of every context it is given."""

    name = "expert"

    def __init__(self) -> None:
        self.expert = LongChainExpert()
        self.sizes: list[tuple[int, int]] = []

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        self.sizes.append((len(messages), sum(len(str(m.get("content") or "")) for m in messages)))
        return await self.expert.act(messages, tools, seed=seed)


def test_a_2048_round_episode_completes_in_the_workspace_through_the_engine() -> None:
    policy = Recording()
    factory = lambda: make_workspace("LongChain-v0", length=2047, disable_env_checker=True)  # noqa: E731
    with RolloutEngine("LongChain-v0", policy, concurrency=1, progress=False, env_factory=factory) as engine:
        (episode,) = engine.run_sync(1, seed=5)
    assert episode.success and episode.total_reward == 1.0 and episode.termination_reason == "terminated"
    assert len(episode.steps) == 2048 and len(policy.sizes) == 2048
    assert all(step.info["fresh_context"] for step in episode.steps)
    assert episode.steps[-1].info["workspace_round"] == 2048
    (count_2, chars_2), (count_last, chars_last) = policy.sizes[1], policy.sizes[-1]
    assert count_2 == count_last == 1  # the engine dropped the history every round
    assert 0.8 * chars_2 <= chars_last <= 1.2 * chars_2
    assert len(episode.messages) > 2 * 2048  # the transcript still keeps every round


# ----- context measurement ---------------------------------------------------------------------
def test_context_tokens_workspace_stays_flat_and_history_grows() -> None:
    workspace = context_tokens("workspace", [8, 64, 512])
    history = context_tokens("history", [8, 64, 512])
    assert abs(workspace[512] - workspace[8]) <= 0.1 * workspace[8]
    assert history[512] > 30 * history[8]
    assert history[8] < history[64] < history[512]
