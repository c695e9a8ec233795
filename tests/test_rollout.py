"""The rollout engine: concurrency, groups, limits, crashes, fresh contexts, chat history."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import horizongym
from horizongym.agents import Action, Policy, RandomPolicy, expert_for
from horizongym.envs import Task, TextEnv
from horizongym.envs.keychain import KeyChainEnv
from horizongym.tools import ToolCall
from horizongym.training.rollouts import (
    EnvRecipe,
    EpisodeStore,
    RolloutEngine,
    RolloutError,
    policy_seed,
    read_episodes,
)
from horizongym.training.rollouts.engine import _STEP_TEMPLATE
from horizongym.training.rollouts.trajectory import FailedAttempt, Step


class CrashingEnv(TextEnv):
    """Raises on its second step when the seed is odd."""

    blocking = False

    def new_task(self, options: dict[str, Any]) -> Task:
        self.seed_parity = int(self.np_random.integers(0, 2))
        return Task(id="crash", prompt="go")

    def on_text(self, text: str) -> str:
        if self.state.turn == 2 and self.seed_parity:
            raise RuntimeError("disk on fire")
        if self.state.turn == 3:
            self.end_episode(success=True)
        return "ok"


class SlowEnv(TextEnv):
    """A blocking env whose step sleeps."""

    blocking = True

    def new_task(self, options: dict[str, Any]) -> Task:
        return Task(id="slow", prompt="go")

    def on_text(self, text: str) -> str:
        time.sleep(0.3)
        return "done"


class MarkovEnv(TextEnv):
    """Asks the engine for a fresh context after every step."""

    blocking = False

    def new_task(self, options: dict[str, Any]) -> Task:
        return Task(id="markov", prompt="round 0")

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = super().step(action)
        info["fresh_context"] = True
        return observation, float(reward), terminated, truncated, info

    def on_text(self, text: str) -> str:
        if self.state.turn == 4:
            self.end_episode(success=True)
        return f"round {self.state.turn}"


class Echo(Policy):
    """Replies 'ok', records the contexts it saw and how many calls overlapped."""

    name = "echo"

    def __init__(self, delay: float = 0.0, fail_on_turn: int | None = None) -> None:
        self.delay, self.fail_on_turn = delay, fail_on_turn
        self.contexts: list[list[dict[str, Any]]] = []
        self.in_flight = self.max_in_flight = 0

    async def act(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, seed: int | None = None
    ) -> Action:
        self.contexts.append(list(messages))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.fail_on_turn is not None and sum(m["role"] == "assistant" for m in messages) == self.fail_on_turn:
                raise ValueError("model fell over")
            return Action(text="ok")
        finally:
            self.in_flight -= 1


@pytest.fixture
def test_envs() -> Iterator[None]:
    ids = {"TestCrash-v0": CrashingEnv, "TestSlow-v0": SlowEnv, "TestMarkov-v0": MarkovEnv}
    for env_id, cls in ids.items():
        horizongym.register(env_id, cls)
    yield
    for env_id in ids:
        del gym.registry[f"horizongym/{env_id}"]


def test_64_concurrent_episodes_of_the_expert_all_succeed(tmp_path: Path) -> None:
    with EpisodeStore(tmp_path / "e.jsonl") as store:
        engine = RolloutEngine("KeyChain-v0", expert_for("KeyChain-v0"), concurrency=64, store=store, progress=False)
        episodes = engine.run_sync(32, group_size=2, seed=100)
    assert len(episodes) == 64 and all(e.success for e in episodes)
    stored = read_episodes(tmp_path / "e.jsonl")
    assert sorted(e.key for e in stored) == sorted((100 + t, s) for t in range(32) for s in range(2))
    # both samples of a task see the same task
    by_seed: dict[int, set[str | None]] = {}
    for e in stored:
        by_seed.setdefault(e.seed, set()).add(e.task_id)
    assert all(len(ids) == 1 for ids in by_seed.values())
    episode = stored[0]
    roles = [m["role"] for m in episode.messages]
    assert roles[0] == "user" and roles[1] == "assistant" and roles[2] == "tool"
    assert episode.messages[2]["tool_call_id"] == episode.messages[1]["tool_calls"][0]["id"]
    assert episode.steps[-1].reward_components == {"answer": 1.0}


def test_episodes_really_run_concurrently() -> None:
    policy = Echo(delay=0.02)
    RolloutEngine("KeyChain-v0", policy, concurrency=16, progress=False, max_turns=2).run_sync(32)
    assert policy.max_in_flight == 16


def test_crashing_env_truncates_only_its_episode(test_envs: None) -> None:
    episodes = RolloutEngine("TestCrash-v0", Echo(), concurrency=4, progress=False).run_sync(20)
    crashed = [e for e in episodes if e.termination_reason == "env_error"]
    fine = [e for e in episodes if e.termination_reason == "terminated"]
    assert crashed and fine and len(crashed) + len(fine) == 20
    assert all(e.truncated and not e.terminated and "RuntimeError: disk on fire" in (e.error or "") for e in crashed)
    assert all(e.num_turns == 3 and e.success for e in fine)


def test_turn_and_time_limits(test_envs: None) -> None:
    capped = RolloutEngine("KeyChain-v0", Echo(), max_turns=3, progress=False).run_sync(2)
    assert {e.termination_reason for e in capped} == {"max_turns"} and all(e.num_turns == 3 for e in capped)
    slow = RolloutEngine("TestSlow-v0", Echo(), episode_timeout_s=0.5, progress=False).run_sync(2)
    assert {e.termination_reason for e in slow} == {"time_limit"}
    assert all(e.truncated and 1 <= e.num_turns <= 2 for e in slow)


def test_policy_errors_truncate_the_episode() -> None:
    episodes = RolloutEngine("KeyChain-v0", Echo(fail_on_turn=1), progress=False).run_sync(3)
    assert all(e.termination_reason == "policy_error" and "model fell over" in (e.error or "") for e in episodes)
    assert all(e.num_turns == 1 for e in episodes)


def test_fresh_context_replaces_the_history(test_envs: None) -> None:
    policy = Echo()
    (episode,) = RolloutEngine("TestMarkov-v0", policy, progress=False, system_prompt="be brief").run_sync(1)
    assert episode.success and episode.num_turns == 4
    assert [len(c) for c in policy.contexts] == [2, 2, 2, 2]
    assert [c[-1]["content"] for c in policy.contexts] == ["round 0", "round 1", "round 2", "round 3"]
    assert sum(1 for m in episode.messages if m.get("fresh_context")) == 4


def test_same_seeds_give_the_same_episodes_at_any_concurrency() -> None:
    def run(concurrency: int) -> list[tuple[Any, ...]]:
        episodes = RolloutEngine("KeyChain-v0", RandomPolicy(), concurrency=concurrency, progress=False).run_sync(
            12, group_size=2
        )
        return sorted((e.key, e.task_id, [s.action for s in e.steps], e.total_reward) for e in episodes)

    assert run(1) == run(8)


def test_native_tool_calls_get_tool_messages_in_order() -> None:
    class TwoCalls(Policy):
        async def act(
            self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, seed: int | None = None
        ) -> Action:
            return Action(
                tool_calls=[ToolCall("lookup", {"key": "zzz"}, "c1"), ToolCall("answer", {"value": "1"}, "c2")]
            )

    (episode,) = RolloutEngine("KeyChain-v0", TwoCalls(), progress=False).run_sync(1)
    tool_messages = [m for m in episode.messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["c1", "c2"]
    assert tool_messages[0]["content"] == "No key 'zzz' in the store."
    assert episode.terminated and episode.success is False


def test_tool_decorated_env_tools_are_offered_to_the_policy() -> None:
    class Watch(Echo):
        async def act(
            self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, seed: int | None = None
        ) -> Action:
            self.tools = tools
            return await super().act(messages, tools, seed=seed)

    policy = Watch()
    RolloutEngine("KeyChain-v0", policy, max_turns=1, progress=False).run_sync(1)
    assert sorted(t["function"]["name"] for t in policy.tools) == ["answer", "lookup"]


def test_stream_yields_episodes_while_the_run_goes_on() -> None:
    async def first_then_count() -> tuple[int, int]:
        engine = RolloutEngine("KeyChain-v0", expert_for("KeyChain-v0"), concurrency=4, progress=False)
        seen, first_seen_at = 0, -1
        async for _ in engine.stream(3000):
            seen += 1
            if first_seen_at < 0:
                first_seen_at = len(asyncio.all_tasks())
        return seen, first_seen_at

    seen, workers_alive_at_first = asyncio.run(first_then_count())
    assert seen == 3000
    assert workers_alive_at_first > 1, "the first episode arrived only after every worker had finished"


def test_environments_are_reused_across_runs_and_closed_with_the_engine() -> None:
    class Counted(KeyChainEnv):
        closed = False

        def close(self) -> None:
            self.closed = True

    built: list[Counted] = []

    def factory() -> Counted:
        built.append(Counted())
        return built[-1]

    expert = expert_for("KeyChain-v0")
    with RolloutEngine("KeyChain-v0", expert, concurrency=3, env_factory=factory, progress=False) as engine:
        first = engine.run_sync(9)
        second = engine.run_sync(9, seed=50)
        assert len(built) == 3, "the second run should reuse the three environments of the first"
        assert all(e.success for e in first + second)
        assert not any(env.closed for env in built)
    assert all(env.closed for env in built)


class RedactingEnv(TextEnv):
    """Asks the engine to replace the previous observation on every second step."""

    blocking = False

    def new_task(self, options: dict[str, Any]) -> Task:
        return Task(id="redact", prompt="start")

    def on_text(self, text: str) -> str:
        if self.state.turn == 4:
            self.end_episode(success=True)
        return f"observation {self.state.turn}"

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = super().step(action)
        if self.state.turn % 2 == 0:
            info["redact_previous_observation"] = "[removed]"
        return observation, float(reward), terminated, truncated, info


def test_env_can_redact_the_previous_observation_from_the_context() -> None:
    horizongym.register("TestRedact-v0", RedactingEnv)
    try:
        policy = Echo()
        (episode,) = RolloutEngine("TestRedact-v0", policy, progress=False).run_sync(1)
    finally:
        del gym.registry["horizongym/TestRedact-v0"]
    last_context = [m["content"] for m in policy.contexts[-1] if m["role"] == "user"]
    assert last_context == ["start", "[removed]", "observation 2", "observation 3"]
    recorded = [m["content"] for m in episode.messages if m["role"] == "user"]
    assert recorded == ["start", "observation 1", "observation 2", "observation 3", "observation 4"]


def test_a_hung_step_does_not_stall_the_run_past_its_time_limit(test_envs: None) -> None:
    started = time.perf_counter()
    with RolloutEngine("TestSlow-v0", Echo(), concurrency=2, episode_timeout_s=0.1, progress=False) as engine:
        episodes = engine.run_sync(4)
    assert {e.termination_reason for e in episodes} == {"time_limit"}
    # 4 episodes of 0.1 s over 2 workers; a blocked close of the stuck envs would add 0.3 s per episode
    assert time.perf_counter() - started < 1.2


def test_resume_counts_only_episodes_of_the_same_env_and_kwargs(tmp_path: Path) -> None:
    with EpisodeStore(tmp_path / "e.jsonl") as store:
        RolloutEngine("KeyChain-v0", expert_for("KeyChain-v0"), store=store, progress=False).run_sync(3)
        other = RolloutEngine(
            EnvRecipe("KeyChain-v0", {"max_depth": 1}), expert_for("KeyChain-v0"), store=store, progress=False
        )
        assert len(other.run_sync(3, resume=True)) == 3
        again = RolloutEngine("KeyChain-v0", expert_for("KeyChain-v0"), store=store, progress=False)
        assert again.run_sync(4, resume=True)[0].seed == 3


def test_non_text_actions_become_observations() -> None:
    env = horizongym.make("KeyChain-v0")
    env.reset(seed=0)
    calls = {
        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "lookup", "arguments": '{"key": "x"}'}}]
    }
    observation, *_ = env.step(calls)
    assert observation == "No key 'x' in the store."
    for junk in (None, 5, b"bytes"):
        observation, reward, *_ = env.step(junk)
        assert observation.startswith("Error [") and float(reward) < 0


def test_sampling_seed_gives_each_run_its_own_decoding_seeds() -> None:
    class Seeds(Policy):
        def __init__(self) -> None:
            self.seeds: list[int | None] = []

        async def act(
            self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, seed: int | None = None
        ) -> Action:
            self.seeds.append(seed)
            return Action(text="", tool_calls=[ToolCall(name="answer", arguments={"value": "x"})])

    def seeds_of(sampling_seed: int) -> list[int | None]:
        policy = Seeds()
        engine = RolloutEngine(
            "KeyChain-v0", policy, max_turns=1, concurrency=1, progress=False, sampling_seed=sampling_seed
        )
        with engine:
            engine.run_sync(3, group_size=2, seed=7)
        return policy.seeds

    assert seeds_of(0) == [policy_seed(7 + t, g, 0) for t in range(3) for g in range(2)]
    assert seeds_of(0) == seeds_of(0)
    assert not set(seeds_of(0)) & set(seeds_of(1))
    assert len(set(seeds_of(0))) == 6


def test_every_turn_is_decoded_with_its_policy_seed(test_envs: None) -> None:
    class Seeds(Policy):
        def __init__(self) -> None:
            self.seen: list[tuple[int, int | None]] = []

        async def act(
            self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, seed: int | None = None
        ) -> Action:
            turn = int(messages[-1]["content"].split()[1])  # MarkovEnv shows "round <turn>"
            self.seen.append((turn, seed))
            return Action(text="go on")

    policy = Seeds()
    big = 10**12  # large enough that the seeds wrap around their modulus
    with RolloutEngine("TestMarkov-v0", policy, concurrency=2, progress=False, sampling_seed=big) as engine:
        episodes = engine.run_sync(2, group_size=2, seed=5)
    assert sorted(policy.seen) == sorted(
        (turn, policy_seed(e.seed, e.sample, turn, big)) for e in episodes for turn in range(e.num_turns)
    )
    assert len(policy.seen) == 16


def test_an_env_that_cannot_be_built_stops_the_run_with_the_reason() -> None:
    engine = RolloutEngine(EnvRecipe("KeyChain-v0", {"no_such_option": 1}), RandomPolicy(), progress=False)
    with engine, pytest.raises(RolloutError, match=r"could not build KeyChain-v0.*no_such_option"):
        engine.run_sync(4)


def test_a_store_that_refuses_an_episode_stops_the_run(tmp_path: Path) -> None:
    class Refusing(EpisodeStore):
        def append(self, episode: Any) -> None:
            raise OSError("disk full")

    engine = RolloutEngine("KeyChain-v0", RandomPolicy(), store=Refusing(tmp_path / "e.jsonl"), progress=False)
    with engine, pytest.raises(RolloutError, match="could not store an episode: OSError: disk full"):
        engine.run_sync(4)


def test_steps_without_extra_info_share_one_frozen_empty_dict_that_stores_as_an_empty_object(tmp_path: Path) -> None:
    with EpisodeStore(tmp_path / "e.jsonl") as store:
        engine = RolloutEngine("KeyChain-v0", Echo(), progress=False, max_turns=3, store=store)
        (episode,) = engine.run_sync(1)
    step = episode.steps[0]
    assert step.info == {} and step.info is episode.steps[1].info
    with pytest.raises(TypeError, match="shared by many records"):
        step.info["note"] = 1
    (stored,) = read_episodes(tmp_path / "e.jsonl")
    assert stored == episode and type(stored.steps[0].info) is dict


def test_episodes_never_retried_share_one_frozen_empty_list_of_attempts(tmp_path: Path) -> None:
    with EpisodeStore(tmp_path / "e.jsonl") as store:
        engine = RolloutEngine("KeyChain-v0", Echo(), progress=False, max_turns=2, store=store)
        first, second = engine.run_sync(2)
    assert first.attempts == [] and first.attempts is second.attempts
    with pytest.raises(TypeError, match="shared by many records"):
        first.attempts.append(FailedAttempt(termination_reason="infra_error"))
    stored = sorted(read_episodes(tmp_path / "e.jsonl"), key=lambda e: e.key)
    assert stored == sorted([first, second], key=lambda e: e.key) and type(stored[0].attempts) is list


class InfoEnv(gym.Env[str, str]):
    """A plain Gymnasium env whose three steps' ``info`` hold, in turn: another key and no reward
    components; calls, results, events, an error and components; nothing, and a numpy ``True``."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        self.turn = 0
        return "go", {"task_id": "info"}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self.turn += 1
        if self.turn == 1:
            return "one", 0.5, False, False, {"note": 1}
        if self.turn == 2:
            info = {
                "tool_calls": [{"name": "f", "arguments": {}, "id": "c"}],
                "tool_results": [{"name": "f", "id": "c", "content": "x", "error": None}],
                "reward_events": [{"event": "hit"}],
                "error": "bad call",
                "reward_components": {"hit": 1.0},
            }
            return "two", 1.0, False, False, info
        numpy_true: Any = np.bool_(True)  # what an env that computes its end with numpy returns
        return "three", 0.0, numpy_true, False, {}


