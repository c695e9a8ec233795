"""The Markovian workspace of IterResearch (arXiv 2511.07327), as a wrapper over any text env.

A ReAct-style agent keeps its whole history in context, which grows with every turn. In the
workspace the state of each round is only

* the question (the inner env's first observation, with its tool instructions),
* the evolving report, which the agent rewrites every round, and
* the last action and its result.

The report replaces the history, so the context stays about the same size however many
rounds pass. Each step sets ``info["fresh_context"] = True``, so the
:class:`~horizongym.training.rollouts.engine.RolloutEngine` starts a new context from the new
observation (its transcript still keeps every round).

One round of agent output: an optional ``<think>…</think>`` (discarded), the updated report,
and one action the inner env accepts (its tag actions or ``<tool_call>`` blocks)::

    <think>k0042 points to k7315; next I read k7315.</think>
    <report>Start key k0042. Followed 1 pointer. Next key: k7315.</report>
    <lookup>k7315</lookup>

The report may also come as a call of the tool ``update_report(report: str)``, which is
advertised in the round instructions and in ``info["tools"]`` (it is handled here, never
passed to the inner env)::

    <tool_call>{"name": "update_report", "arguments": {"report": "Next key: k7315."}}</tool_call>
    <tool_call>{"name": "lookup", "arguments": {"key": "k7315"}}</tool_call>

The next observation is then the question, the round format, ``Report:`` with the current
report, ``Last action:`` and ``Result:`` (the inner env's observation, cut to
``max_result_chars``). A reply without a report keeps the previous one and says so in a
note; a report longer than ``max_report_chars`` is cut, with a note. Reward, termination,
truncation and the rest of ``info`` come from the inner env unchanged, plus
``info["workspace_round"]``, ``info["report_chars"]`` and, when there are any,
``info["workspace_notes"]``. Every round is one step of the inner env: a round holding only
a report (or an unreadable action) gets the inner env's corrective observation and format
penalty, as a plain agent would. The wrapper truncates the episode after ``max_rounds``
rounds and raises the inner env's own turn limit (``TextEnv.max_turns``, and a Gymnasium
``TimeLimit``) to at least that.

Episodes in a workspace fork (:mod:`horizongym.envs.snapshot`): the wrapper's part of a snapshot
is its :class:`WorkspaceState` (question, report, round, last observation, whether the episode
ended), the inner env's part is the inner env's own.

Use it in rollouts through the engine's ``env_factory``::

    RolloutEngine("KeyChain-v0", policy, env_factory=lambda: make_workspace("KeyChain-v0"))

:func:`horizongym.bench.context.context_tokens` measures the policy's context per round, in the workspace and with
full history.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium.wrappers import TimeLimit

from horizongym.envs.base import TextEnv
from horizongym.envs.registration import make
from horizongym.tools import Tool, parse_action, render_tool_calls

REPORT_TOOL = "update_report"
REPORT_HEADER = "Report:"
LAST_ACTION_HEADER = "Last action:"
RESULT_HEADER = "Result:"
EMPTY_REPORT = "(empty)"


def update_report(report: str) -> str:
    """Replace your report (the only memory kept between rounds) with a new one.

    Args:
        report: the updated report: what is known so far and what to do next.
    """
    return report


REPORT_TOOL_SCHEMA: dict[str, Any] = Tool(update_report).schema()
"""The OpenAI function schema of ``update_report``, appended to the inner env's tool schemas."""

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_REPORT = re.compile(r"<report>(.*?)</report>", re.DOTALL)
_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)


def round_instructions(max_report_chars: int) -> str:
    """The text that explains the round format to the agent."""
    return (
        "You work in rounds. Each round you see only this question, your report, your last action and its "
        "result: earlier rounds are gone, so keep in the report everything you will need later.\n"
        "Reply each round with:\n"
        "<think>your reasoning (optional, discarded)</think>\n"
        f"<report>the updated report: what you know so far and what to do next (it replaces the old one; at most "
        f"{max_report_chars} characters)</report>\n"
        "and then exactly one action, as described above.\n"
        'Instead of <report>...</report> you may call the tool update_report: <tool_call>{"name": "update_report", '
        '"arguments": {"report": "..."}}</tool_call>.'
    )


@dataclass
class RoundReply:
    """One round's reply split into its parts."""

    report: str | None
    """The new report, or None when the reply gave none (the previous one is kept)."""
    action: str
    """What is left for the inner env: the reply less its think and report parts."""
    notes: list[str] = field(default_factory=list)
    """What went wrong in the round format, for the next observation."""


