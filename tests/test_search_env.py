"""SearchJudge-v0's protocol and rewards, on hand-made episodes over a tiny hand-made corpus."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horizongym.envs.search.env import REJECTED_NOTE, SearchJudgeEnv
from horizongym.envs.search.rewards import JudgeRewards, char_similarity, exact_match, f1_score, normalize_answer
from horizongym.envs.search.types import Document, Hit, QATask

DOCS = [
    Document("d-lumo", "Lumo Varenko", "Lumo Varenko is a painter born in Qessa in 1871."),
    Document("d-qessa", "Qessa", "Qessa is a harbour city on the Orlin coast, founded in 1203."),
    Document("d-taro", "Taro Brill", "Taro Brill is a sculptor born in Vintmar in 1902."),
    Document("d-vint", "Vintmar", "Vintmar is a mountain town known for its glassworks."),
]
TASK = QATask(
    id="t-lumo",
    question="In which year was the birthplace of Lumo Varenko founded?",
    answers=("1203",),
    gold_doc_ids=("d-lumo", "d-qessa"),
    kind="bridge",
    hops=2,
)


class WordOverlap:
    """A test retriever: documents ranked by how many query words they contain."""

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        results = []
        for query in queries:
            words = set(re.findall(r"\w+", query.lower()))
            scored = [
                (len(words & set(re.findall(r"\w+", (d.title + " " + d.text).lower()))), -i, d)
                for i, d in enumerate(DOCS)
            ]
            ranked = sorted((s for s in scored if s[0] > 0), key=lambda s: (s[0], s[1]), reverse=True)
            results.append([Hit(d, float(score)) for score, _, d in ranked[:k]])
        return results


def make_env(**options: Any) -> SearchJudgeEnv:
    env = SearchJudgeEnv(tasks=[TASK], split="all", search_backend=WordOverlap(), top_k=1, **options)
    env.reset(seed=0)
    return env


def step(env: SearchJudgeEnv, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
    observation, reward, terminated, truncated, info = env.step(action)
    assert sum(info["reward_components"].values()) == pytest.approx(reward)
    return observation, float(reward), terminated, truncated, info


def test_prompt_and_information_format() -> None:
    env = SearchJudgeEnv(tasks=[TASK], split="all", search_backend=WordOverlap(), top_k=2)
    observation, info = env.reset(seed=0)
    assert observation.endswith("Question: " + TASK.question) and info["task_id"] == "t-lumo"
    assert sorted(t["function"]["name"] for t in info["tools"]) == ["answer", "judge", "search"]
    observation, *_ = step(env, "<think>start with the painter</think><search>Lumo Varenko painter Qessa</search>")
    assert observation.startswith("<information>Doc 1(Title: Lumo Varenko) Lumo Varenko is a painter")
    assert "\nDoc 2(Title: " in observation and observation.endswith("</information>")


def test_without_instructions_the_prompt_is_the_question_line_and_the_protocol_is_unchanged() -> None:
    env = SearchJudgeEnv(tasks=[TASK], split="all", search_backend=WordOverlap(), top_k=1, instructions=False)
    observation, _ = env.reset(seed=0)
    assert observation == "Question: " + TASK.question
    step(env, "<search>Lumo Varenko</search>")
    _, reward, *_ = step(env, "<judge>Yes</judge>")
    assert reward == pytest.approx(0.3)
    _, _, terminated, _, info = step(env, "<answer>1203</answer>")
    assert terminated and info["success"]


def test_useful_yes_and_correct_answer_pays_0_4_per_judgment() -> None:
    env = make_env()
    _, reward, *_ = step(env, "<search>Lumo Varenko born</search>")
    assert reward == 0.0
    _, reward, _, _, info = step(env, "<judge>Yes</judge>")
    assert info["reward_components"] == {"judge": pytest.approx(0.3)}
    step(env, "<search>Qessa founded</search>")
    _, reward, *_ = step(env, "<judge>Yes</judge>")
    assert reward == pytest.approx(0.3)
    observation, reward, terminated, truncated, info = step(env, "<answer>1203</answer>")
    assert terminated and not truncated and info["success"] is True and observation == "Correct."
    assert info["reward_components"] == {"answer": 1.0, "judge": pytest.approx(0.2)}  # 2 × (0.4 − 0.3)
    assert info["answer_em"] == 1.0 and info["judge_accuracy"] == 1.0


def test_useful_yes_with_a_wrong_answer_keeps_0_3() -> None:
    env = make_env()
    step(env, "<search>Lumo Varenko</search>")
    step(env, "<judge>Yes</judge>")
    _, _reward, terminated, _, info = step(env, "<answer>1871</answer>")
    assert terminated and info["success"] is False and info["reward_components"] == {"answer": 0.0}


@pytest.mark.parametrize(
    ("query", "verdict", "expected"),
    [
        ("Lumo Varenko", "Yes", 0.3),  # useful, right Yes
        ("Lumo Varenko", "No", -0.3),  # useful, wrong No
        ("Taro Brill sculptor", "No", 0.3),  # not useful, right No
        ("Taro Brill sculptor", "Yes", -0.6),  # not useful, wrong Yes
    ],
)
def test_every_judgment_case(query: str, verdict: str, expected: float) -> None:
    env = make_env()
    step(env, f"<search>{query}</search>")
    _, _reward, _, _, info = step(env, f"<judge>{verdict}</judge>")
    assert info["reward_components"] == {"judge": pytest.approx(expected)}


def test_missing_judgments_are_judgment_errors_before_search_answer_and_turn_limit() -> None:
    env = make_env()
    step(env, "<search>Lumo Varenko</search>")
    observation, reward, *_ = step(env, "<search>Qessa</search>")
    assert "did not judge" in observation and reward == pytest.approx(-0.3)
    observation, reward, _, _, info = step(env, "<answer>1203</answer>")
    assert "did not judge" in observation
    assert info["reward_components"] == {"judge": pytest.approx(-0.3), "answer": 1.0}
    env = make_env(max_turns=1)
    _, reward, terminated, truncated, info = step(env, "<search>Lumo</search>")
    assert truncated and not terminated and info["reward_components"] == {"judge": pytest.approx(-0.3)}


def test_rejected_information_is_redacted_from_the_context_only_when_asked() -> None:
    env = make_env()
    step(env, "<search>Taro Brill</search>")
    _, _, _, _, info = step(env, "<judge>No</judge>")
    assert info["redact_previous_observation"] == REJECTED_NOTE
    env = make_env(drop_rejected=False)
    step(env, "<search>Taro Brill</search>")
    _, _, _, _, info = step(env, "<judge>No</judge>")
    assert "redact_previous_observation" not in info


def test_a_search_ends_the_turn_and_judge_then_search_in_one_action_works() -> None:
    env = make_env()
    observation, *_ = step(env, "<search>Lumo</search><judge>Yes</judge>")
    assert "ignored: read the earlier result first" in observation
    _, _reward, _, _, info = step(env, "<judge>Yes</judge> <think>next hop</think> <search>Qessa</search>")
    assert info["reward_components"] == {"judge": pytest.approx(0.3)}
    assert [c["name"] for c in info["tool_calls"]] == ["judge", "search"]


def test_tool_calls_are_accepted_like_tags() -> None:
    env = make_env()
    observation, *_ = step(env, '<tool_call>{"name": "search", "arguments": {"query": "Lumo Varenko"}}</tool_call>')
    assert observation.startswith("<information>")
    _, reward, *_ = step(env, '<tool_call>{"name": "judge", "arguments": {"verdict": "Yes"}}</tool_call>')
    assert reward == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("action", "fragment"),
    [
        ("<answer>1203</answer>", "search before you answer"),
        ("<judge>Yes</judge>", "no information to judge"),
        ("<search>   </search>", "the query is empty"),
        ("<search>unclosed", "not closed"),
        ("just some words", "that action has no command"),
        ("<judge>maybe</judge>", "judge with Yes or No"),
    ],
)
def test_invalid_actions_get_a_corrective_message_and_the_format_penalty(action: str, fragment: str) -> None:
    env = make_env()
    observation, _reward, terminated, truncated, info = step(env, action)
    assert fragment in observation and not terminated and not truncated
    assert info["reward_components"] == {"format": pytest.approx(-0.1)}


def test_search_limit_long_queries_and_metrics() -> None:
    env = make_env(max_searches=1)
    observation, *_ = step(env, "<search>" + "Lumo " * 30_000 + "</search>")
    assert "cut to its first 1000 characters" in observation
    step(env, "<judge>Yes</judge>")
    observation, reward, *_ = step(env, "<search>Qessa</search>")
    assert "no searches left" in observation and reward == pytest.approx(-0.1)
    env = make_env(answer_metric="f1")
    step(env, "<search>Lumo</search>")
    step(env, "<judge>Yes</judge>")
    _, _, _, _, info = step(env, "<answer>founded 1203</answer>")
    assert info["reward_components"]["answer"] == pytest.approx(2 / 3) and info["answer_em"] == 0.0


def test_chars_metric_gives_partial_credit_but_success_stays_exact() -> None:
    assert char_similarity("1,207", ["1203"]) == pytest.approx(0.75)  # "1207" vs "1203": 2·3 / 8
    assert char_similarity("The 1203.", ["1203"]) == 1.0 and char_similarity("x", []) == 0.0
    assert f1_score("1207", ["1203"]) == 0.0
    env = make_env(answer_metric="chars")
    step(env, "<search>Lumo</search>")
    step(env, "<judge>Yes</judge>")
    _, _, terminated, _, info = step(env, "<answer>1207</answer>")
    assert terminated and info["reward_components"]["answer"] == pytest.approx(0.75)
    assert info["answer_em"] == 0.0 and info["success"] is False


def test_an_answer_event_without_the_chosen_score_cannot_be_rescored() -> None:
    env = make_env(answer_metric="chars")
    with pytest.raises(ValueError, match="rescore it with answer_metric 'em' or 'f1'"):
        env.event_rewards({"event": "answer", "em": 1.0, "f1": 1.0, "useful_yes": 1})


def test_validation_mode_reports_em_alone() -> None:
    env = make_env(validation=True)
    step(env, "<search>Taro Brill</search>")
    _, reward, *_ = step(env, "<judge>Yes</judge>")
    assert reward == 0.0
    _, reward, *_ = step(env, "nonsense")
    assert reward == 0.0
    _, reward, _, _, info = step(env, "<answer>The 1203.</answer>")
    assert info["reward_components"] == {"answer": 1.0}


def test_symmetric_reward_set() -> None:
    env = make_env(judge_rewards="symmetric")
    step(env, "<search>Taro Brill</search>")
    _, reward, *_ = step(env, "<judge>Yes</judge>")
    assert reward == pytest.approx(-0.2)
    custom = make_env(judge_rewards=JudgeRewards(wrong_yes=-1.0), judge_weight=0.5)
    step(custom, "<search>Taro Brill</search>")
    _, reward, *_ = step(custom, "<judge>Yes</judge>")
    assert reward == pytest.approx(-0.5)


def test_answer_normalization() -> None:
    assert normalize_answer("  The Eiffel-Tower! ") == "eiffeltower"
    assert exact_match("an apple", ["Apple"]) == 1.0 and exact_match("apples", ["apple"]) == 0.0
    assert f1_score("red apple pie", ["apple pie"]) == pytest.approx(0.8)
    assert f1_score("", ["x"]) == 0.0


JUNK = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
ACTIONS = st.one_of(
    JUNK,
    JUNK.map(lambda s: f"<search>{s}</search>"),
    JUNK.map(lambda s: f"<judge>{s}</judge>"),
    JUNK.map(lambda s: f"<answer>{s}"),
    JUNK.map(lambda s: f"<think>{s}</search><judge>"),
    st.sampled_from(["<search></search>", "<answer></answer>", "</judge>", "<search>" + "x" * 100_000 + "</search>"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(ACTIONS, min_size=1, max_size=8))
def test_bad_input_never_raises(actions: list[str]) -> None:
    env = make_env()
    for action in actions:
        observation, reward, terminated, truncated, info = env.step(action)
        assert isinstance(observation, str) and observation
        assert sum(info["reward_components"].values()) == pytest.approx(reward)
        if terminated or truncated:
            break


def test_task_selection_random_by_seed_and_by_option() -> None:
    other = QATask(id="t-taro", question="Where was Taro Brill born?", answers=("Vintmar",), gold_doc_ids=("d-taro",))
    env = SearchJudgeEnv(tasks=[TASK, other], split="all", search_backend=WordOverlap())
    assert env.reset(seed=5)[1]["task_id"] == env.reset(seed=5)[1]["task_id"]
    assert env.reset(seed=0, options={"task_id": "t-taro"})[1]["task_id"] == "t-taro"
    ordered = SearchJudgeEnv(tasks=[TASK, other], split="all", search_backend=WordOverlap(), task_order="by_seed")
    assert [ordered.reset(seed=s)[1]["task_id"] for s in range(4)] == ["t-lumo", "t-taro", "t-lumo", "t-taro"]
    with pytest.raises(ValueError, match="no task with id"):
        env.reset(seed=0, options={"task_id": "nope"})
