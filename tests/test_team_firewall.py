"""The AgentDropoutV2 firewall: the indicator pool (deduplication, BM25 retrieval, building from failed
episodes), the auditing firewall (pass, rewrite, hide), its auditors, and ``horizongym team-indicators``."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from horizongym.agents.base import Action, Message, Policy
from horizongym.agents.team.accounting import count_tokens
from horizongym.agents.team.firewall import AuditingFirewall, PolicyAuditor, ScriptedAuditor, Verdict
from horizongym.agents.team.indicators import (
    Indicator,
    IndicatorPool,
    PolicyExtractor,
    build_pool,
    normalise,
    parse_indicator,
    token_overlap,
)
from horizongym.agents.team.messages import AuditContext, InboxMessage, TeamMessage
from horizongym.cli import main
from horizongym.envs.search.tokenize import tokenize
from horizongym.serverthread import ServerThread
from horizongym.training.rollouts import Episode, Step

UNITS = Indicator(
    "Converts between units with the wrong factor",
    "When the task involves converting miles kilometres units",
    "Attention! Check if the conversion factor is right.",
)
DATES = Indicator(
    "Cites a search result without checking its date",
    "When the agent's message shows a search result date date",
    "Attention! Check if the cited date answers the question.",
)
EMAIL = Indicator(
    "Replies to the wrong email thread",
    "When the task involves an inbox thread reply",
    "Attention! Check if the reply goes to the thread asked about.",
)


# ----- the pool ----------------------------------------------------------------------------------


def test_normalised_duplicates_and_overlapping_patterns_are_not_pooled() -> None:
    pool = IndicatorPool()
    assert pool.add(UNITS) and pool.add(DATES)
    # same words, other case and punctuation: the normalised texts are equal
    assert normalise("Converts between UNITS, with the wrong factor!") == normalise(UNITS.pattern)
    assert not pool.add(Indicator("Converts between UNITS, with the wrong factor!", "t", "a"))
    # tokens {converts, units, wrong, factor} vs {converts, units, wrong, factor, decimal}: J = 4/5 ≥ 0.7
    near = Indicator("Converts units with a wrong decimal factor", "t", "a")
    assert token_overlap(near.pattern, UNITS.pattern) == pytest.approx(4 / 5)
    assert pool.duplicate_of(near) is UNITS and not pool.add(near)
    # {converts, units, wrong, factor} vs {converts, currency, wrong, rate}: J = 2/6 < 0.7: a new pattern
    other = Indicator("Converts currency at the wrong rate", "t", "a")
    assert token_overlap(other.pattern, UNITS.pattern) == pytest.approx(2 / 6)
    assert pool.add(other)
    assert [i.pattern for i in pool] == [UNITS.pattern, DATES.pattern, other.pattern]
    # a stricter pool (threshold 0.3) takes the second as a duplicate too
    assert IndicatorPool([UNITS], similarity_threshold=0.3).duplicate_of(other) is UNITS
    with pytest.raises(ValueError, match="similarity_threshold"):
        IndicatorPool(similarity_threshold=0.0)
    with pytest.raises(ValueError, match="non-empty trigger"):
        Indicator("p", " ", "a")


def bm25(query: list[str], docs: list[list[str]], k1: float = 1.5, b: float = 0.75) -> list[float]:
    """Okapi BM25 with Lucene's idf, written out for the test."""
    avgdl = sum(map(len, docs)) / len(docs)
    scores = []
    for doc in docs:
        score = 0.0
        for term in query:
            df = sum(term in d for d in docs)
            tf = doc.count(term)
            idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / avgdl)) if tf else 0.0
        scores.append(score)
    return scores


def test_retrieval_ranks_triggers_by_bm25() -> None:
    pool = IndicatorPool([UNITS, DATES, EMAIL])
    # "date" occurs twice in DATES' trigger only, "thread" once in EMAIL's only: same idf, DATES first
    docs = [tokenize(i.trigger) for i in (UNITS, DATES, EMAIL)]
    assert docs[1] == ["agent", "message", "shows", "search", "result", "date", "date"]
    expected = bm25(["date", "thread"], docs)
    assert expected[1] > expected[2] > 0 == expected[0]
    assert pool.retrieve("which date was the thread about", 3) == [DATES, EMAIL]
    assert pool.retrieve("thread date", 1) == [DATES]
    assert pool.retrieve("a task about units", 5)[0] == UNITS  # "task" in two triggers, "units" in one
    assert pool.retrieve("nothing shared here", 5) == [] and pool.retrieve("date", 0) == []
    assert IndicatorPool().retrieve("date", 3) == []
    pool.add(Indicator("Misreads a calendar", "When the task involves a calendar date", "Check the calendar."))
    assert len(pool.retrieve("date", 5)) == 2  # the index is rebuilt after a change


