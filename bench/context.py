"""How many tokens the policy's context holds per round: the Markovian workspace against full history.

:func:`context_tokens` plays LongChain-v0's scripted expert through the rollout engine and
counts, at chosen rounds, the tokens of the conversation the policy is shown (``bench/credit.py``
reports them as ``context_tokens`` and ``context_ratio_512_vs_8``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import gymnasium as gym

from horizongym.agents.base import Action, Message, Policy
from horizongym.agents.experts.longchain import LongChainExpert
from horizongym.agents.hf import encode_prompt
from horizongym.agents.tiny import build_byte_tokenizer
from horizongym.envs import make
from horizongym.envs.workspace import make_workspace
from horizongym.training.rollouts import RolloutEngine


def context_tokens(
    mode: Literal["workspace", "history"],
    rounds: Sequence[int],
    tokenizer: Any | None = None,
    chain_length: int | None = None,
) -> dict[int, int]:
    """The size in tokens of the policy's context at each of ``rounds``, for the LongChain expert.

    The expert plays LongChain-v0 through the :class:`~horizongym.training.rollouts.engine.RolloutEngine`
    for ``max(rounds)`` rounds, either inside the workspace (the context is the current
    observation alone, since every step asks for a fresh context) or plainly with full history
    (every observation and action so far). Round ``r``'s context is what the policy sees when it
    chooses its ``r``-th action, rendered with the chat template and the offered tools
    (:func:`~horizongym.agents.hf.encode_prompt`), by default with the tiny byte-level
    tokenizer. ``chain_length`` defaults to ``max(rounds)``, so every round is a lookup.
    """

    if mode not in ("workspace", "history"):
        raise ValueError(f"mode must be 'workspace' or 'history', got {mode!r}")
    wanted = sorted(set(rounds))
    if not wanted or wanted[0] < 1:
        raise ValueError("rounds must be positive round numbers")
    last = wanted[-1]
    length = chain_length if chain_length is not None else last
    if length < last:
        raise ValueError(f"a chain of length {length} ends before round {last}")
    if tokenizer is None:
        tokenizer = build_byte_tokenizer()
    counts: dict[int, int] = {}

    class Measuring(Policy):
        name = "expert"

        def __init__(self) -> None:
            self.expert = LongChainExpert()
            self.calls = 0

        async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
            self.calls += 1
            if self.calls in wanted:
                counts[self.calls] = len(encode_prompt(tokenizer, messages, tools))
            return await self.expert.act(messages, tools, seed=seed)

    def factory() -> gym.Env[Any, Any]:
        if mode == "workspace":
            return make_workspace("LongChain-v0", max_rounds=max(last, 2048), length=length, disable_env_checker=True)
        return make("LongChain-v0", length=length, disable_env_checker=True)

    with RolloutEngine(
        "LongChain-v0", Measuring(), concurrency=1, max_turns=last, progress=False, env_factory=factory
    ) as engine:
        engine.run_sync(1)
    missing = [r for r in wanted if r not in counts]
    if missing:
        raise RuntimeError(f"the episode ended before rounds {missing}")
    return {r: counts[r] for r in wanted}
