"""The indicator pool of AgentDropoutV2: generalised error patterns mined from failed team episodes.

AgentDropoutV2 (Wang et al. 2026, "Optimizing Information Flow in Multi-Agent Systems via
Test-Time Rectify-or-Reject Pruning", arXiv 2602.23258; the authors' code, TonySY2/AgentDropoutV2,
``train/AgentDropout/agents/supervisor.py`` and ``train/Extraction-deduplication-embedding.py``)
builds its pool offline: for every message of a team episode that ended wrong, a teacher model
writes one generalised error pattern per flaw: a name and definition, a *trigger condition*
("When the problem involves ..." / "When the agent's output shows ...") and a *risk alert*
("Attention! Check if ..."). At test time the supervisor retrieves the indicators whose trigger
conditions match the message it audits. Here an :class:`Indicator` holds the ``pattern`` (the
error, generalised), the ``trigger`` (when it applies), the ``advice`` (what to check) and the
``source`` (which episode, turn and agent it came from).

Deduplication (:meth:`IndicatorPool.add`). The authors embed each definition, take the pool's
nearest ones (cosine ≥ 0.65) and ask an LLM whether the new one names the same error. Here, with
no embedding model or judge: a new indicator is a duplicate when its pattern's normalised text
(lower case, runs of non-word characters as one space) equals a pooled one's, or when the token
overlap of the two patterns, the Jaccard similarity

    J(a, b) = |tokens(a) ∩ tokens(b)| / |tokens(a) ∪ tokens(b)|

over the sets of :func:`horizongym.envs.search.tokenize.tokenize` tokens (stopwords dropped),
reaches ``similarity_threshold`` (0.7 by default). The first of two duplicates is kept.

Retrieval (:meth:`IndicatorPool.retrieve`). The authors embed the trigger conditions and the
query (an LLM's keywords of the task and the output) and take the top ``k`` by cosine. Here:
Okapi BM25 (:mod:`horizongym.envs.search.bm25`, k1 = 1.5, b = 0.75, Lucene's idf) over the
trigger conditions, one document per indicator, queried with the text given (the firewall gives
the task and the draft). Only indicators sharing a query term are returned, best first, ties to
the one pooled first.

Building (:func:`build_pool`). An episode failed when ``success is False`` or its total reward is
below ``reward_below``; every member message in its steps' team traces (``policy_trace["rounds"]``)
goes to an :class:`IndicatorExtractor`, which returns one indicator for a flawed message and
``None`` for a sound one. :class:`PolicyExtractor` asks any :class:`Policy` (the authors' teacher
prompt, shortened); tests use a scripted extractor.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from horizongym.agents.base import Message, Policy
from horizongym.agents.team.messages import TeamMessage
from horizongym.envs.search.bm25 import BM25Index, build_index
from horizongym.envs.search.corpus import Corpus, write_corpus
from horizongym.envs.search.tokenize import tokenize
from horizongym.envs.search.types import Document

POOL_FORMAT = "horizongym-indicator-pool-v1"
DEFAULT_SIMILARITY = 0.7
_NON_WORD = re.compile(r"\W+")


@dataclass(frozen=True, slots=True)
class Indicator:
    """One generalised error pattern: what goes wrong, when it applies, what to check, where it came from."""

    pattern: str
    trigger: str
    advice: str
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("pattern", "trigger", "advice"):
            if not getattr(self, name).strip():
                raise ValueError(f"an indicator needs a non-empty {name}")

    def to_dict(self) -> dict[str, str]:
        return {"pattern": self.pattern, "trigger": self.trigger, "advice": self.advice, "source": self.source}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Indicator:
        missing = [key for key in ("pattern", "trigger", "advice") if not isinstance(data.get(key), str)]
        if missing:
            raise ValueError(f"an indicator needs the strings {', '.join(missing)}")
        return cls(data["pattern"], data["trigger"], data["advice"], str(data.get("source", "")))


def normalise(text: str) -> str:
    """Lower case, every run of non-word characters as one space, stripped: the text compared for equality."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def token_overlap(a: str, b: str) -> float:
    """The Jaccard similarity of the two texts' token sets (0 when both have none)."""
    left, right = set(tokenize(a)), set(tokenize(b))
    union = left | right
    return len(left & right) / len(union) if union else 0.0


