"""The email environment's reward: ART·E's scheme (OpenPipe ART, examples/art-e), by component.

With a correct final answer: ``answer`` +1, ``sources`` +0.3 when the cited message ids
include every source email, ``efficiency`` +0.1·(1 − turns/max_turns). Otherwise the
outcome component is ``answer`` −1 for a wrong answer, 0 for "I don't know" or running out of
turns, and ``format`` −2 / −1.9 / −1.8 for a malformed call / unknown tool / bad arguments;
these outcomes also earn ``partial`` credit, +0.1 each for having found a source email in a
search, read it, cited it, and never tried to read an id that is not in the inbox.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
DONT_KNOW = {"i dont know", "i do not know", "idk", "unknown", "not found", "no answer", ""}


@dataclass(frozen=True)
class ArtERewards:
    """The values of each outcome (ART·E's defaults)."""

    correct: float = 1.0
    sources: float = 0.3
    efficiency: float = 0.1
    wrong: float = -1.0
    dont_know: float = 0.0
    malformed_call: float = -2.0
    unknown_tool: float = -1.9
    bad_arguments: float = -1.8
    partial: float = 0.1


FORMAT_OUTCOMES = {
    "invalid_json": "malformed_call",
    "malformed_tool_call": "malformed_call",
    "no_tool_call": "malformed_call",
    "unknown_tool": "unknown_tool",
    "invalid_arguments": "bad_arguments",
}


def normalize(text: str) -> str:
    """Lower case, no punctuation or articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def is_dont_know(answer: str) -> bool:
    return normalize(answer) in DONT_KNOW


def matches(answer: str, accepted: tuple[str, ...] | list[str]) -> bool:
    """Normalized equality with any accepted form, or a short answer that contains one whole."""
    given = normalize(answer)
    for form in accepted:
        expected = normalize(form)
        if not expected:
            continue
        if given == expected:
            return True
        if f" {expected} " in f" {given} " and len(given.split()) <= len(expected.split()) + 3:
            return True
    return False


@dataclass
class Evidence:
    """What the agent did with the source emails during the episode."""

    found_source: bool = False
    read_source: bool = False
    read_invalid: bool = False

    def partial_credit(self, cited_source: bool, rewards: ArtERewards) -> float:
        earned = self.found_source + self.read_source + cited_source + (not self.read_invalid)
        return rewards.partial * earned