def test_pool_saves_and_loads(tmp_path: Path) -> None:
    pool = IndicatorPool([UNITS, DATES], similarity_threshold=0.6)
    pool.save(tmp_path / "pool.json")
    again = IndicatorPool.load(tmp_path / "pool.json")
    assert list(again) == [UNITS, DATES] and again.similarity_threshold == 0.6
    assert again.retrieve("date", 1) == [DATES]
    (tmp_path / "bad.json").write_text('{"indicators": []}')
    with pytest.raises(ValueError, match=r"cannot read the indicator pool .*bad\.json: not a horizongym-indicator"):
        IndicatorPool.load(tmp_path / "bad.json")


# ----- building a pool from episodes -------------------------------------------------------------


def team_trace(rounds: list[list[tuple[str, str]]]) -> dict[str, Any]:
    return {
        "team": "trio",
        "graph": {},
        "mode": "fixed",
        "rounds": [
            [{"agent": agent, "round": r, "text": text, "hidden": False, "audits": []} for agent, text in lines]
            for r, lines in enumerate(rounds)
        ],
        "decision": {"kind": "majority", "action": ""},
        "tokens": {},
    }


def episode(seed: int, success: bool | None, reward: float, rounds: list[list[tuple[str, str]]]) -> Episode:
    return Episode(
        env_id="SearchJudge-v0",
        seed=seed,
        messages=[
            {"role": "system", "content": "You answer questions."},
            {"role": "user", "content": f"Question {seed}: how far is 10 miles in km?"},
            {"role": "assistant", "content": "search"},
            {"role": "user", "content": f"Results for question {seed}"},
            {"role": "assistant", "content": "answer"},
        ],
        steps=[
            Step(turn=1, action="search", policy_trace=team_trace(rounds)),
            Step(turn=2, action="<answer>16</answer>", policy_trace=team_trace(rounds)),
        ],
        success=success,
        total_reward=reward,
    )