def split_round(text: str) -> RoundReply:
    """Split a round's reply into report, inner action and notes. Never raises.

    Complete ``<think>`` blocks are dropped, and so is everything before a ``</think>`` that
    has no opening tag (chat templates often open the thinking block themselves). When a reply
    gives several reports, the last ``<report>`` block is used, and ``update_report`` calls
    count after the blocks. A tag left unclosed is removed (its text goes on to the inner env,
    which ignores free text next to a call) and noted.
    """
    notes: list[str] = []
    text = _THINK.sub("", text)
    if "</think>" in text:  # the opening tag was left out (or given by the chat template): drop what precedes
        text = text.rsplit("</think>", 1)[1]
    if "<think>" in text:
        text = text.replace("<think>", "")
        notes.append("a <think> was not closed with </think>.")

    found = [match.group(1).strip() for match in _REPORT.finditer(text)]
    text = _REPORT.sub("", text)
    if "<report>" in text or "</report>" in text:
        text = text.replace("<report>", "").replace("</report>", "")
        notes.append("a <report> was not closed with </report> (or a </report> had no <report>); it was ignored.")

    text, calls = _take_report_calls(text, notes)
    found.extend(calls)
    if len(found) > 1:
        notes.append("the reply gave several reports; the last one was kept.")
    report = found[-1] if found else None
    return RoundReply(report=report, action=text.strip(), notes=notes)


def _take_report_calls(text: str, notes: list[str]) -> tuple[str, list[str]]:
    """Remove the ``update_report`` tool calls from ``text``; return the rest and the reports found."""
    found: list[str] = []
    if "<tool_call>" in text:
        kept: list[str] = []
        last = 0
        for match in _TOOL_CALL.finditer(text):
            try:
                body = json.loads(match.group(1))
            except (ValueError, RecursionError):
                continue  # the inner env reports the broken call
            if not isinstance(body, dict) or body.get("name") != REPORT_TOOL:
                continue
            kept.append(text[last : match.start()])
            last = match.end()
            report = _report_argument(body.get("arguments", body.get("parameters")), notes)
            if report is not None:
                found.append(report)
        kept.append(text[last:])
        return "".join(kept), found
    stripped = text.strip()
    if stripped[:1] in ("{", "[") and "update_report" in stripped:  # an OpenAI ``tool_calls`` structure as JSON
        parsed = parse_action(stripped)
        if any(call.name == REPORT_TOOL for call in parsed.calls) and not parsed.errors:
            for call in parsed.calls:
                if call.name == REPORT_TOOL:
                    report = _report_argument(call.arguments, notes)
                    if report is not None:
                        found.append(report)
            others = [call for call in parsed.calls if call.name != REPORT_TOOL]
            rest = render_tool_calls(others)
            return (f"{parsed.text}\n{rest}" if parsed.text else rest), found
    return text, found


def _report_argument(arguments: Any, notes: list[str]) -> str | None:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except (ValueError, RecursionError):
            arguments = None
    if isinstance(arguments, dict) and isinstance(arguments.get("report"), str):
        return str(arguments["report"]).strip()
    notes.append('the update_report call needs {"report": "<text>"}; it was ignored.')
    return None


def _cut(text: str, limit: int, what: str) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[{what} cut to {limit} characters]"


@dataclass(frozen=True)
class WorkspaceState:
    """The workspace's part of a running episode: what :meth:`MarkovianWorkspace.wrapper_state` gives a snapshot."""

    question: str
    report: str
    round: int
    observation: str
    done: bool