class IndicatorPool:
    """Deduplicated indicators, retrieved by BM25 over their trigger conditions (module docstring)."""

    def __init__(self, indicators: Iterable[Indicator] = (), *, similarity_threshold: float = DEFAULT_SIMILARITY):
        if not 0.0 < similarity_threshold <= 1.0:
            raise ValueError(f"similarity_threshold must be in (0, 1], not {similarity_threshold}")
        self.similarity_threshold = similarity_threshold
        self._indicators: list[Indicator] = []
        self._index: BM25Index | None = None
        for indicator in indicators:
            self.add(indicator)

    def __len__(self) -> int:
        return len(self._indicators)

    def __iter__(self) -> Iterator[Indicator]:
        return iter(self._indicators)

    def duplicate_of(self, indicator: Indicator) -> Indicator | None:
        """The pooled indicator ``indicator`` duplicates (same normalised pattern, or overlap ≥ threshold)."""
        key = normalise(indicator.pattern)
        for pooled in self._indicators:
            if normalise(pooled.pattern) == key:
                return pooled
        for pooled in self._indicators:
            if token_overlap(pooled.pattern, indicator.pattern) >= self.similarity_threshold:
                return pooled
        return None

    def add(self, indicator: Indicator) -> bool:
        """Pool ``indicator`` unless it duplicates one already pooled; whether it was added."""
        if self.duplicate_of(indicator) is not None:
            return False
        self._indicators.append(indicator)
        self._index = None
        return True

    def retrieve(self, text: str, k: int) -> list[Indicator]:
        """The (at most) ``k`` indicators whose triggers best match ``text`` by BM25, best first."""
        tokens = tokenize(text)
        if k <= 0 or not tokens or not self._indicators:
            return []
        rows, _ = self._trigger_index().top_k(tokens, k)
        return [self._indicators[row] for row in rows.tolist()]

    def _trigger_index(self) -> BM25Index:
        """The BM25 index of the triggers, built (in a temporary folder, read into memory) when the pool changed."""
        if self._index is None:
            with tempfile.TemporaryDirectory(prefix="indicator-pool-") as tmp:
                corpus_dir, index_dir = Path(tmp, "corpus"), Path(tmp, "index")
                corpus_dir.mkdir()
                index_dir.mkdir()
                documents = (Document(str(row), "", ind.trigger) for row, ind in enumerate(self._indicators))
                write_corpus(documents, corpus_dir)
                build_index(Corpus(corpus_dir), index_dir)
                self._index = BM25Index.load(index_dir, mmap=False)
        return self._index

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": POOL_FORMAT,
            "similarity_threshold": self.similarity_threshold,
            "indicators": [indicator.to_dict() for indicator in self._indicators],
        }

    def save(self, path: Path | str) -> None:
        """Write the pool as JSON (atomically: a temp file renamed over ``path``)."""
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path | str) -> IndicatorPool:
        """Read a pool :meth:`save` wrote; ``ValueError`` (one line, with the fix) on anything else."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format") != POOL_FORMAT:
                raise ValueError(f"not a {POOL_FORMAT} file")
            pool = cls(similarity_threshold=float(data.get("similarity_threshold", DEFAULT_SIMILARITY)))
            for item in data["indicators"]:
                pool._indicators.append(Indicator.from_dict(item))  # as saved: no second deduplication
            return pool
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"cannot read the indicator pool {path}: {exc}; write one with 'horizongym team-indicators'"
            ) from None


# ----- building a pool from failed episodes ------------------------------------------------------


class IndicatorExtractor(Protocol):
    """Turns one message of a failed episode into a generalised error pattern, or ``None`` if it is sound."""

    async def extract(self, task: str, message: TeamMessage, outcome: str) -> Indicator | None: ...


class StepLike(Protocol):
    """What :func:`build_pool` reads of a stored step (``horizongym.training.rollouts.Step``)."""

    @property
    def turn(self) -> int: ...
    @property
    def action(self) -> str: ...
    @property
    def policy_trace(self) -> dict[str, Any] | None: ...


class EpisodeLike(Protocol):
    """What :func:`build_pool` reads of a stored episode (``horizongym.training.rollouts.Episode``)."""

    @property
    def env_id(self) -> str: ...
    @property
    def seed(self) -> int: ...
    @property
    def sample(self) -> int: ...
    @property
    def messages(self) -> list[dict[str, Any]]: ...
    @property
    def steps(self) -> Sequence[StepLike]: ...
    @property
    def success(self) -> bool | None: ...
    @property
    def total_reward(self) -> float: ...


def is_failed(episode: EpisodeLike, reward_below: float | None = None) -> bool:
    """``success is False``, or (with ``reward_below``) a total reward below it."""
    return episode.success is False or (reward_below is not None and episode.total_reward < reward_below)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def step_tasks(messages: Sequence[Message]) -> list[str]:
    """Per assistant message of a transcript (one per step), the last user message's text before it."""
    tasks: list[str] = []
    last_user = ""
    for message in messages:
        if message.get("role") == "user":
            last_user = _text(message.get("content"))
        elif message.get("role") == "assistant":
            tasks.append(last_user)
    return tasks


