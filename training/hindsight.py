"""Hindsight log-probs for HCAPO: how likely each action looks once the outcome is known.

HCAPO ("Hindsight Credit Assignment for Long-Horizon LLM Agents", arXiv:2603.08754) scores
every turn's action a_t twice with the current model: under the policy, log π(a_t | s_t), and
in hindsight, with the episode's final outcome Z stated in the prompt, log π(a_t | s_t, Z).
Actions that the outcome makes more likely get more credit. The hindsight value of a turn is

    ℓ_t = (1/|a_t|) Σ_j log π(a_t,j | s_t ⊕ hint(Z), a_t,<j)

a teacher-forced pass over the recorded token ids, where ``s_t ⊕ hint(Z)`` is the prompt with
the hint's tokens inserted just before the final assistant header (the generation prompt the
chat template appended), or prepended when that header cannot be found in the ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from horizongym.agents.hf import render_prompt
from horizongym.training.ppo import completion_logprobs
from horizongym.training.samples import TurnSample

Outcome = tuple[float, bool | None]
"""An episode's total reward and success (``None`` when the env does not say)."""


def outcome_hint(reward: float, success: bool | None) -> str:
    """The sentence that tells the model how the episode ended."""
    verdict = "" if success is None else (" (success)" if success else " (failure)")
    return f"Outcome of this episode: reward {reward:.2f}{verdict}."


class HintInserter:
    """Insert outcome hints into prompt token ids, tokenizing each distinct hint once.

    The hint is rendered as a user turn of the tokenizer's own chat template (the text the
    template adds for one more user message), so the model reads it as conversation rather
    than stray text; a template that refuses such a turn gets the bare hint text.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.header = self._encode(self._generation_header())
        self._hints: dict[str, list[int]] = {}

    def _encode(self, text: str) -> list[int]:
        return [int(i) for i in self.tokenizer(text, add_special_tokens=False)["input_ids"]] if text else []

    def _generation_header(self) -> str:
        """The text the chat template appends for ``add_generation_prompt`` (e.g. ``<|im_start|>assistant\\n``)."""
        messages = [{"role": "user", "content": "x"}]
        bare = render_prompt(self.tokenizer, messages, None, add_generation_prompt=False)
        full = render_prompt(self.tokenizer, messages, None, add_generation_prompt=True)
        return full[len(bare) :] if full.startswith(bare) else ""

    def _hint_text(self, hint: str) -> str:
        first = [{"role": "user", "content": "x"}]
        try:
            before = render_prompt(self.tokenizer, first, None, add_generation_prompt=False)
            after = render_prompt(
                self.tokenizer, [*first, {"role": "user", "content": hint}], None, add_generation_prompt=False
            )
        except Exception:
            return f"\n{hint}\n"
        return after[len(before) :] if after.startswith(before) and len(after) > len(before) else f"\n{hint}\n"

    def hint_ids(self, hint: str) -> list[int]:
        """The token ids of ``hint`` as inserted (cached per hint text)."""
        if hint not in self._hints:
            self._hints[hint] = self._encode(self._hint_text(hint))
        return self._hints[hint]

    def insert(self, prompt_ids: Sequence[int], hint: str) -> list[int]:
        """``prompt_ids`` with the hint before the last assistant header, or in front of everything."""
        ids, header, hint_ids = list(prompt_ids), self.header, self.hint_ids(hint)
        if header:
            for start in range(len(ids) - len(header), -1, -1):
                if ids[start : start + len(header)] == header:
                    return [*ids[:start], *hint_ids, *ids[start:]]
        return [*hint_ids, *ids]


def hindsight_logprobs(
    model: Any,
    tokenizer: Any,
    samples: Sequence[TurnSample],
    outcomes: Sequence[Outcome],
    *,
    batch_size: int = 8,
    temperature: float = 1.0,
    inserter: HintInserter | None = None,
) -> list[float]:
    """ℓ for each sample: the mean token log-prob of its completion with ``outcomes[i]`` hinted.

    ``outcomes[i]`` is the (reward, success) of the episode ``samples[i]`` belongs to. Runs
    without gradients, in eval mode (the model's mode is restored), in batches of
    ``batch_size``; ``temperature`` should be the sampling temperature, as for the policy's own
    log-probs. Pass a long-lived ``inserter`` to reuse its tokenized hints across calls.
    """
    if len(samples) != len(outcomes):
        raise ValueError(f"{len(outcomes)} outcomes for {len(samples)} samples")
    inserter = inserter or HintInserter(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    was_training = model.training
    model.eval()
    means: list[float] = []
    try:
        with torch.no_grad():
            for start in range(0, len(samples), max(1, batch_size)):
                chunk = samples[start : start + max(1, batch_size)]
                prompts = [
                    inserter.insert(s.prompt_ids, outcome_hint(*outcomes[start + i])) for i, s in enumerate(chunk)
                ]
                logprobs, mask = completion_logprobs(
                    model, prompts, [s.completion_ids for s in chunk], pad_token_id=int(pad), temperature=temperature
                )
                means.extend((logprobs.sum(-1) / mask.sum(-1).clamp(min=1.0)).tolist())
    finally:
        model.train(was_training)
    return means