class MarkovianWorkspace(gym.Wrapper[str, str, str, str], gym.utils.RecordConstructorArgs):
    """Run any horizongym text env as IterResearch rounds: question + report + last action and result.

    Args:
        env: the inner env (a :class:`TextEnv`, possibly wrapped).
        max_rounds: the wrapper truncates the episode after this many rounds; the inner env's
            turn limit is raised to at least this.
        max_report_chars: a longer report is cut to this many characters (with a note).
        max_result_chars: the inner observation shown as ``Result:`` is cut to this many characters.
        max_action_chars: the action shown as ``Last action:`` is cut to this many characters.

    See the module docstring for the round format.
    """

    def __init__(
        self,
        env: gym.Env[str, str],
        *,
        max_rounds: int = 2048,
        max_report_chars: int = 2000,
        max_result_chars: int = 4000,
        max_action_chars: int = 1000,
    ) -> None:
        if min(max_rounds, max_report_chars, max_result_chars, max_action_chars) < 1:
            raise ValueError("max_rounds, max_report_chars, max_result_chars and max_action_chars must be positive")
        gym.utils.RecordConstructorArgs.__init__(
            self,
            max_rounds=max_rounds,
            max_report_chars=max_report_chars,
            max_result_chars=max_result_chars,
            max_action_chars=max_action_chars,
        )
        gym.Wrapper.__init__(self, env)
        self.max_rounds = max_rounds
        self.max_report_chars = max_report_chars
        self.max_result_chars = max_result_chars
        self.max_action_chars = max_action_chars
        self.instructions = round_instructions(max_report_chars)
        self.question = ""
        self.report = ""
        self.round = 0
        self.observation = ""
        self._done = True
        self._raise_turn_limits()

    # ----- Gymnasium API -------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        observation, info = self.env.reset(seed=seed, options=options)
        self._raise_turn_limits()  # an env may set its limit per task
        self.question = observation
        self.report = ""
        self.round = 0
        self._done = False
        self.observation = self._compose(None, None, [])
        info = dict(info)
        info["tools"] = self._tools(info)
        info["workspace_round"] = 0
        info["report_chars"] = 0
        return self.observation, info

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._done:
            raise gym.error.ResetNeeded("the episode has not started or has ended; call reset() first")
        inner_action: Any = action
        if isinstance(action, str):
            reply = split_round(action)
            inner_action = reply.action
        else:  # a structure the inner env may still read (an OpenAI tool_calls list)
            reply = RoundReply(report=None, action=json.dumps(action, default=str))
        notes = reply.notes
        if reply.report is None:
            notes.append(
                "your reply had no <report>...</report> (and no update_report call); the previous report was kept."
            )
        else:
            if len(reply.report) > self.max_report_chars:
                notes.append(
                    f"your report had {len(reply.report)} characters; it was cut to the first {self.max_report_chars}."
                )
            self.report = reply.report[: self.max_report_chars]
        self.round += 1
        result, reward, terminated, truncated, info = self.env.step(inner_action)
        info = dict(info)
        if not (terminated or truncated) and self.round >= self.max_rounds:
            truncated = True
            result += f"\n\nRound limit reached ({self.max_rounds} rounds)."
            info["termination_reason"] = "max_turns"
            info.setdefault("success", None)
        self._done = bool(terminated or truncated)
        self.observation = self._compose(reply.action, result, notes)
        info["tools"] = self._tools(info)
        info["fresh_context"] = True
        info["workspace_round"] = self.round
        info["report_chars"] = len(self.report)
        if notes:
            info["workspace_notes"] = list(notes)
        return self.observation, reward, terminated, truncated, info

    def render(self) -> str | None:
        """The current workspace observation (``ansi``), or print it (``human``)."""
        if self.render_mode == "human":
            print(self.observation)
        return self.observation if self.render_mode == "ansi" else None

    # ----- forking (horizongym.envs.snapshot) ------------------------------------------
    def wrapper_state(self) -> WorkspaceState:
        """The workspace's part of a snapshot (its settings are the constructor's, not copied)."""
        return WorkspaceState(self.question, self.report, self.round, self.observation, self._done)

    def load_wrapper_state(self, state: WorkspaceState) -> None:
        """Continue from ``state`` (of a workspace built with the same settings around the same env)."""
        if not isinstance(state, WorkspaceState):
            raise ValueError(f"not a workspace's state: a {type(state).__name__}")
        self.question, self.report, self.round = state.question, state.report, state.round
        self.observation, self._done = state.observation, state.done

    # ----- helpers ---------------------------------------------------------------------
    def _tools(self, info: dict[str, Any]) -> list[dict[str, Any]]:
        tools = [t for t in info.get("tools", []) if t.get("function", {}).get("name") != REPORT_TOOL]
        return [*tools, REPORT_TOOL_SCHEMA]

    def _raise_turn_limits(self) -> None:
        env: gym.Env[Any, Any] = self.env
        while True:
            if isinstance(env, TimeLimit) and env._max_episode_steps < self.max_rounds:
                env._max_episode_steps = self.max_rounds
            if isinstance(env, TextEnv) and env.max_turns < self.max_rounds:
                env.max_turns = self.max_rounds
            if not isinstance(env, gym.Wrapper):
                break
            env = env.env

    def _compose(self, action: str | None, result: str | None, notes: list[str]) -> str:
        report = self.report if self.report else EMPTY_REPORT
        parts = [self.question, self.instructions]
        parts.append(f"{REPORT_HEADER}\n{report}" if self.report else f"{REPORT_HEADER} {report}")
        parts.extend(f"Note: {note}" for note in notes)
        if action is not None and result is not None:
            parts.append(f"{LAST_ACTION_HEADER}\n{_cut(action, self.max_action_chars, 'action') or '(nothing)'}")
            parts.append(f"{RESULT_HEADER}\n{_cut(result, self.max_result_chars, 'result')}")
        observation = "\n\n".join(parts)
        limit = getattr(self.observation_space, "max_length", None)
        if isinstance(limit, int) and len(observation) > limit:
            note = "\n[observation cut to fit the length limit]"
            observation = observation[: limit - len(note)] + note
        return observation


def make_workspace(env_id: str, max_rounds: int = 2048, **env_kwargs: Any) -> MarkovianWorkspace:
    """Build ``env_id`` with ``horizongym.make(env_id, **env_kwargs)`` and wrap it in a workspace.

    For rollouts: ``RolloutEngine("KeyChain-v0", policy, env_factory=lambda: make_workspace("KeyChain-v0"))``.
    """
    return MarkovianWorkspace(make(env_id, **env_kwargs), max_rounds=max_rounds)
