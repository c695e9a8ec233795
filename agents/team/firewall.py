"""The AgentDropoutV2 message firewall: audit each team message, have flawed ones rewritten, hide the rest.

AgentDropoutV2 (Wang et al. 2026, arXiv 2602.23258, "rectify-or-reject pruning"; the authors'
code, TonySY2/AgentDropoutV2, ``test/AgentDropout/agents/supervisor_reasoning_pick_metric.py``)
intercepts every agent output before the others see it. For a draft ``m`` of member ``a``:

1. retrieve the indicators ``I = retrieve(task + m, k)`` from the pool
   (:class:`~horizongym.agents.team.indicators.IndicatorPool`, BM25 over trigger conditions);
2. ask the auditor whether ``m`` commits one of the errors in ``I``: PASS or FLAG with feedback;
3. on FLAG, have ``a`` rewrite ``m`` with the feedback (rectify) and audit the rewrite, at most
   ``K`` rewrites (``K = 3``);
4. a message still flagged after ``K`` rewrites is hidden from later agents and the decision
   node (reject). So a message always flagged costs ``K + 1`` audits and ``K`` rewrites.

The calling side (hiding, and rerunning a team turn without the firewall when at most one of its
messages survives) belongs to the team policy; this module screens one draft.

Auditors (the :class:`Auditor` protocol): :class:`PolicyAuditor` prompts any :class:`Policy`
with the task, the draft and the indicators and reads ``<verdict>PASS</verdict>`` or
``<verdict>FLAG</verdict><feedback>…</feedback>`` (an unparsable reply counts as PASS, noted in
the audit record); :class:`ScriptedAuditor` knows the truth (``is_flawed``) and flags a flawed
draft with probability ``true_positive_rate`` and a sound one with ``false_positive_rate``, for
controlled experiments.

Auditor cost: the lengths of the auditor call's ``prompt_token_ids`` / ``token_ids`` when its
policy returns them, else whitespace words of the prompt and the reply (``len(text.split())``,
as the team's token accounts charge scripted and HTTP members). The scripted auditor is charged
the words of the prompt a :class:`PolicyAuditor` would have been sent and of its verdict.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from horizongym.agents.base import Message, Policy
from horizongym.agents.team.accounting import count_tokens
from horizongym.agents.team.indicators import Indicator, IndicatorPool
from horizongym.agents.team.messages import AuditContext, Screened, TeamMessage

DEFAULT_MAX_REWRITES = 3
DEFAULT_INDICATORS = 5

Rewrite = Callable[[str], Awaitable[TeamMessage]]


@dataclass(frozen=True, slots=True)
class Verdict:
    """An auditor's answer on one draft and what the audit cost."""

    flagged: bool
    feedback: str
    prompt_tokens: int
    completion_tokens: int
    note: str | None = None
    """Anything odd about the reply (an unparsable one counted as PASS)."""


class Auditor(Protocol):
    """Judges one draft against the retrieved indicators."""

    async def audit(self, draft: TeamMessage, context: AuditContext, indicators: Sequence[Indicator]) -> Verdict: ...


# ----- the firewall ------------------------------------------------------------------------------


class AuditingFirewall:
    """The :class:`MessageFirewall` of AgentDropoutV2 (module docstring): retrieve, audit, rewrite, hide."""

    def __init__(
        self,
        pool: IndicatorPool,
        auditor: Auditor,
        *,
        max_rewrites: int = DEFAULT_MAX_REWRITES,
        indicators_per_audit: int = DEFAULT_INDICATORS,
        require_indicators: bool = False,
    ) -> None:
        """``require_indicators``: pass a draft unaudited (and free) when no indicator matches it, rather
        than audit it against none (the auditor's general judgement)."""
        if max_rewrites < 0:
            raise ValueError(f"max_rewrites must be >= 0, not {max_rewrites}")
        if indicators_per_audit < 0:
            raise ValueError(f"indicators_per_audit must be >= 0, not {indicators_per_audit}")
        self.pool = pool
        self.auditor = auditor
        self.max_rewrites = max_rewrites
        self.indicators_per_audit = indicators_per_audit
        self.require_indicators = require_indicators

    async def screen(self, draft: TeamMessage, context: AuditContext, rewrite: Rewrite) -> Screened:
        audits: list[dict[str, Any]] = []
        prompt_tokens = completion_tokens = 0
        message = draft
        for attempt in range(self.max_rewrites + 1):
            indicators = self.pool.retrieve(f"{context.task}\n{message.text}", self.indicators_per_audit)
            if not indicators and self.require_indicators:
                audits.append({"attempt": attempt, "verdict": "PASS", "indicators": [], "note": "no indicator matched"})
                return Screened(message, False, audits, prompt_tokens, completion_tokens)
            verdict = await self.auditor.audit(message, context, indicators)
            prompt_tokens += verdict.prompt_tokens
            completion_tokens += verdict.completion_tokens
            record: dict[str, Any] = {
                "attempt": attempt,
                "verdict": "FLAG" if verdict.flagged else "PASS",
                "indicators": [indicator.pattern for indicator in indicators],
                "prompt_tokens": verdict.prompt_tokens,
                "completion_tokens": verdict.completion_tokens,
            }
            if verdict.flagged:
                record["feedback"] = verdict.feedback
            if verdict.note:
                record["note"] = verdict.note
            if attempt:
                record["text"] = message.text  # the rewrite audited (the first draft is the member's message)
            audits.append(record)
            if not verdict.flagged:
                return Screened(message, False, audits, prompt_tokens, completion_tokens)
            if attempt == self.max_rewrites:
                break
            message = await rewrite(verdict.feedback)
        return Screened(message, True, audits, prompt_tokens, completion_tokens)