class Tokens(Policy):
    """Replies with tokens and their log-probabilities."""

    name = "tokens"

    async def act(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, seed: int | None = None
    ) -> Action:
        return Action(text="ok", prompt_token_ids=[1, 2], token_ids=[3], logprobs=[-0.5])


def test_each_step_records_what_its_info_and_action_hold_and_defaults_for_the_rest() -> None:
    with RolloutEngine("Info-v0", Tokens(), progress=False, env_factory=InfoEnv) as engine:
        (episode,) = engine.run_sync(1)
    first, second, last = episode.steps
    assert first.reward_components == {"reward": 0.5} and first.info == {"note": 1}
    assert (first.tool_calls, first.tool_results, first.reward_events, first.error) == ((), (), (), None)
    assert second.tool_calls == ({"name": "f", "arguments": {}, "id": "c"},) and second.error == "bad call"
    assert second.tool_results == ({"name": "f", "id": "c", "content": "x", "error": None},)
    assert second.reward_events == ({"event": "hit"},) and second.reward_components == {"hit": 1.0}
    assert second.info == {} and last.reward_components == {"reward": 0.0}
    assert [(s.terminated, s.truncated) for s in episode.steps] == [(False, False), (False, False), (True, False)]
    assert type(last.terminated) is bool and episode.termination_reason == "terminated"
    assert all((s.prompt_token_ids, s.token_ids, s.logprobs) == ([1, 2], [3], [-0.5]) for s in episode.steps)
    assert [s.turn for s in episode.steps] == [1, 2, 3] and [s.action for s in episode.steps] == ["ok"] * 3
    assert set(first.__dict__) == set(Step.model_fields) == set(_STEP_TEMPLATE)
