"""Rewards of the search environment: answer correctness and ReSeek's judgment rewards.

Answer correctness follows the SQuAD / HotpotQA evaluation: both strings are normalized
(lower case, punctuation and the articles a/an/the removed, whitespace collapsed), then
compared for an exact match (EM), or scored by token F1 = 2·P·R / (P + R) over the bag of
normalized tokens (Rajpurkar et al. 2016, "SQuAD"; Yang et al. 2018, "HotpotQA"). With
several accepted answers the best score counts. ``chars`` is a partial credit for training, not
an evaluation metric: the Ratcliff/Obershelp similarity 2·M / (|a| + |b|) of the normalized
strings, M the characters of their matching blocks (Ratcliff & Metzener 1988; Python's
``difflib.SequenceMatcher.ratio``). A number one digit off scores close to 1, where its token F1
is 0.

Judgment rewards follow ReSeek (Li et al. 2025, arXiv 2510.00568): after each search the
agent judges the returned information ``Yes`` (useful) or ``No``. The ideal label is whether
the returned documents contain a gold supporting document; for a task that names no gold
documents (Search-R1 / FlashRAG questions), whether the information contains an accepted
answer (:func:`answer_in_text`, the retrieval check of Search-R1, Jin et al. 2025). The default values reward a
correct judgment with +0.3, a useful ``Yes`` with +0.4 when the final answer turns out
correct, and punish a wrong ``Yes`` with −0.6 and a wrong ``No`` with −0.3. A search whose
information is never judged counts as a judgment error (``missing``, −0.3 by default).
"""

from __future__ import annotations

import difflib
import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import Literal

AnswerMetric = Literal["em", "f1", "chars"]
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation and articles, collapse whitespace."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def exact_match(prediction: str, answers: tuple[str, ...] | list[str]) -> float:
    """1.0 if the normalized prediction equals any normalized accepted answer, else 0.0."""
    predicted = normalize_answer(prediction)
    return float(any(predicted == normalize_answer(answer) for answer in answers))


def f1_score(prediction: str, answers: tuple[str, ...] | list[str]) -> float:
    """The best token F1 between the prediction and any accepted answer."""
    predicted = normalize_answer(prediction).split()
    best = 0.0
    for answer in answers:
        gold = normalize_answer(answer).split()
        common = sum((Counter(predicted) & Counter(gold)).values())
        if common == 0:
            continue
        precision, recall = common / len(predicted), common / len(gold)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def char_similarity(prediction: str, answers: tuple[str, ...] | list[str]) -> float:
    """The best Ratcliff/Obershelp similarity 2·M / (|a| + |b|) of the normalized prediction and an accepted answer."""
    predicted = normalize_answer(prediction)
    scores = (difflib.SequenceMatcher(None, predicted, normalize_answer(a), autojunk=False).ratio() for a in answers)
    return max(scores, default=0.0)


def answer_in_text(text: str, answers: tuple[str, ...] | list[str]) -> bool:
    """Whether the normalized ``text`` contains any normalized accepted answer as whole tokens.

    Search-R1's ``is_retrieval_correct`` tests ``normalize(answer) in normalize(information)``
    (a substring); here the answer must start and end at token boundaries, so the answer
    ``no`` is not found in ``north``, nor ``1960`` in ``19601``.
    """
    padded = f" {normalize_answer(text)} "
    return any(f" {normal} " in padded for normal in map(normalize_answer, answers) if normal)


def answer_score(prediction: str, answers: tuple[str, ...] | list[str], metric: AnswerMetric = "em") -> float:
    if metric == "em":
        return exact_match(prediction, answers)
    return f1_score(prediction, answers) if metric == "f1" else char_similarity(prediction, answers)


@dataclass(frozen=True)
class JudgeRewards:
    """The reward of each judgment case.

    ``useful_yes_correct_answer`` replaces ``correct`` for a right ``Yes`` when the final
    answer is correct; the environment pays ``correct`` at the judgment and the difference
    when the answer arrives, so the per-step rewards add up to the same total.
    """

    useful_yes_correct_answer: float = 0.4
    correct: float = 0.3
    wrong_yes: float = -0.6
    wrong_no: float = -0.3
    missing: float = -0.3


JUDGE_REWARD_SETS: dict[str, JudgeRewards] = {
    "reseek": JudgeRewards(),
    # the documented alternative: symmetric, so a policy gains nothing by leaning to one label
    "symmetric": JudgeRewards(useful_yes_correct_answer=0.2, correct=0.2, wrong_yes=-0.2, wrong_no=-0.2, missing=-0.2),
}


def judgment_reward(verdict: bool | None, useful: bool, rewards: JudgeRewards) -> float:
    """The reward paid when a judgment is made (``verdict`` None = the judgment is missing)."""
    if verdict is None:
        return rewards.missing
    if verdict == useful:
        return rewards.correct
    return rewards.wrong_yes if verdict else rewards.wrong_no


def answer_bonus(useful_yes_count: int, answer_correct: bool, rewards: JudgeRewards) -> float:
    """Paid with a correct final answer: the extra for each right ``Yes`` on useful information."""
    if not answer_correct:
        return 0.0
    return useful_yes_count * (rewards.useful_yes_correct_answer - rewards.correct)
