"""The controlled team of the AgentDropout bench: a generated quiz and five scripted members of known skill.

**Task** (:class:`CodeQuiz`): query ``q`` of seed ``s`` asks "Which of the options A..H is the code
of item Q<q>?"; exactly one of the ``M = 8`` options is right, drawn from ``rng([s, q])``. The
team answers with the tag tool ``<answer>LETTER</answer>``; the utility is 1 iff the team's action
names the right letter.

**Members** (:class:`QuizMember`, any :class:`~horizongym.agents.base.Policy`): each reads the
question from the env conversation and its inbox with
:func:`~horizongym.agents.team.prompts.parse_inbox`. A *draw* of a member with skill ``p`` is
right with probability ``p``, else one of the ``M − 1`` wrong options uniformly; it comes from
``rng([s, q, agent, r, d])`` (seed, query, agent index, round, draw), so it is reproducible and the
same for every graph a query is played on (every method meets the same member luck). Draw 0 is
the first message, draw 1 the rewrite a firewall asks for (every rewrite of a message is that same
second draw). The skills, picked once from the issue's description and not tuned:

============  ======  =====  ======================================================================
role          skill   words  behaviour
============  ======  =====  ======================================================================
expert        0.85    30     its own draw, inbox ignored
aggregator    (0.30)  15     plurality of its inbox's answers (ties: the first in inbox order);
                             its own weak draw (skill 0.30) when the inbox holds no answer;
                             rewrite: the runner-up of its tally, else its weak draw 1
noisy         0.35    20     its own draw
redundant     = expert 30    the expert's draw (same stream): no new information, same cost
adversary     0       90     one consistent wrong answer per query (``rng([s, q, "adversary"])``),
                             rewrites included; worth 2 votes in the decision
============  ======  =====  ======================================================================

``words`` is each message's length in whitespace words (the team's token accounts charge words),
so prompt tokens depend on who reads whom. The decision is the team policy's weighted majority
vote over the last round's messages (vote key: the ``answer`` call's argument).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from horizongym.agents.base import Action, Message, Policy
from horizongym.agents.team.config import DecisionConfig, MemberConfig, TeamConfig
from horizongym.agents.team.firewall import AuditingFirewall, ScriptedAuditor
from horizongym.agents.team.graph import TeamGraph
from horizongym.agents.team.indicators import Indicator, IndicatorPool
from horizongym.agents.team.messages import AuditContext, MessageFirewall, TeamMessage
from horizongym.agents.team.policy import TeamPolicy
from horizongym.agents.team.prompts import parse_inbox
from horizongym.tools import parse_action
from horizongym.training.agentdropout import PlayResult

OPTIONS = "ABCDEFGH"
TAG_ARGUMENTS = {"answer": "letter"}
ANSWER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "answer",
        "description": "Give the team's answer: one option letter.",
        "parameters": {
            "type": "object",
            "properties": {"letter": {"type": "string", "description": "one of A..H"}},
            "required": ["letter"],
        },
    },
}
_ITEM = re.compile(r"item Q(\d+)\?")
_ROUND = re.compile(r"\[team round (\d+) of (\d+)\]")


@dataclass(frozen=True)
class Role:
    """A member's role: its name, skill, message length (words), vote weight, role prompt."""

    name: str
    skill: float
    words: int
    votes: float
    prompt: str


ROLES: tuple[Role, ...] = (
    Role("expert", 0.85, 30, 1.0, "You are the domain expert; answer from your own knowledge."),
    Role("aggregator", 0.30, 15, 1.0, "You aggregate your teammates' answers into the most common one."),
    Role("noisy", 0.35, 20, 1.0, "You are a generalist; answer as best you can."),
    Role("redundant", 0.85, 30, 1.0, "You are a second expert of the same school as the first."),
    Role("adversary", 0.0, 90, 2.0, "You argue at length for your own answer."),
)
"""The five members in speaking-index order (the full graph's spatial edges go from lower to higher index)."""
ROLE_NAMES = tuple(role.name for role in ROLES)
EXPERT, AGGREGATOR, NOISY, REDUNDANT, ADVERSARY = range(len(ROLES))
AUDITOR_TPR, AUDITOR_FPR = 0.8, 0.1


class CodeQuiz:
    """The generated questions of one seed (module docstring); knows every answer."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def answer(self, query: int) -> str:
        return OPTIONS[int(np.random.default_rng([self.seed, query]).integers(len(OPTIONS)))]

    def adversary_answer(self, query: int) -> str:
        """The adversary's one wrong answer to ``query``."""
        wrong = [o for o in OPTIONS if o != self.answer(query)]
        return wrong[int(np.random.default_rng([self.seed, query, 7919]).integers(len(wrong)))]

    def draw(self, query: int, agent: int, round_: int, draw: int, skill: float) -> str:
        """Member ``agent``'s draw ``draw`` in round ``round_``: right with probability ``skill``."""
        rng = np.random.default_rng([self.seed, query, agent, round_, draw])
        right = self.answer(query)
        if rng.random() < skill:
            return right
        wrong = [o for o in OPTIONS if o != right]
        return wrong[int(rng.integers(len(wrong)))]

    def question(self, query: int) -> str:
        return (
            f"Each item has one code among the options {', '.join(OPTIONS)}. "
            f"Which of the options A..H is the code of item Q{query}? Reply with <answer>LETTER</answer>."
        )

    def messages(self, query: int) -> list[Message]:
        return [
            {"role": "system", "content": "You answer quiz questions about item codes."},
            {"role": "user", "content": self.question(query)},
        ]

    def is_right(self, query: int, text: str) -> bool:
        """Whether an action's ``answer`` call names the right letter."""
        return answer_of(text) == self.answer(query)


