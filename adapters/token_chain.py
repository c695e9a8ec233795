"""A transformers policy that continues each conversation from its own sampled tokens.

:class:`~horizongym.agents.hf.TransformersPolicy` renders the whole conversation with the chat
template at every turn, so turn ``t + 1``'s prompt holds turn ``t``'s reply as the template
re-tokenizes its text. A trainer that scores an episode as one sequence (TRL's GRPO) needs the
tokens the model really sampled, followed by the env's answer. :class:`TokenChainPolicy` builds
turn ``t + 1``'s prompt as

    prompt_{t+1} = prompt_t + sampled_t + suffix_t

where ``suffix_t`` is what the chat template writes after the assistant turn: the env's messages
and the next generation prompt. It is found the way TRL's own tool loop finds it
(``GRPOTrainer._get_tool_suffix_ids``): render the conversation up to the assistant message and
with the new messages, cut the first after its last eos token (templates close an assistant
turn with it), and keep the rest of the second. A reply cut off by the token limit has no eos of
its own: the template's closing eos then leads the suffix. So every step's prompt starts with the
previous step's prompt and completion, token for token, and nothing the model sampled is
re-tokenized.

A conversation is followed by its list object (the rollout engine appends to one list per
episode); a context the env rewrote (``fresh_context``, a redaction) starts a new chain.

With ``completion_budget`` (TRL's ``max_completion_length``) the tokens after the first prompt,
the model's and the env's together, stay within the budget: a turn samples at most what is left,
and a turn with nothing left raises :class:`~horizongym.agents.base.ContextLengthExceeded`, which
the engine records as a ``context_limit`` end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from horizongym.agents.base import Action, ContextLengthExceeded, Message, Policy, PolicyError
from horizongym.agents.hf import TransformersPolicy, render_prompt


@dataclass
class _Chain:
    """One conversation's tokens so far."""

    messages: list[Message]
    """The live message list of the conversation (held, so its ``id`` is not reused)."""
    first_prompt_length: int
    seen: list[Message] = field(default_factory=list)
    """The messages of the last turn's prompt, as they were (compared by identity)."""
    ids: list[int] = field(default_factory=list)
    """The last prompt and the completion sampled from it."""
    stopped: bool = True
    """Whether the last completion ended with an eos token."""


class TokenChainPolicy(Policy):
    """Wrap ``inner`` so each turn continues from the tokens of the turns before (see the module docstring)."""

    name = "token-chain"

    def __init__(self, inner: TransformersPolicy, *, completion_budget: int | None = None) -> None:
        if completion_budget is not None and completion_budget < 1:
            raise ValueError(f"completion_budget must be at least 1, got {completion_budget}")
        self.inner = inner
        self.completion_budget = completion_budget
        self.tokenizer = inner.tokenizer
        eos = self.tokenizer.eos_token_id
        if eos is None:
            raise PolicyError("the tokenizer has no eos token: the end of an assistant turn cannot be found")
        self.eos_token_id = int(eos)
        self._chains: dict[int, _Chain] = {}

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        chain = self._chains.get(id(messages))
        if chain is not None and chain.messages is messages and _continues(chain.seen, messages):
            prompt_ids = chain.ids + self._suffix(chain, messages, tools)
        else:
            prompt_ids = self.inner.encode(messages, tools)
            chain = _Chain(messages=messages, first_prompt_length=len(prompt_ids))
            self._chains[id(messages)] = chain
        max_new_tokens = self.inner.max_new_tokens
        if self.completion_budget is not None:
            room = self.completion_budget - (len(prompt_ids) - chain.first_prompt_length)
            if room < 1:
                raise ContextLengthExceeded(f"the completion budget of {self.completion_budget} tokens is spent")
            max_new_tokens = min(max_new_tokens, room)
        generation = await self.inner.generate(prompt_ids, seed=seed, max_new_tokens=max_new_tokens)
        sampled = generation.token_ids
        chain.ids = prompt_ids + sampled
        chain.seen = list(messages)
        chain.stopped = bool(sampled) and sampled[-1] in self.inner.eos_token_ids
        return Action(
            text=self.tokenizer.decode(sampled, skip_special_tokens=True),
            prompt_token_ids=prompt_ids,
            token_ids=sampled,
            logprobs=generation.logprobs,
            finish_reason=generation.finish_reason,
        )

    def _suffix(self, chain: _Chain, messages: list[Message], tools: list[dict[str, Any]]) -> list[int]:
        """The template's tokens after the last assistant turn: the env's messages and the generation prompt."""
        head = messages[: len(chain.seen) + 1]  # through the assistant message of the last turn
        prefix = self._tokens(render_prompt(self.tokenizer, head, tools, add_generation_prompt=False))
        full = self._tokens(render_prompt(self.tokenizer, messages, tools, add_generation_prompt=True))
        closing = [i for i, token in enumerate(prefix) if token == self.eos_token_id]
        if not closing:
            raise PolicyError("the chat template closes no assistant turn with the eos token; cannot continue a turn")
        prefix = prefix[: closing[-1] + 1]
        if full[: len(prefix)] != prefix:
            raise PolicyError("the chat template is not prefix-preserving: a later turn rewrites an earlier one")
        suffix = full[len(prefix) :]
        return suffix if chain.stopped else [self.eos_token_id, *suffix]

    def _tokens(self, text: str) -> list[int]:
        return [int(i) for i in self.tokenizer(text, add_special_tokens=False)["input_ids"]]

    def forget(self) -> None:
        """Drop every conversation followed so far."""
        self._chains.clear()

    async def aclose(self) -> None:
        self.forget()
        await self.inner.aclose()


def _continues(seen: list[Message], messages: list[Message]) -> bool:
    """Whether ``messages`` is ``seen`` (the same message objects) plus an assistant turn and the env's answer."""
    if not seen or len(messages) < len(seen) + 2:
        return False
    if any(old is not new for old, new in zip(seen, messages, strict=False)):
        return False
    return bool(messages[len(seen)].get("role") == "assistant")
