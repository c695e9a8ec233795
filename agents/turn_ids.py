"""Token-in/token-out across turns: a next prompt extends the ids a turn sampled, never re-tokenizes them.

A policy renders each turn's prompt from the chat messages. The previous assistant reply is in
those messages as text, and tokenizing that text again need not give the ids the model sampled:
a real BPE tokenizer has many tokenizations of one string and the model may sample a
non-canonical one (``"hel" + "lo"`` for ``"hello"``), and text cut mid-character decodes to
U+FFFD. The trainer then trains on a context the model never produced. :class:`TurnIds` keeps,
per conversation, the ids of the last sampled turn (its prompt and completion); the next prompt is

    ids(turn t + 1) = prompt_ids(t) + completion_ids(t) + tokenize(render(messages)[len(decode(those ids)):])

used only when ``decode(prompt_ids(t) + completion_ids(t))`` is a prefix of the rendered text
(the template rendered the reply as sampled); otherwise the whole prompt is tokenized afresh, as
inference servers without this bookkeeping do. (The technique is that of SkyRL's and verl's
multi-turn token-in/token-out rollouts.)
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Any

Message = dict[str, Any]


def conversation_key(messages: list[Message], tools: list[dict[str, Any]] | None) -> str:
    """A digest of a conversation and its tools (equal for equal JSON)."""
    text = json.dumps([messages, tools or []], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class TurnIds:
    """The ids (prompt + completion) of recently sampled turns, by the conversation they answered."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, list[int]] = OrderedDict()
        self.extended = 0
        """Prompts built by extending a recorded turn's ids."""
        self.mismatched = 0
        """Prompts whose recorded turn did not render back as sampled (tokenized afresh)."""

    def record(self, messages: list[Message], tools: list[dict[str, Any]] | None, ids: list[int]) -> None:
        """Remember ``ids`` (the prompt and sampled completion) as the answer to ``messages``."""
        key = conversation_key(messages, tools)
        self._ids[key] = list(ids)
        self._ids.move_to_end(key)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    def extend(
        self, tokenizer: Any, messages: list[Message], tools: list[dict[str, Any]] | None, text: str
    ) -> list[int] | None:
        """The prompt ids of ``messages`` (rendered as ``text``) extending the recorded turn, or ``None``."""
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
        if last is None:
            return None
        ids = self._ids.get(conversation_key(messages[:last], tools))
        if ids is None:
            return None
        sampled = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if not text.startswith(sampled):
            self.mismatched += 1
            return None
        self.extended += 1
        rest = tokenizer(text[len(sampled) :], add_special_tokens=False)["input_ids"]
        return ids + [int(i) for i in rest]

    def __len__(self) -> int:
        return len(self._ids)


__all__ = ["TurnIds", "conversation_key"]