# ----- auditors ----------------------------------------------------------------------------------


AUDITOR_SYSTEM = """You audit one message of a team member before the rest of the team reads it.
Assume the message is sound unless you find a clear, fatal error that changes the answer; style,
length and alternative methods are not errors. Use the error indicators as a checklist: an
indicator that does not apply to this task is ignored. If you flag, your feedback must say
concretely what is wrong and how to fix it."""

AUDITOR_PROMPT = """Task:
{task}

Message of {agent} (round {round}):
{draft}

Error indicators:
{indicators}

Reply with <verdict>PASS</verdict> if the message is sound, or
<verdict>FLAG</verdict><feedback>what is wrong and how to fix it</feedback> if it is not."""


def render_indicators(indicators: Sequence[Indicator]) -> str:
    """The indicators as a numbered checklist for the auditor's prompt."""
    if not indicators:
        return "(none matched: judge the message on its own)"
    return "\n".join(
        f"{i}. {ind.pattern}\n   Applies: {ind.trigger}\n   Check: {ind.advice}" for i, ind in enumerate(indicators, 1)
    )


def auditor_messages(draft: TeamMessage, context: AuditContext, indicators: Sequence[Indicator]) -> list[Message]:
    """The auditor call's conversation: the instructions, then the task, the draft and the indicators."""
    user = AUDITOR_PROMPT.format(
        task=context.task,
        agent=draft.agent,
        round=draft.round,
        draft=draft.text,
        indicators=render_indicators(indicators),
    )
    return [{"role": "system", "content": AUDITOR_SYSTEM}, {"role": "user", "content": user}]


_VERDICT = r"<verdict>\s*(PASS|FLAG)\s*</verdict>"
_FEEDBACK = r"<feedback>(.*?)</feedback>"


def parse_verdict(reply: str, indicators: Sequence[Indicator] = ()) -> tuple[bool, str, str | None]:
    """(flagged, feedback, note) of an auditor's reply.

    A reply without a verdict tag is a PASS with a note. A FLAG without feedback gets the
    retrieved indicators' advice as its feedback, noted."""
    verdict = re.search(_VERDICT, reply, re.IGNORECASE)
    if verdict is None:
        return False, "", "unparsable auditor reply: counted as PASS"
    if verdict.group(1).upper() == "PASS":
        return False, "", None
    feedback = re.search(_FEEDBACK, reply, re.IGNORECASE | re.DOTALL)
    if feedback is not None and feedback.group(1).strip():
        return True, feedback.group(1).strip(), None
    advice = " ".join(indicator.advice for indicator in indicators) or "Check your message for errors."
    return True, advice, "FLAG without feedback: the indicators' advice given instead"


class PolicyAuditor:
    """An :class:`Auditor` that asks any :class:`Policy` (module docstring for the reply form and cost)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    async def audit(self, draft: TeamMessage, context: AuditContext, indicators: Sequence[Indicator]) -> Verdict:
        messages = auditor_messages(draft, context, indicators)
        action = await self.policy.act(messages, [])
        flagged, feedback, note = parse_verdict(action.text, indicators)
        if action.prompt_token_ids is not None:
            prompt_tokens = len(action.prompt_token_ids)
        else:
            prompt_tokens = sum(count_tokens(str(m["content"])) for m in messages)
        completion_tokens = len(action.token_ids) if action.token_ids is not None else count_tokens(action.text)
        return Verdict(flagged, feedback, prompt_tokens, completion_tokens, note)


class ScriptedAuditor:
    """An :class:`Auditor` of known error rates: a draft ``is_flawed`` says is flawed is flagged with
    probability ``true_positive_rate``, any other with ``false_positive_rate`` (one ``rng`` draw per audit)."""

    def __init__(
        self,
        is_flawed: Callable[[TeamMessage, AuditContext], bool],
        true_positive_rate: float,
        false_positive_rate: float,
        rng: np.random.Generator,
        *,
        feedback: str = "Your message contains an error; check it against the task and correct it.",
    ) -> None:
        for name, rate in (("true_positive_rate", true_positive_rate), ("false_positive_rate", false_positive_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], not {rate}")
        self.is_flawed = is_flawed
        self.true_positive_rate = true_positive_rate
        self.false_positive_rate = false_positive_rate
        self.rng = rng
        self.feedback = feedback

    async def audit(self, draft: TeamMessage, context: AuditContext, indicators: Sequence[Indicator]) -> Verdict:
        rate = self.true_positive_rate if self.is_flawed(draft, context) else self.false_positive_rate
        flagged = bool(self.rng.random() < rate)
        reply = f"<verdict>FLAG</verdict><feedback>{self.feedback}</feedback>" if flagged else "<verdict>PASS</verdict>"
        prompt_tokens = sum(count_tokens(str(m["content"])) for m in auditor_messages(draft, context, indicators))
        return Verdict(flagged, self.feedback if flagged else "", prompt_tokens, count_tokens(reply))
