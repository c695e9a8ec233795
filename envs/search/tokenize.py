"""The one tokenizer of the search environment: index, queries and every compared library use it.

A token is a maximal run of Unicode word characters (the regex ``\\w+``) in the lower-cased
text; English stopwords are dropped; nothing else happens (no stemming, no length limits,
no accent folding). Keeping one function for every side is what makes scores comparable:
``tokenize("Who founded the Ørsted company?") == ["founded", "ørsted", "company"]``.

Apostrophes are not word characters, so ``"don't"`` gives ``don`` and ``t``; both halves
of common clitics are in the stopword list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORD = re.compile(r"\w+")

# Function words of English: articles, pronouns, auxiliaries, prepositions, conjunctions,
# question words, and the halves ``\w+`` leaves of contractions (don't -> don, t).
STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against all am an and any are aren as at be because been before being
    below between both but by can cannot could couldn d did didn do does doesn doing don down during
    each few for from further had hadn has hasn have haven having he her here hers herself him himself
    his how i if in into is isn it its itself just ll m ma me might mightn more most must mustn my
    myself needn no nor not now o of off on once only or other our ours ourselves out over own re s
    same shan she should shouldn so some such t than that the their theirs them themselves then there
    these they this those through to too under until up ve very was wasn we were weren what when where
    which while who whom whose why will with won would wouldn y you your yours yourself yourselves
    """.split()
)


def tokenize(text: str) -> list[str]:
    """The tokens of ``text``: lower-cased ``\\w+`` runs, stopwords removed, in order, repeats kept."""
    stop = STOPWORDS
    return [token for token in _WORD.findall(text.lower()) if token not in stop]


def tokenize_many(texts: Iterable[str]) -> list[list[str]]:
    """``tokenize`` for each text (a list, in order)."""
    findall, stop = _WORD.findall, STOPWORDS
    return [[token for token in findall(text.lower()) if token not in stop] for text in texts]