class WrongWordExtractor:
    """A scripted extractor: a message holding WRONG-<topic> is flawed, with a pattern about that topic."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, TeamMessage, str]] = []

    async def extract(self, task: str, message: TeamMessage, outcome: str) -> Indicator | None:
        self.calls.append((task, message, outcome))
        if "WRONG-" not in message.text:
            return None
        topic = message.text.split("WRONG-")[1].split()[0]
        return Indicator(f"Gets the {topic} wrong", f"When the task involves {topic}", f"Check the {topic}.")


def test_build_pool_reads_the_failed_episodes_team_messages() -> None:
    rounds = [[("expert", "16 km"), ("noisy", "WRONG-units 20 km")], [("expert", "16 km"), ("noisy", "WRONG-units")]]
    episodes = [
        episode(0, True, 1.0, [[("expert", "WRONG-never read")]]),  # a success: not read
        episode(1, False, 0.0, rounds),
        episode(2, None, 0.2, [[("adversary", "WRONG-dates 1999")]]),  # failed only below a reward threshold
    ]
    extractor = WrongWordExtractor()
    pool = asyncio.run(build_pool(episodes, extractor))
    assert [i.pattern for i in pool] == ["Gets the units wrong"]  # 4 flawed messages, one pattern
    assert len(extractor.calls) == 8  # 2 steps × 2 rounds × 2 agents of episode 1
    task, message, outcome = extractor.calls[0]
    assert task == "Question 1: how far is 10 miles in km?" and message == TeamMessage("expert", 0, "16 km", 0, 0)
    assert "failed" in outcome and "turn 1" in outcome and "search" in outcome
    assert extractor.calls[4][0] == "Results for question 1"  # step 2's task: the last user message before it
    (units,) = pool
    assert units.source == "SearchJudge-v0 seed 1 sample 0 turn 1 noisy round 0"

    pool = asyncio.run(build_pool(episodes, WrongWordExtractor(), reward_below=0.5))
    assert [i.pattern for i in pool] == ["Gets the units wrong", "Gets the dates wrong"]


def test_extractor_replies_are_parsed() -> None:
    reply = "<pattern>Skips a hop</pattern>\n<trigger>When the task involves two hops</trigger><advice>Check</advice>"
    assert parse_indicator(reply) == Indicator("Skips a hop", "When the task involves two hops", "Check")
    assert parse_indicator("NO_ERROR") is None
    assert parse_indicator("<pattern>p</pattern><trigger></trigger><advice>a</advice>") is None


def test_policy_extractor_prompts_with_the_message_and_counts_unreadable_replies() -> None:
    reply = "<pattern>Skips a hop</pattern><trigger>When the task involves two hops</trigger><advice>Check</advice>"
    policy = Scripted(reply, "NO_ERROR", "the message looks odd")
    extractor = PolicyExtractor(policy)
    message = TeamMessage("noisy", 1, "Paris, from one search", 0, 0)

    async def three() -> list[Indicator | None]:
        return [await extractor.extract("Where was X born?", message, "The team's episode failed") for _ in range(3)]

    first, second, third = asyncio.run(three())
    assert first == Indicator("Skips a hop", "When the task involves two hops", "Check") and second is third is None
    assert extractor.unparsed == 1  # NO_ERROR is an answer; the third reply is not
    prompt = policy.seen[0][-1]["content"]
    assert all(part in prompt for part in ("Where was X born?", "episode failed", "noisy", "from one search"))


# ----- the firewall ------------------------------------------------------------------------------


class Scripted(Policy):
    """Replies with each text in turn (the last repeated), with token ids of known lengths if asked."""

    name = "scripted"

    def __init__(self, *replies: str, prompt_ids: int | None = None, completion_ids: int | None = None) -> None:
        self.replies = list(replies)
        self.prompt_ids, self.completion_ids = prompt_ids, completion_ids
        self.seen: list[list[Message]] = []

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        self.seen.append(messages)
        text = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return Action(
            text=text,
            prompt_token_ids=None if self.prompt_ids is None else list(range(self.prompt_ids)),
            token_ids=None if self.completion_ids is None else list(range(self.completion_ids)),
        )


CONTEXT = AuditContext("How far is 10 miles in km?", [InboxMessage("expert", 0, "16 km")])
DRAFT = TeamMessage("noisy", 1, "about 20 km by unit conversion", 30, 6)


class Rewriter:
    """The team's side of ``rewrite``: records the feedback and answers with the next scripted text."""

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.feedback: list[str] = []

    async def __call__(self, feedback: str) -> TeamMessage:
        self.feedback.append(feedback)
        return TeamMessage(DRAFT.agent, DRAFT.round, self.texts.pop(0), 40, 5)


def screen(firewall: AuditingFirewall, rewriter: Rewriter) -> Any:
    return asyncio.run(firewall.screen(DRAFT, CONTEXT, rewriter))


def test_a_passed_draft_goes_through_unchanged() -> None:
    auditor = Scripted("<verdict>PASS</verdict>", prompt_ids=50, completion_ids=4)
    rewriter = Rewriter()
    screened = screen(AuditingFirewall(IndicatorPool([UNITS, DATES]), PolicyAuditor(auditor)), rewriter)
    assert screened.message == DRAFT and not screened.hidden and rewriter.feedback == []
    assert (screened.auditor_prompt_tokens, screened.auditor_completion_tokens) == (50, 4)
    (audit,) = screened.audits
    assert audit["verdict"] == "PASS" and audit["indicators"] == [UNITS.pattern]  # "miles" is in its trigger only
    prompt = auditor.seen[0][1]["content"]
    assert CONTEXT.task in prompt and DRAFT.text in prompt and UNITS.advice in prompt and DATES.advice not in prompt


