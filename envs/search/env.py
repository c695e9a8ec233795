"""SearchJudge-v0: search a corpus, judge every result, answer (ReSeek, arXiv 2510.00568).

Protocol. The agent may think in ``<think>…</think>``; ``<search>query</search>`` returns the
top-k documents as ``<information>Doc 1(Title: t) text …</information>``; right after, it
must judge that information with ``<judge>Yes</judge>`` or ``<judge>No</judge>``; it ends the
episode with ``<answer>…</answer>``. The same actions are tools (``search``, ``judge``,
``answer``) for native tool calling. A search ends the turn (calls after it in the same
action are ignored: the agent has not read the results yet). Information judged ``No`` is
replaced in the agent's context by a short note when ``drop_rejected`` (the paper's
semantics; the rollout engine applies it).

Rewards (components of ``info["reward_components"]``): ``answer`` (EM by default, or F1, or
``chars``, a character-level partial credit for training, against every accepted answer of the
task, times ``answer_weight``; ``success`` is always the EM), ``judge`` (see
:mod:`horizongym.envs.search.rewards`, times ``judge_weight``; information is useful when it
holds a gold document, or, for tasks that name none such as Search-R1's, an accepted answer)
and ``format`` (the base class's penalty for an invalid action). With
``validation=True`` the reward is the answer's EM alone. Every reward is a reward event
(``judge`` with ``verdict`` and ``useful``, ``missing_judgment``, ``answer`` with ``em``, ``f1``,
``chars`` and ``useful_yes``, ``format``), so a stored episode can be rescored under other
:attr:`~SearchJudgeEnv.reward_settings` without searching again.

Tasks (``tasks=``, see :mod:`horizongym.envs.tasklist` for ``split`` and ``task_order``): a spec
of :mod:`horizongym.envs.search.data` (``"fictional"``, the default; ``"hotpotqa:PATH"``,
``"2wiki:PATH"``, ``"musique:PATH"``, ``"searchr1:QUESTIONS:CORPUS"``...), whose
retriever is ``retriever=``, or a list of :class:`~horizongym.envs.search.types.QATask` with the
retriever over their documents as ``search_backend=``.

Forking (:mod:`horizongym.envs.snapshot`): an episode's state is its :class:`SearchEpisode` (the
searches, their judgments, the one awaiting judgment, the answer), which a snapshot copies. The
retriever (an index read from disk, or a client of a retrieval server) belongs to the env: every
episode shares it, tools only read it, and a snapshot never copies it.

``instructions=False`` leaves the protocol paragraph out of the first message, which is then
the ``Question: …`` line alone: for a policy that has already learned the protocol (a tiny
model trained on it reads ~560 bytes less per round, and learns nothing from them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, get_args

from horizongym.envs.search.rewards import (
    JUDGE_REWARD_SETS,
    AnswerMetric,
    JudgeRewards,
    answer_bonus,
    answer_in_text,
    char_similarity,
    exact_match,
    f1_score,
    judgment_reward,
)
from horizongym.envs.search.types import Hit, QATask, Retriever
from horizongym.envs.tasklist import TaskListEnv, split_of
from horizongym.tools import NoToolCall, ToolCallError, tool

MAX_QUERY_CHARS = 1000
REJECTED_NOTE = "[Information judged not useful; removed from the context.]"


class ProtocolError(ToolCallError):
    """An action the search protocol does not allow at this point (judge without a search...)."""

    kind = "protocol_error"


@dataclass
class Retrieval:
    """One search of the episode and its judgment."""

    query: str
    doc_ids: tuple[str, ...]
    useful: bool
    verdict: bool | None = None


@dataclass
class SearchEpisode:
    """Everything this env remembers about the running episode."""

    task: QATask
    retrievals: list[Retrieval] = field(default_factory=list)
    pending: Retrieval | None = None
    answer: str | None = None


class SearchJudgeEnv(TaskListEnv[QATask, SearchEpisode]):
    """Search a corpus, judge every result (ReSeek), and answer a multi-hop question."""

    description = "Search a corpus, judge each result's usefulness (ReSeek), answer a multi-hop question."
    tool_instructions = False
    reward_settings: ClassVar[frozenset[str] | None] = frozenset(
        {"format_penalty", "answer_metric", "judge_rewards", "answer_weight", "judge_weight", "validation"}
    )

    def __init__(
        self,
        *,
        tasks: str | list[QATask] = "fictional",
        split: str = "train",
        task_order: str = "random",
        retriever: str = "bm25",
        search_backend: Retriever | None = None,
        top_k: int = 3,
        max_searches: int = 4,
        drop_rejected: bool = True,
        max_observation_chars: int = 3000,
        answer_metric: AnswerMetric = "em",
        judge_rewards: str | JudgeRewards | Mapping[str, float] = "reseek",
        answer_weight: float = 1.0,
        judge_weight: float = 1.0,
        validation: bool = False,
        instructions: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("max_turns", 2 * max_searches + 2)
        if validation:
            kwargs["format_penalty"] = 0.0
        if top_k < 1 or max_searches < 1:
            raise ValueError("top_k and max_searches must be at least 1")
        if answer_metric not in get_args(AnswerMetric):
            raise ValueError(f"answer_metric must be one of {get_args(AnswerMetric)}, got {answer_metric!r}")
        judge_values = _judge_values(judge_rewards)
        if isinstance(tasks, str):
            if search_backend is not None:
                raise ValueError("search_backend= goes with a list of tasks; a spec brings its own (see retriever=)")
            from horizongym.envs.search.data import load_search_data

            dataset = load_search_data(tasks, retriever)
            task_list, search_backend = list(dataset.tasks), dataset.retriever
        elif search_backend is None:
            raise ValueError("a list of tasks needs search_backend=, the retriever over their documents")
        else:
            task_list = tasks
        super().__init__(tasks=task_list, split=split, task_order=task_order, **kwargs)
        self.retriever = search_backend
        self.top_k, self.max_searches, self.drop_rejected = top_k, max_searches, drop_rejected
        self.max_observation_chars, self.answer_metric, self.validation = (
            max_observation_chars,
            answer_metric,
            validation,
        )
        self.judge_values = judge_values
        self.answer_weight, self.judge_weight = answer_weight, judge_weight
        self.instructions = instructions

    # ----- task ----------------------------------------------------------------------
    def task_id(self, task: QATask) -> str:
        return task.id

    def task_split(self, task: QATask) -> str:
        """The data's own split (HotpotQA's dev is test), else the stable hash of the id."""
        return split_of(task.id, task.meta.get("split"))

    def start_episode(self, task: QATask) -> tuple[SearchEpisode, str]:
        question = f"Question: {task.question}"
        if not self.instructions:
            return SearchEpisode(task=task), question
        prompt = (
            "Answer the question below. You may think inside <think> and </think> at any time. To look "
            "something up, write <search>query</search>; the top results come back inside <information> and "
            "</information>. Right after each <information>, judge whether it helps answer the question: "
            "<judge>Yes</judge> or <judge>No</judge>, before you search again or answer. You may search up to "
            f"{self.max_searches} times. When you know the answer, write only the answer inside <answer> and "
            "</answer>, for example <answer>Lisbon</answer>.\n" + question
        )
        return SearchEpisode(task=task), prompt

    def on_text(self, text: str) -> str:
        raise NoToolCall(
            "that action has no command. To search write <search>query</search>; to judge the information you "
            "just received write <judge>Yes</judge> or <judge>No</judge>; to answer write <answer>answer</answer>. "
            "Try again."
        )

    # ----- tools -----------------------------------------------------------------------
    @tool(tag=True)
    def search(self, query: str) -> str:
        """Search the corpus; the top documents come back inside <information>.

        Args:
            query: what to look for, in a few words.
        """
        episode = self.episode
        if not query.strip():
            raise ProtocolError("the query is empty. Write what to look for: <search>your query</search>.")
        if len(episode.retrievals) >= self.max_searches:
            raise ProtocolError(f"no searches left (at most {self.max_searches}). Answer with <answer>…</answer>.")
        note = self._settle_missing_judgment("search")
        if len(query) > MAX_QUERY_CHARS:
            query = query[:MAX_QUERY_CHARS]
            note += f"(Your query was cut to its first {MAX_QUERY_CHARS} characters.)\n"
        hits = self.retriever.search([query], self.top_k)[0]
        shown = self._shown(hits)
        retrieval = Retrieval(query, tuple(h.document.id for h in hits), self._useful(hits, shown))
        episode.retrievals.append(retrieval)
        episode.pending = retrieval
        self.end_turn()
        return note + "<information>" + shown + "</information>"

    @tool(tag=True)
    def judge(self, verdict: str) -> str:
        """Judge whether the information you just received helps answer the question.

        Args:
            verdict: "Yes" if it helps, "No" if it does not.
        """
        episode = self.episode
        word = verdict.strip().strip(".!").lower()
        if word not in ("yes", "no"):
            raise ProtocolError(f"judge with Yes or No, e.g. <judge>Yes</judge> (got {verdict[:40]!r}).")
        if episode.pending is None:
            raise ProtocolError("there is no information to judge. Judge right after a search's <information>.")
        retrieval, episode.pending = episode.pending, None
        retrieval.verdict = word == "yes"
        self.score("judge", verdict=retrieval.verdict, useful=retrieval.useful)
        if not retrieval.verdict and self.drop_rejected:
            self.set_info("redact_previous_observation", REJECTED_NOTE)
            return "Judged not useful: that information is removed from your context."
        return f"Judged {'useful' if retrieval.verdict else 'not useful'}."

    @tool(tag=True)
    def answer(self, answer: str) -> str:
        """Give the final answer; this ends the episode.

        Args:
            answer: the answer only, as short as possible.
        """
        episode = self.episode
        if not episode.retrievals:
            raise ProtocolError("search before you answer: <search>query</search>.")
        note = self._settle_missing_judgment("answer")
        episode.answer = answer.strip()
        answers = episode.task.answers
        em, f1 = exact_match(episode.answer, answers), f1_score(episode.answer, answers)
        useful_yes = sum(1 for r in episode.retrievals if r.verdict is True and r.useful)
        chars = char_similarity(episode.answer, answers)
        self.score("answer", em=em, f1=f1, chars=chars, useful_yes=useful_yes)
        judged = [r for r in episode.retrievals if r.verdict is not None]
        self.set_info("answer_em", em)
        self.set_info("answer_f1", f1)
        self.set_info("judge_accuracy", sum(r.verdict == r.useful for r in judged) / len(judged) if judged else None)
        self.end_episode(success=em == 1.0)
        return note + ("Correct." if em == 1.0 else "Answer recorded.")

    # ----- rewards -------------------------------------------------------------------
    def event_rewards(self, event: Mapping[str, Any]) -> dict[str, float]:
        """The value of each reward event under this env's settings (module docstring; ``validation``: EM alone)."""
        name = event["event"]
        if name == "judge":
            if self.validation:
                return {}
            return {"judge": self.judge_weight * judgment_reward(event["verdict"], event["useful"], self.judge_values)}
        if name == "missing_judgment":
            return {} if self.validation else {"judge": self.judge_weight * self.judge_values.missing}
        if name == "answer":
            if self.validation:
                return {"answer": event["em"]}
            if self.answer_metric not in event:
                raise ValueError(
                    f"this answer event has no {self.answer_metric!r} score (it was recorded before that metric "
                    "existed): rescore it with answer_metric 'em' or 'f1'"
                )
            rewards = {"answer": self.answer_weight * event[self.answer_metric]}
            bonus = answer_bonus(event["useful_yes"], event["em"] == 1.0, self.judge_values)
            if bonus:
                rewards["judge"] = self.judge_weight * bonus
            return rewards
        return super().event_rewards(event)

    # ----- helpers -------------------------------------------------------------------
    def on_turn_limit(self) -> None:
        self._settle_missing_judgment("turn limit")

    def _settle_missing_judgment(self, before: str) -> str:
        """Score an unjudged retrieval as a judgment error; return a note for the agent."""
        episode = self.episode
        if episode.pending is None:
            return ""
        episode.pending = None
        self.score("missing_judgment", before=before)
        return f"(You did not judge the last information before your {before}: counted as a judgment error.)\n"

    def _useful(self, hits: list[Hit], shown: str) -> bool:
        """The ideal judgment: a gold document came back, or (a task naming none) what was shown holds an answer."""
        task = self.episode.task
        if task.gold_doc_ids:
            gold = set(task.gold_doc_ids)
            return any(h.document.id in gold for h in hits)
        return bool(hits) and answer_in_text(shown, task.answers)

    def _shown(self, hits: list[Hit]) -> str:
        """The inside of the ``<information>`` block: each hit's title and text, cut to its share."""
        if not hits:
            return "No documents matched the query."
        budget = max(80, self.max_observation_chars // len(hits))
        lines = []
        for rank, hit in enumerate(hits, start=1):
            text = hit.document.text if len(hit.document.text) <= budget else hit.document.text[:budget] + "…"
            lines.append(f"Doc {rank}(Title: {hit.document.title}) {text}")
        return "\n".join(lines)


def _judge_values(judge_rewards: str | JudgeRewards | Mapping[str, float]) -> JudgeRewards:
    """``judge_rewards`` as values: a set's name (``reseek``, ``symmetric``), the values, or some of them by name."""
    if isinstance(judge_rewards, JudgeRewards):
        return judge_rewards
    if isinstance(judge_rewards, str):
        if judge_rewards not in JUDGE_REWARD_SETS:
            raise ValueError(
                f"judge_rewards must be one of {sorted(JUDGE_REWARD_SETS)} or a mapping, not {judge_rewards!r}"
            )
        return JUDGE_REWARD_SETS[judge_rewards]
    known = sorted(JudgeRewards.__dataclass_fields__)
    unknown = sorted(set(judge_rewards) - set(known))
    if unknown:
        raise ValueError(f"judge_rewards has no value {unknown}; its values: {known}")
    return JudgeRewards(**{name: float(value) for name, value in judge_rewards.items()})