def team_messages(episode: EpisodeLike) -> Iterator[tuple[StepLike, TeamMessage]]:
    """Every member message of the episode's team traces, step by step, round by round, in speaking order.

    Their token counts are not in the trace line by line, so the messages carry 0 for both."""
    for step in episode.steps:
        trace = step.policy_trace
        if not trace or "team" not in trace:
            continue
        for round_lines in trace.get("rounds", []):
            for line in round_lines:
                yield step, TeamMessage(str(line["agent"]), int(line["round"]), str(line["text"]), 0, 0)


def has_team_traces(episode: EpisodeLike) -> bool:
    return any(True for _ in team_messages(episode))


def describe_outcome(episode: EpisodeLike, step: StepLike) -> str:
    """The words an extractor reads about how the episode ended and what the team did at this step."""
    return (
        f"The team's episode failed (success: {episode.success}, total reward {episode.total_reward:g}). "
        f"The team's action at turn {step.turn} was:\n{step.action}"
    )


async def build_pool(
    episodes: Iterable[EpisodeLike],
    extractor: IndicatorExtractor,
    *,
    reward_below: float | None = None,
    pool: IndicatorPool | None = None,
    concurrency: int = 8,
) -> IndicatorPool:
    """The pool of the failed episodes' flawed messages (module docstring): ``extractor`` runs on every
    member message of every failed episode, up to ``concurrency`` calls at once; the indicators are
    added (deduplicated) in episode, step, round and speaking order. An indicator whose ``source``
    is empty gets ``ENV seed S sample N turn T AGENT round R``."""
    pool = pool if pool is not None else IndicatorPool()
    jobs: list[tuple[str, TeamMessage, str, str]] = []
    for episode in episodes:
        if not is_failed(episode, reward_below):
            continue
        tasks = step_tasks(episode.messages)
        for step, message in team_messages(episode):
            task = tasks[step.turn - 1] if 0 < step.turn <= len(tasks) else (tasks[0] if tasks else "")
            where = (
                f"{episode.env_id} seed {episode.seed} sample {episode.sample} turn {step.turn} "
                f"{message.agent} round {message.round}"
            )
            jobs.append((task, message, describe_outcome(episode, step), where))
    gate = asyncio.Semaphore(max(1, concurrency))

    async def run(task: str, message: TeamMessage, outcome: str) -> Indicator | None:
        async with gate:
            return await extractor.extract(task, message, outcome)

    found = await asyncio.gather(*(run(task, message, outcome) for task, message, outcome, _ in jobs))
    for indicator, (_, _, _, where) in zip(found, jobs, strict=True):
        if indicator is not None:
            pool.add(indicator if indicator.source else replace(indicator, source=where))
    return pool


EXTRACTOR_PROMPT = """An agent team attempted a task and failed. You audit one team member's message.

Task:
{task}

Outcome:
{outcome}

Message of {agent} (round {round}):
{message}

If this message has no error that contributed to the failure, reply NO_ERROR.
Otherwise describe its main error as a pattern that generalises to similar tasks, in exactly this form:
<pattern>the error, defined in general terms</pattern>
<trigger>When the task involves ... (or: When the agent's message shows ...)</trigger>
<advice>Attention! Check if ...</advice>"""


def _tag(name: str, text: str) -> str | None:
    match = re.search(rf"<{name}>(.*?)</{name}>", text, re.DOTALL | re.IGNORECASE)
    return match.group(1).strip() if match and match.group(1).strip() else None


def parse_indicator(reply: str) -> Indicator | None:
    """The indicator in an extractor's reply (the three tags), or ``None`` (NO_ERROR, or a tag missing)."""
    pattern, trigger, advice = _tag("pattern", reply), _tag("trigger", reply), _tag("advice", reply)
    if pattern is None or trigger is None or advice is None:
        return None
    return Indicator(pattern, trigger, advice)


class PolicyExtractor:
    """An :class:`IndicatorExtractor` that prompts any :class:`Policy` to generalise the message's error
    (the authors' teacher prompt, shortened: one error, three tagged fields); a reply without the
    three tags counts as no indicator, and :attr:`unparsed` counts those replies."""

    def __init__(self, policy: Policy, *, prompt: str = EXTRACTOR_PROMPT) -> None:
        self.policy = policy
        self.prompt = prompt
        self.unparsed = 0

    async def extract(self, task: str, message: TeamMessage, outcome: str) -> Indicator | None:
        content = self.prompt.format(
            task=task, outcome=outcome, agent=message.agent, round=message.round, message=message.text
        )
        action = await self.policy.act([{"role": "user", "content": content}], [])
        indicator = parse_indicator(action.text)
        if indicator is None and "NO_ERROR" not in action.text:
            self.unparsed += 1
        return indicator