def test_a_flagged_draft_is_rewritten_with_the_feedback_then_passes() -> None:
    auditor = Scripted(
        "<verdict>FLAG</verdict><feedback>10 miles is 16.09 km.</feedback>",
        "<verdict>PASS</verdict>",
        prompt_ids=50,
        completion_ids=4,
    )
    rewriter = Rewriter("16.09 km")
    screened = screen(AuditingFirewall(IndicatorPool([UNITS]), PolicyAuditor(auditor)), rewriter)
    assert rewriter.feedback == ["10 miles is 16.09 km."]
    assert not screened.hidden and screened.message.text == "16.09 km" and screened.message.prompt_tokens == 40
    assert [a["verdict"] for a in screened.audits] == ["FLAG", "PASS"]
    assert screened.audits[0]["feedback"] == "10 miles is 16.09 km." and screened.audits[1]["text"] == "16.09 km"
    assert (screened.auditor_prompt_tokens, screened.auditor_completion_tokens) == (100, 8)


def test_a_draft_flagged_k_times_is_hidden_after_exactly_k_rewrites() -> None:
    auditor = Scripted("<verdict>FLAG</verdict><feedback>Still wrong.</feedback>", prompt_ids=50, completion_ids=7)
    rewriter = Rewriter("r1", "r2", "r3", "r4")
    screened = screen(AuditingFirewall(IndicatorPool([UNITS]), PolicyAuditor(auditor), max_rewrites=3), rewriter)
    assert screened.hidden and len(rewriter.feedback) == 3 and screened.message.text == "r3"
    assert [a["attempt"] for a in screened.audits] == [0, 1, 2, 3] and len(auditor.seen) == 4
    assert (screened.auditor_prompt_tokens, screened.auditor_completion_tokens) == (200, 28)
    no_retry = screen(AuditingFirewall(IndicatorPool([UNITS]), PolicyAuditor(auditor), max_rewrites=0), Rewriter())
    assert no_retry.hidden and len(no_retry.audits) == 1


def test_require_indicators_passes_an_unmatched_draft_without_an_audit() -> None:
    auditor = Scripted("<verdict>FLAG</verdict><feedback>x</feedback>")
    firewall = AuditingFirewall(IndicatorPool([EMAIL]), PolicyAuditor(auditor), require_indicators=True)
    screened = screen(firewall, Rewriter())
    assert not screened.hidden and auditor.seen == [] and screened.auditor_prompt_tokens == 0
    assert screened.audits[0]["note"] == "no indicator matched"


def test_policy_auditor_reads_pass_flag_and_garbage() -> None:
    def verdict(reply: str, indicators: Sequence[Indicator] = (UNITS,)) -> Verdict:
        return asyncio.run(PolicyAuditor(Scripted(reply)).audit(DRAFT, CONTEXT, indicators))

    passed = verdict(" <verdict> pass </verdict>")
    assert not passed.flagged and passed.note is None and passed.completion_tokens == 3
    flagged = verdict("Reasoning...\n<verdict>FLAG</verdict>\n<feedback>\nUse 1.609 km per mile.\n</feedback>")
    assert flagged.flagged and flagged.feedback == "Use 1.609 km per mile." and flagged.note is None
    garbage = verdict("I think it is fine, probably")
    assert not garbage.flagged and garbage.note == "unparsable auditor reply: counted as PASS"
    bare = verdict("<verdict>FLAG</verdict>")
    assert bare.flagged and bare.feedback == UNITS.advice and "advice" in (bare.note or "")
    # no token ids from the policy: charged by whitespace words of the prompt and the reply
    prompt = Scripted("<verdict>PASS</verdict>")
    charged = asyncio.run(PolicyAuditor(prompt).audit(DRAFT, CONTEXT, [UNITS]))
    assert charged.prompt_tokens == sum(count_tokens(m["content"]) for m in prompt.seen[0])
    assert charged.completion_tokens == 1
    # the garbage reply's note reaches the audit record
    screened = screen(AuditingFirewall(IndicatorPool([UNITS]), PolicyAuditor(Scripted("hmm"))), Rewriter())
    assert not screened.hidden and screened.audits[0]["note"] == "unparsable auditor reply: counted as PASS"