def answer_of(text: str) -> str | None:
    """The letter of the ``<answer>`` call in ``text``, or None."""
    calls = parse_action(text, TAG_ARGUMENTS).calls
    for call in calls:
        if call.name == "answer":
            return str(call.arguments.get("letter", "")).strip() or None
    return None


def query_of(text: str) -> int:
    """The query index a question names ("item Q<q>?")."""
    found = _ITEM.search(text)
    if found is None:
        raise ValueError(f"no 'item Q<number>?' in the question {text[:80]!r}; the quiz writes questions that way")
    return int(found.group(1))


def render_message(role: Role, letter: str) -> str:
    """A member's message: ``role.words − 1`` words of reasoning, then ``<answer>LETTER</answer>``."""
    reasoning = f"{role.name} reasoning".split()
    filler = [reasoning[i % 2] if i < 2 else f"w{i}" for i in range(role.words - 1)]
    return " ".join([*filler, f"<answer>{letter}</answer>"])


class QuizMember(Policy):
    """One scripted member (module docstring): reads question and inbox, answers by its role's rule."""

    def __init__(self, quiz: CodeQuiz, index: int) -> None:
        self.quiz = quiz
        self.index = index
        self.role = ROLES[index]
        self.name = f"quiz-{self.role.name}"

    def answer(self, query: int, round_: int, draw: int, inbox_answers: list[str]) -> str:
        quiz, role = self.quiz, self.role
        if self.index == ADVERSARY:
            return quiz.adversary_answer(query)
        if self.index == REDUNDANT:
            return quiz.draw(query, EXPERT, round_, draw, ROLES[EXPERT].skill)
        if self.index == AGGREGATOR and inbox_answers:
            ranked = plurality(inbox_answers)
            if draw < len(ranked):
                return ranked[draw]
        return quiz.draw(query, self.index, round_, draw, role.skill)

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        rewrite = str(messages[-1].get("content", "")).startswith("[auditor]")
        inbox_text = str(messages[-2 if rewrite else -1].get("content", ""))
        found = _ROUND.search(inbox_text)
        if found is None:
            raise ValueError("a quiz member needs the team's inbox message ('[team round R of T] ...') last")
        question = next(str(m["content"]) for m in messages if m.get("role") == "user")
        answers = [a for m in parse_inbox(inbox_text) if (a := answer_of(m.text)) is not None]
        letter = self.answer(query_of(question), int(found.group(1)) - 1, int(rewrite), answers)
        return Action(text=render_message(self.role, letter))


def plurality(answers: list[str]) -> list[str]:
    """The distinct answers by count, most first (ties: the first seen first)."""
    counts = Counter(answers)
    first = {a: i for i, a in reversed(list(enumerate(answers)))}
    return sorted(counts, key=lambda a: (-counts[a], first[a]))


def team_config(rounds: int) -> TeamConfig:
    return TeamConfig(
        name=f"quiz-team-T{rounds}",
        rounds=rounds,
        agents=[MemberConfig(name=r.name, policy="scripted", prompt=r.prompt, votes=r.votes) for r in ROLES],
        decision=DecisionConfig(kind="majority"),
    )


def quiz_firewall(quiz: CodeQuiz, seed: int) -> AuditingFirewall:
    """AgentDropoutV2's firewall with a scripted auditor of known rates: a message is flawed iff its answer is wrong."""

    def is_flawed(draft: TeamMessage, context: AuditContext) -> bool:
        return not quiz.is_right(query_of(context.task), draft.text)

    auditor = ScriptedAuditor(is_flawed, AUDITOR_TPR, AUDITOR_FPR, np.random.default_rng([seed, 31]))
    return AuditingFirewall(INDICATORS, auditor)


INDICATORS = IndicatorPool(
    [
        Indicator(
            "Answer taken from the loudest teammate without checking the item's code",
            "When the question asks which option is the code of an item and teammates disagree",
            "Check the chosen option against what is known of the item's code, not the length of the argument.",
        ),
        Indicator(
            "Guessed option presented as certain",
            "When the agent's output names an option letter without support for the item's code",
            "Say which option is the code only when the item's code supports it.",
        ),
        Indicator(
            "Arithmetic slip in a multi-step calculation",
            "When the problem involves several arithmetic steps",
            "Recompute each step.",
        ),
    ]
)
"""A small pool of the kind AgentDropoutV2 mines offline (two indicators apply to the quiz, one does not)."""


def quiz_team(quiz: CodeQuiz, rounds: int, firewall: MessageFirewall | None = None) -> TeamPolicy:
    """The real :class:`TeamPolicy` of the five scripted members for ``quiz``."""
    members = [QuizMember(quiz, i) for i in range(len(ROLES))]
    return TeamPolicy(team_config(rounds), members, firewall=firewall)


@dataclass(frozen=True)
class Played:
    """One query played on one graph: the score, the tokens and calls it cost, the graph."""

    query: int
    graph: TeamGraph
    utility: float
    prompt_tokens: int
    completion_tokens: int
    calls: int


class QuizPlayer:
    """The trainer's ``play(graph, query)``: the real team on ``graph``, scored by the quiz; keeps every play."""

    def __init__(self, quiz: CodeQuiz, team: TeamPolicy) -> None:
        self.quiz = quiz
        self.team = team
        self.played: dict[int, Played] = {}

    async def play(self, graph: TeamGraph, query: int) -> PlayResult:
        action = await self.team.with_graph(graph).act(self.quiz.messages(query), [ANSWER_TOOL], seed=query)
        tokens = (action.trace or {})["tokens"]
        utility = float(self.quiz.is_right(query, action.env_action()))
        self.played[query] = Played(query, graph, utility, tokens["prompt"], tokens["completion"], tokens["calls"])
        return PlayResult(utility, tokens["prompt"], tokens["completion"])
