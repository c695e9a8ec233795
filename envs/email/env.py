"""EmailInbox-v0: answer a question about one person's mailbox with search and read tools (ART·E).

Each episode is one question about one inbox. The agent calls ``search_emails`` (keywords
and optional sender, recipient and date filters; newest first, at most 10 results),
``read_email`` (a whole email by message id) and ends with ``return_final_answer(answer,
sources)``. Every tool is scoped to the episode's inbox: an email of another inbox is never
found or read, whatever the arguments. Keywords are literal text, never query syntax.
Rewards follow ART·E (:mod:`horizongym.envs.email.rewards`); by default a malformed call
ends the episode with its ART·E value, as in ART·E (``end_on_format_error=False`` keeps going).
Every reward is a reward event (``final_answer``, ``format``, ``turn_limit``, with the facts
of the evidence gathered), so a stored episode can be rescored under other ``rewards=``
(an :class:`~horizongym.envs.email.rewards.ArtERewards` or a mapping of some of its values)
without searching or reading again.

Tasks (``tasks=``, see :mod:`horizongym.envs.tasklist` for ``split`` and ``task_order``): a spec
of :mod:`horizongym.envs.email.data` (``"synthetic"``, the default; ``"enron:PATH"``...), whose
questions ``questions=`` may replace with an ART·E file, or a list of
:class:`~horizongym.envs.email.types.EmailQuestion` with the store they ask about as ``store=``.
Splits are by inbox: all questions about one inbox are in the same split.

Forking (:mod:`horizongym.envs.snapshot`): an episode's state is its :class:`InboxEpisode` (the
question, the inbox's address, the evidence gathered so far), which a snapshot copies. The store
(a read-only SQLite database, one connection per thread) and the judge (an HTTP client that keeps
nothing between calls) belong to the env: every episode shares them and a snapshot never copies them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, ClassVar

from pydantic import Field

from horizongym.envs.email.judge import LLMJudge
from horizongym.envs.email.rewards import FORMAT_OUTCOMES, ArtERewards, Evidence, is_dont_know, matches
from horizongym.envs.email.store import EmailStore
from horizongym.envs.email.types import Email, EmailQuestion
from horizongym.envs.tasklist import TaskListEnv, split_of
from horizongym.tools import InvalidArguments, ToolCallError, tool

MAX_BODY_CHARS = 8000


@dataclass
class InboxEpisode:
    """Everything this env remembers about the running episode."""

    question: EmailQuestion
    address: str
    evidence: Evidence = field(default_factory=Evidence)


class EmailInboxEnv(TaskListEnv[EmailQuestion, InboxEpisode]):
    """Answer a question about one person's mailbox by searching and reading emails (ART·E)."""

    description = "Answer a question about one person's mailbox by searching and reading emails (ART·E)."
    max_turns = 10
    format_penalty = 0.0  # replaced by ART·E's values in on_errors
    reward_settings: ClassVar[frozenset[str] | None] = frozenset({"rewards"})

    def __init__(
        self,
        *,
        tasks: str | list[EmailQuestion] = "synthetic",
        split: str = "train",
        task_order: str = "random",
        questions: str | None = None,
        store: EmailStore | None = None,
        judge: str | None = None,
        end_on_format_error: bool = True,
        rewards: ArtERewards | Mapping[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(tasks, str):
            if store is not None:
                raise ValueError("store= goes with a list of questions; a spec brings its own store")
            from horizongym.envs.email.data import load_email_data

            dataset = load_email_data(tasks, questions)
            task_list, store = list(dataset.questions), dataset.store
        elif store is None or questions is not None:
            raise ValueError("a list of questions needs store= (the mail they ask about) and no questions= file")
        else:
            task_list = tasks
        super().__init__(tasks=task_list, split=split, task_order=task_order, **kwargs)
        self.store = store
        self.end_on_format_error = end_on_format_error
        self.rewards = _reward_values(rewards)
        self.judge = LLMJudge(judge) if judge else None

    # ----- task ------------------------------------------------------------------------
    def task_id(self, task: EmailQuestion) -> str:
        return task.id

    def task_split(self, task: EmailQuestion) -> str:
        """The data's own split, else the stable hash of the inbox (an inbox is in one split)."""
        return split_of(task.owner, task.meta.get("split"))

    def start_episode(self, task: EmailQuestion) -> tuple[InboxEpisode, str]:
        address = self.store.address_of(task.owner)
        prompt = (
            f"You are an email assistant for {address}. Answer the user's question by searching and reading "
            f"the emails in their inbox with the tools below; if a search finds nothing, try other keywords. "
            f"You have {self.max_turns} turns. Today's date is {task.query_date[:10]}. When you know the "
            "answer, call return_final_answer with the answer and the message ids of the emails that show it; "
            'if you cannot find it, answer "I don\'t know".\n'
            f"Question: {task.question}"
        )
        return InboxEpisode(task, address), prompt

    # ----- tools ---------------------------------------------------------------------------
    @tool
    def search_emails(
        self,
        keywords: list[str],
        from_addr: str | None = None,
        to_addr: str | None = None,
        sent_after: str | None = None,
        sent_before: str | None = None,
        max_results: Annotated[int, Field(ge=1, le=10)] = 10,
    ) -> str:
        """Search the inbox for emails containing all the keywords, newest first.

        Args:
            keywords: words that must all appear in the subject or body (literal text).
            from_addr: only emails sent by this address.
            to_addr: only emails sent to (or copied to) this address.
            sent_after: only emails sent on or after this date (YYYY-MM-DD).
            sent_before: only emails sent before this date (YYYY-MM-DD).
            max_results: how many results to return, at most 10.
        """
        episode = self.episode
        try:
            hits = self.store.search(
                episode.question.owner,
                keywords,
                from_addr=from_addr,
                to_addr=to_addr,
                sent_after=sent_after,
                sent_before=sent_before,
                limit=max_results,
            )
        except ValueError as exc:
            raise InvalidArguments(str(exc), tool="search_emails") from None
        sources = set(episode.question.message_ids)
        if any(hit.message_id in sources for hit in hits):
            episode.evidence.found_source = True
        if not hits:
            return "No emails matched. Try fewer or different keywords, or drop a filter."
        return json.dumps(
            [
                {
                    "message_id": h.message_id,
                    "date": h.date,
                    "from": h.sender,
                    "subject": h.subject,
                    "snippet": h.snippet,
                }
                for h in hits
            ],
            ensure_ascii=False,
        )

    @tool
    def read_email(self, message_id: str) -> str:
        """Read a whole email of the inbox by its message id.

        Args:
            message_id: the message_id of a search result.
        """
        episode = self.episode
        email = self.store.read(episode.question.owner, message_id.strip())
        if email is None:
            episode.evidence.read_invalid = True
            return f"No email with id {message_id.strip()!r} in this inbox. Use a message_id from search_emails."
        if email.message_id in episode.question.message_ids:
            episode.evidence.read_source = True
        return _render(email)

    @tool
    def return_final_answer(self, answer: str, sources: list[str]) -> str:
        """Give the final answer and the message ids of the emails it comes from; ends the episode.

        Args:
            answer: the answer, or "I don't know".
            sources: message ids of the emails that show the answer.
        """
        episode = self.episode
        question = episode.question
        cited = {s.strip() for s in sources}
        facts = {
            "cited_source": bool(cited & set(question.message_ids)),
            "cited_all_sources": set(question.message_ids) <= cited,
            "turn": self.state.turn,
            "max_turns": self.max_turns,
            **asdict(episode.evidence),
        }
        if is_dont_know(answer):
            self.score("final_answer", answer="dont_know", **facts)
            self.end_episode(success=False)
            return "Answer recorded: you did not know."
        correct = self._correct(question, answer)
        self.score("final_answer", answer="correct" if correct else "wrong", **facts)
        self.end_episode(success=correct)
        return "Correct." if correct else "Answer recorded."

    # ----- outcomes --------------------------------------------------------------------
    def on_errors(self, errors: list[ToolCallError]) -> None:
        outcome = next((FORMAT_OUTCOMES[e.kind] for e in errors if e.kind in FORMAT_OUTCOMES), None)
        if outcome is None or self.state.terminated:
            return  # a failing tool is not the agent's fault
        self.score("format", outcome=outcome, ends=self.end_on_format_error, **asdict(self.episode.evidence))
        if self.end_on_format_error:
            self.end_episode(success=False)

    def on_turn_limit(self) -> None:
        self.score("turn_limit", **asdict(self.episode.evidence))

    def event_rewards(self, event: Mapping[str, Any]) -> dict[str, float]:
        """ART·E's value of each reward event under ``rewards`` (see :mod:`horizongym.envs.email.rewards`).

        ``final_answer`` (``answer``: correct, wrong or dont_know; the sources cited; the turn);
        ``format`` (the malformed call's ``outcome``, and whether it ``ends`` the episode, which
        earns partial credit); ``turn_limit`` (no answer: "I don't know" with partial credit).
        """
        values, name = self.rewards, event["event"]
        evidence = Evidence(event["found_source"], event["read_source"], event["read_invalid"])
        if name == "final_answer":
            if event["answer"] == "correct":
                rewards = {"answer": values.correct}
                if event["cited_all_sources"]:
                    rewards["sources"] = values.sources
                rewards["efficiency"] = values.efficiency * (1 - event["turn"] / event["max_turns"])
                return rewards
            outcome = values.dont_know if event["answer"] == "dont_know" else values.wrong
            return {"answer": outcome, "partial": evidence.partial_credit(event["cited_source"], values)}
        if name == "format":
            rewards = {"format": getattr(values, event["outcome"])}
            if event["ends"]:
                rewards["partial"] = evidence.partial_credit(False, values)
            return rewards
        if name == "turn_limit":
            return {"answer": values.dont_know, "partial": evidence.partial_credit(False, values)}
        return super().event_rewards(event)

    def _correct(self, question: EmailQuestion, answer: str) -> bool:
        if self.judge is not None:
            return self.judge(question.question, question.answers[0], answer)
        return matches(answer, question.answers)

    def close(self) -> None:
        if self.judge is not None:
            self.judge.close()
        super().close()


def _reward_values(rewards: ArtERewards | Mapping[str, float] | None) -> ArtERewards:
    """``rewards`` as :class:`ArtERewards`: the values, a mapping of some of them (the rest ART·E's), or None."""
    if rewards is None or isinstance(rewards, ArtERewards):
        return rewards or ArtERewards()
    known = set(ArtERewards.__dataclass_fields__)
    unknown = sorted(set(rewards) - known)
    if unknown:
        raise ValueError(f"rewards has no value {unknown}; its values: {sorted(known)}")
    return ArtERewards(**{name: float(value) for name, value in rewards.items()})


def _render(email: Email) -> str:
    body = email.body if len(email.body) <= MAX_BODY_CHARS else email.body[:MAX_BODY_CHARS] + "\n[… cut]"
    lines = [f"Message-ID: {email.message_id}", f"Date: {email.date}", f"From: {email.sender}"]
    lines.append(f"To: {', '.join(email.to)}")
    if email.cc:
        lines.append(f"Cc: {', '.join(email.cc)}")
    lines += [f"Subject: {email.subject}", "", body]
    return "\n".join(lines)
