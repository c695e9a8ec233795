"""One context builder: SFT's prompts are exactly the prompts a text policy saw during rollouts."""

from __future__ import annotations

import copy
from typing import Any

from horizongym.agents import Action, Message, Policy, expert_for
from horizongym.envs.workspace import make_workspace
from horizongym.training.rollouts import Episode, RolloutEngine
from horizongym.training.sft import step_contexts


class RecordingTextPolicy(Policy):
    """Plays an expert's moves as plain text (Hermes blocks, as a text policy writes them) and
    records every context it is shown, in order (run it with concurrency 1)."""

    def __init__(self, env_id: str) -> None:
        self.expert = expert_for(env_id)
        self.name = self.expert.name
        self.seen: list[list[Message]] = []

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        self.seen.append(copy.deepcopy(messages))
        action = await self.expert.act(messages, tools, seed=seed)
        return Action(text=action.env_action())

    def per_episode(self, episodes: list[Episode]) -> list[list[list[Message]]]:
        """The recorded contexts cut into episodes (one per step, in the order the episodes ran)."""
        cut, start = [], 0
        for episode in episodes:
            cut.append(self.seen[start : start + len(episode.steps)])
            start += len(episode.steps)
        assert start == len(self.seen)
        return cut


def test_sft_contexts_equal_the_rollout_contexts_with_redactions_and_a_system_prompt() -> None:
    policy = RecordingTextPolicy("SearchJudge-v0")
    engine = RolloutEngine("SearchJudge-v0", policy, concurrency=1, system_prompt="You are careful.", progress=False)
    with engine:
        episodes = engine.run_sync(24)
    redacted = 0
    for episode, seen in zip(episodes, policy.per_episode(episodes), strict=True):
        assert [messages for messages, _ in step_contexts(episode)] == seen
        assert [action for _, action in step_contexts(episode)] == [step.action for step in episode.steps]
        redacted += sum(1 for step in episode.steps if step.info.get("redact_previous_observation"))
    assert redacted > 0, "no episode exercised a redaction; pick other seeds"


def test_sft_contexts_equal_the_rollout_contexts_with_fresh_contexts() -> None:
    policy = RecordingTextPolicy("LongChain-v0")

    def factory() -> Any:
        return make_workspace("LongChain-v0", length=6, disable_env_checker=True)

    with RolloutEngine("LongChain-v0", policy, concurrency=1, env_factory=factory, progress=False) as engine:
        episodes = engine.run_sync(3)
    for episode, seen in zip(episodes, policy.per_episode(episodes), strict=True):
        assert sum(1 for step in episode.steps if step.info.get("fresh_context")) == len(episode.steps)
        assert [messages for messages, _ in step_contexts(episode)] == seen
