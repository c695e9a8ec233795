"""Play a team on a real environment for AgentDropout: one env episode per ``play(graph, seed)`` call.

:class:`EnvPlay` is the :data:`~.play.Play` callable of ``horizongym train ENV --policy team:CONFIG``.
Each call runs ONE episode of ``team.with_graph(graph)`` (the team playing that one realised graph
on every turn) through the rollout engine (:class:`~horizongym.training.rollouts.RolloutEngine`) on
the task the env draws for seed ``seed``, and reports

    utility = the episode's total reward,
    prompt_tokens = Σ_steps policy_trace["tokens"]["prompt"],  completion_tokens likewise,

the token sums of the team's own accounts (:mod:`horizongym.agents.team.accounting`: every member,
decision and auditor call of every turn). Only an episode whose reward the team earned (outcome
``completed`` or ``truncated``) counts: the engine retries an infrastructure failure on a fresh env
up to ``max_attempts`` times, and an episode that still ends in ``infra_error``, ``env_error`` or
``policy_error`` raises :class:`EnvPlayError` rather than become a zero utility (as the trainer
never learns from such episodes either). Each call builds its own engine, so calls may run at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from horizongym.agents.team.graph import TeamGraph
from horizongym.agents.team.policy import TeamPolicy
from horizongym.training.agentdropout.play import PlayResult
from horizongym.training.rollouts import EnvRecipe, Episode, RolloutEngine


class EnvPlayError(RuntimeError):
    """An episode whose outcome was not the team's doing (one line: the seed, the outcome, the error)."""


@dataclass(frozen=True)
class EnvPlay:
    """``play(graph, seed)`` on ``recipe`` with ``team`` (module docstring)."""

    team: TeamPolicy
    recipe: EnvRecipe
    max_turns: int | None = None
    max_attempts: int = 3
    system_prompt: str | None = None
    sampling_seed: int = 0

    async def __call__(self, graph: TeamGraph, seed: int) -> PlayResult:
        episode = await self.episode(graph, seed)
        return play_result(episode)

    async def episode(self, graph: TeamGraph, seed: int) -> Episode:
        """The episode of task seed ``seed`` played on ``graph`` (raises :class:`EnvPlayError` unless trainable)."""
        with RolloutEngine(
            self.recipe,
            self.team.with_graph(graph),
            concurrency=1,
            max_turns=self.max_turns,
            max_attempts=self.max_attempts,
            system_prompt=self.system_prompt,
            sampling_seed=self.sampling_seed,
            progress=False,
        ) as engine:
            (episode,) = await engine.run(1, 1, seed=seed)
        if not episode.trainable:
            tries = len(episode.attempts) + 1
            raise EnvPlayError(
                f"{self.recipe.env_id} task seed {seed} ended in {episode.outcome} after {tries} "
                f"{'try' if tries == 1 else 'tries'} ({episode.error or episode.termination_reason}); "
                "its reward is not the team's, so AgentDropout stops rather than score it 0"
            )
        return episode


def play_result(episode: Episode) -> PlayResult:
    """The utility and the team's tokens of one episode (module docstring)."""
    prompt = completion = 0
    for step in episode.steps:
        tokens = (step.policy_trace or {}).get("tokens")
        if not isinstance(tokens, dict):
            raise EnvPlayError(
                f"{episode.env_id} task seed {episode.seed}: step {step.turn} has no team token accounts "
                "(policy_trace['tokens']); play it with a team policy"
            )
        prompt += int(tokens["prompt"])
        completion += int(tokens["completion"])
    return PlayResult(utility=float(episode.total_reward), prompt_tokens=prompt, completion_tokens=completion)