def test_scripted_auditor_has_the_error_rates_it_is_given() -> None:
    auditor = ScriptedAuditor(
        lambda message, context: "bad" in message.text, 0.8, 0.1, np.random.default_rng(0), feedback="Fix it."
    )
    flawed = TeamMessage("a", 0, "bad answer", 1, 1)
    sound = TeamMessage("a", 0, "good answer", 1, 1)

    async def rate(message: TeamMessage) -> float:
        verdicts = [await auditor.audit(message, CONTEXT, [UNITS]) for _ in range(2000)]
        return sum(v.flagged for v in verdicts) / len(verdicts)

    assert abs(asyncio.run(rate(flawed)) - 0.8) <= 0.03
    assert abs(asyncio.run(rate(sound)) - 0.1) <= 0.03
    always = ScriptedAuditor(lambda m, c: True, 1.0, 0.0, np.random.default_rng(1), feedback="Fix it.")
    v = asyncio.run(always.audit(flawed, CONTEXT, [UNITS]))
    assert v.flagged and v.feedback == "Fix it." and v.prompt_tokens > count_tokens(flawed.text) and v.completion_tokens
    with pytest.raises(ValueError, match="true_positive_rate must be in"):
        ScriptedAuditor(lambda m, c: True, 1.5, 0.0, np.random.default_rng(0))


# ----- the command -------------------------------------------------------------------------------


def extractor_app() -> Starlette:
    """An OpenAI-compatible server whose model generalises a message holding WRONG-<topic>."""

    async def complete(request: Request) -> JSONResponse:
        prompt = (await request.json())["messages"][-1]["content"]
        message = prompt.split("(round ")[1]
        if "WRONG-" in message:
            topic = message.split("WRONG-")[1].split()[0]
            text = f"<pattern>Gets the {topic} wrong</pattern><trigger>When the task involves {topic}</trigger>"
            text += f"<advice>Attention! Check if the {topic} is right.</advice>"
        else:
            text = "NO_ERROR"
        return JSONResponse({"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})

    return Starlette(routes=[Route("/v1/chat/completions", complete, methods=["POST"])])


def write_run(path: Path, episodes: list[Episode]) -> Path:
    path.write_text("".join(e.model_dump_json() + "\n" for e in episodes))
    return path


def test_team_indicators_command_builds_a_pool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rounds = [[("expert", "16 km"), ("noisy", "WRONG-units 20 km"), ("adversary", "WRONG-dates 1999")]]
    run = write_run(tmp_path / "run.jsonl", [episode(1, False, 0.0, rounds), episode(2, True, 1.0, rounds)])
    run2 = write_run(tmp_path / "run2.jsonl", [episode(3, False, 0.0, [[("noisy", "WRONG-units again")]])])
    out = tmp_path / "pool.json"
    with ServerThread(extractor_app()) as server:
        spec = f"openai:{server.url}/v1#extractor"
        assert main(["team-indicators", str(run), str(run2), "--extractor", spec, "--out", str(out)]) == 0
        printed = capsys.readouterr().out.strip()
        assert printed == f"2 indicators (6 extracted, 4 duplicates) from 2 failed of 3 episodes -> {out}"
        pool = IndicatorPool.load(out)
        assert [i.pattern for i in pool] == ["Gets the units wrong", "Gets the dates wrong"]
        assert pool.retrieve("which dates", 1)[0].source == "SearchJudge-v0 seed 1 sample 0 turn 1 adversary round 0"

        sound = write_run(tmp_path / "sound.jsonl", [episode(4, False, 0.0, [[("expert", "16 km")]])])
        assert main(["team-indicators", str(sound), "--extractor", spec, "--out", str(tmp_path / "e.json")]) == 1
        err = capsys.readouterr().err
        assert err.startswith("horizongym: error: no indicator from 1 failed of 1 episodes") and err.count("\n") == 1
        assert not (tmp_path / "e.json").exists()

    plain = episode(5, False, 0.0, [])
    for step in plain.steps:
        step.policy_trace = None
    untraced = write_run(tmp_path / "plain.jsonl", [plain])
    assert main(["team-indicators", str(untraced), "--extractor", "openai:http://127.0.0.1:9/v1#m", "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert "plain.jsonl holds no team traces" in err and err.count("\n") == 1
    assert main(["team-indicators", str(run), "--extractor", "nonsense", "--out", str(out)]) == 2
    assert "unknown policy 'nonsense'" in capsys.readouterr().err
    assert main(["team-indicators", str(tmp_path / "missing.jsonl"), "--extractor", "random", "--out", str(out)]) == 2
    assert "no episode file" in capsys.readouterr().err
