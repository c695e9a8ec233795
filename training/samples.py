"""Per-turn training samples, built from the token ids the rollout engine recorded.

Every turn of every episode is its own sample (the unit of EAPO and of the per-turn
estimators): the prompt the policy saw, the completion it sampled, the log-probs it had for
those tokens, and the turn's advantage. Nothing is re-tokenized: ``prompt_ids`` and
``completion_ids`` are ``Step.prompt_token_ids`` and ``Step.token_ids`` exactly, so the
trainer scores the very tokens the policy produced. Steps that carry no token ids (a scripted
expert's, a remote server's) cannot be trained on this way; they are skipped and counted.

A branch of a tree rollout holds its parent's first ``fork_turn`` steps (copied, so the episode
reads whole): those turns are trained once, as its parent's samples. ``shared[e]`` is how many
leading turns of ``episodes[e]`` belong to another episode of the batch; they make no samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from horizongym.training.rollouts.trajectory import Episode


@dataclass(frozen=True)
class TurnSample:
    """One turn as a training sample.

    ``episode`` is the episode's ``(task seed, sample index)`` key and ``turn`` the turn's
    index (0-based) within the episode, so a sample can be traced back to its step.
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    old_logprobs: list[float]
    advantage: float
    episode: tuple[int, int]
    turn: int
    branch: int = 0
    """The episode's branch in its tree (0: the trunk, or an episode of a run without trees)."""
    policy_version: int | None = None
    """The policy version that generated the turn (``Step.policy_version``): how stale the sample is."""
    behaviour_logprobs: list[float] | None = None
    """The sampler's own log-probs when ``old_logprobs`` were recomputed by the trainer (rollouts on a
    server): the μ of truncated importance sampling (:mod:`horizongym.training.truncated_is`)."""

    @property
    def num_tokens(self) -> int:
        """Completion tokens: what the loss is computed on."""
        return len(self.completion_ids)


class SampleSet(NamedTuple):
    """The samples of some episodes, and how many steps had no token ids to train on."""

    samples: list[TurnSample]
    skipped_steps: int


def samples_from_episodes(
    episodes: Sequence[Episode],
    advantages: Sequence[Sequence[float]] | None = None,
    shared: Sequence[int] | None = None,
) -> SampleSet:
    """One :class:`TurnSample` per step that has prompt ids, completion ids and log-probs.

    ``advantages[e][t]`` is the advantage of turn ``t`` of ``episodes[e]`` (the layout the
    estimators in :mod:`horizongym.training.advantages` return); ``None`` gives every sample an
    advantage of 0 (for scoring passes that need the samples before the advantages exist).
    """
    if advantages is not None and len(advantages) != len(episodes):
        raise ValueError(f"{len(advantages)} advantage rows for {len(episodes)} episodes")
    if shared is not None and len(shared) != len(episodes):
        raise ValueError(f"{len(shared)} shared-turn counts for {len(episodes)} episodes")
    samples: list[TurnSample] = []
    skipped = 0
    for index, episode in enumerate(episodes):
        row = None if advantages is None else advantages[index]
        if row is not None and len(row) != len(episode.steps):
            raise ValueError(f"episode {episode.key}: {len(row)} advantages for {len(episode.steps)} turns")
        first = 0 if shared is None else shared[index]  # a branch's turns its parent trains
        for turn, step in enumerate(episode.steps[first:], start=first):
            prompt, completion, logprobs = step.prompt_token_ids, step.token_ids, step.logprobs
            if not prompt or not completion or logprobs is None:
                skipped += 1
                continue
            if len(logprobs) != len(completion):
                raise ValueError(
                    f"episode {episode.key}, turn {turn}: {len(logprobs)} log-probs for {len(completion)} tokens"
                )
            samples.append(
                TurnSample(
                    prompt_ids=prompt,
                    completion_ids=completion,
                    old_logprobs=logprobs,
                    advantage=0.0 if row is None else float(row[turn]),
                    episode=episode.key,
                    turn=turn,
                    branch=episode.branch,
                    policy_version=step.policy_version,
                )
            )
    return SampleSet(samples, skipped)
