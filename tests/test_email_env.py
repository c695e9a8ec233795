"""EmailInbox-v0: inbox scoping, ART·E rewards, hostile input, the LLM judge — on a hand-made archive."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horizongym.envs.email.env import EmailInboxEnv
from horizongym.envs.email.store import EmailStore
from horizongym.envs.email.types import Email, EmailQuestion

EMAILS = [
    Email(
        "m-budget",
        "2001-05-03T09:00:00-07:00",
        "sara.lind@acme.com",
        ("tom.vale@acme.com",),
        ("ida.moss@acme.com",),
        (),
        "Q3 budget for the Osprey project",
        "Tom, the Osprey budget is $120,000 for Q3. Sara",
        "tom",
    ),
    Email(
        "m-lunch",
        "2001-05-04T12:00:00-07:00",
        "ida.moss@acme.com",
        ("tom.vale@acme.com",),
        (),
        (),
        "Lunch on Friday",
        "Shall we meet at the Pier cafe on Friday?",
        "tom",
    ),
    Email(
        "m-secret",
        "2001-05-05T08:00:00-07:00",
        "sara.lind@acme.com",
        ("kim.ross@acme.com",),
        (),
        (),
        "Osprey budget (confidential)",
        "Kim, the real Osprey budget is $999,999.",
        "kim",
    ),
]
QUESTION = EmailQuestion(
    id="q-budget",
    question="What is the Q3 budget of the Osprey project?",
    answers=("$120,000", "120,000", "120000"),
    message_ids=("m-budget",),
    owner="tom",
    query_date="2001-05-10T00:00:00-07:00",
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> EmailStore:
    path = tmp_path_factory.mktemp("inbox") / "emails.sqlite"
    EmailStore.build(EMAILS, path)
    return EmailStore.open(path)


def make_env(store: EmailStore, **options: Any) -> EmailInboxEnv:
    env = EmailInboxEnv(tasks=[QUESTION], store=store, split="all", **options)
    env.reset(seed=0)
    return env


def call(name: str, **arguments: Any) -> str:
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"


def step(env: EmailInboxEnv, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
    observation, reward, terminated, truncated, info = env.step(action)
    assert sum(info["reward_components"].values()) == pytest.approx(float(reward))
    return observation, float(reward), terminated, truncated, info


def test_prompt_names_the_inbox_and_the_date(store: EmailStore) -> None:
    env = EmailInboxEnv(tasks=[QUESTION], store=store, split="all")
    observation, info = env.reset(seed=0)
    assert "Today's date is 2001-05-10" in observation and QUESTION.question in observation
    assert sorted(t["function"]["name"] for t in info["tools"]) == [
        "read_email",
        "return_final_answer",
        "search_emails",
    ]


def test_an_inbox_never_sees_another_inbox(store: EmailStore) -> None:
    env = make_env(store)
    observation, *_ = step(env, call("search_emails", keywords=["Osprey", "budget"]))
    found = [hit["message_id"] for hit in json.loads(observation)]
    assert found == ["m-budget"]
    observation, *_ = step(env, call("search_emails", keywords=["999,999"]))
    assert observation.startswith("No emails matched")
    observation, *_ = step(env, call("search_emails", keywords=["budget"], to_addr="kim.ross@acme.com"))
    assert observation.startswith("No emails matched")
    observation, *_ = step(env, call("read_email", message_id="m-secret"))
    assert "No email with id 'm-secret' in this inbox" in observation
    assert env.episode.evidence.read_invalid


def test_correct_answer_with_sources_and_efficiency(store: EmailStore) -> None:
    env = make_env(store)
    step(env, call("search_emails", keywords=["Osprey"]))
    observation, *_ = step(env, call("read_email", message_id="m-budget"))
    assert "Subject: Q3 budget for the Osprey project" in observation and "Cc: ida.moss@acme.com" in observation
    _, _reward, terminated, _, info = step(env, call("return_final_answer", answer="$120,000", sources=["m-budget"]))
    assert terminated and info["success"] is True
    assert info["reward_components"] == {"answer": 1.0, "sources": 0.3, "efficiency": pytest.approx(0.1 * (1 - 3 / 10))}


def test_correct_answer_without_the_source_gets_no_source_bonus(store: EmailStore) -> None:
    env = make_env(store)
    _, _, _, _, info = step(env, call("return_final_answer", answer="It is 120,000 dollars", sources=[]))
    assert info["reward_components"] == {"answer": 1.0, "efficiency": pytest.approx(0.09)}


def test_wrong_answer_and_partial_credit(store: EmailStore) -> None:
    env = make_env(store)
    step(env, call("search_emails", keywords=["Osprey"]))  # found the source: +0.1
    step(env, call("read_email", message_id="m-budget"))  # read it: +0.1
    _, _reward, terminated, _, info = step(env, call("return_final_answer", answer="$50", sources=["m-budget"]))
    assert terminated and info["success"] is False
    # cited it (+0.1) and never read an invalid id (+0.1)
    assert info["reward_components"] == {"answer": -1.0, "partial": pytest.approx(0.4)}


def test_dont_know_and_running_out_of_turns(store: EmailStore) -> None:
    env = make_env(store)
    step(env, call("read_email", message_id="nope"))  # an invalid read loses that credit
    _, _, _, _, info = step(env, call("return_final_answer", answer="I don't know", sources=[]))
    assert info["reward_components"] == {"answer": 0.0, "partial": 0.0}
    env = make_env(store, max_turns=2)
    step(env, call("search_emails", keywords=["lunch"]))
    _, _, terminated, truncated, info = step(env, call("search_emails", keywords=["Osprey"]))
    assert truncated and not terminated
    assert info["reward_components"] == {"answer": 0.0, "partial": pytest.approx(0.2)}


@pytest.mark.parametrize(
    ("action", "value"),
    [
        ("<tool_call>{not json}</tool_call>", -2.0),
        ("no tool call at all", -2.0),
        (call("delete_everything"), -1.9),
        (call("search_emails", keywords=["x"], max_results=50), -1.8),
        (call("search_emails", keywords=["x"], sent_after="last tuesday"), -1.8),
    ],
)
def test_format_errors_end_the_episode_with_arte_values(store: EmailStore, action: str, value: float) -> None:
    env = make_env(store)
    observation, _reward, terminated, _, info = step(env, action)
    assert terminated and info["success"] is False and observation.startswith("Error [")
    assert info["reward_components"] == {"format": value, "partial": pytest.approx(0.1)}
    lenient = make_env(store, end_on_format_error=False)
    _, _, terminated, _, _ = step(lenient, action)
    assert not terminated


HOSTILE = st.one_of(
    st.sampled_from(
        ['" OR 1=1 --', "NEAR(", "subject:", '"unbalanced', "a*", "(", ")", "^x", "\x00", "x" * 10_000, "😀"]
    ),
    st.text(max_size=40),
)


@settings(max_examples=120, deadline=None)
@given(st.lists(HOSTILE, min_size=1, max_size=4), st.one_of(st.none(), HOSTILE), st.one_of(st.none(), HOSTILE))
def test_hostile_keywords_and_filters_never_raise(
    store: EmailStore, keywords: list[str], from_addr: str | None, to_addr: str | None
) -> None:
    env = make_env(store, end_on_format_error=False)
    observation, *_ = step(env, call("search_emails", keywords=keywords, from_addr=from_addr, to_addr=to_addr))
    assert "m-secret" not in observation
    assert observation.startswith(("[", "No emails matched", "Error ["))


class JudgeServer:
    """A real loopback HTTP server standing in for an OpenAI-compatible judge model."""

    def __init__(self, verdict: str) -> None:
        self.prompts: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.prompts.append(body["messages"][0]["content"])
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": verdict}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def judges() -> Iterator[dict[str, JudgeServer]]:
    servers = {"yes": JudgeServer("Yes."), "no": JudgeServer("no")}
    yield servers
    for server in servers.values():
        server.server.shutdown()
        server.server.server_close()


def test_llm_judge_decides_correctness(store: EmailStore, judges: dict[str, JudgeServer]) -> None:
    env = make_env(store, judge=f"openai:{judges['yes'].url}#grader")
    _, _, _, _, info = step(env, call("return_final_answer", answer="one hundred twenty thousand", sources=[]))
    assert info["success"] is True and "Reference answer: $120,000" in judges["yes"].prompts[0]
    env = make_env(store, judge=f"openai:{judges['no'].url}#grader")
    _, _, _, _, info = step(env, call("return_final_answer", answer="$120,000", sources=[]))
    assert info["success"] is False


def test_bad_judge_spec_is_explained(store: EmailStore, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="openai:URL#MODEL"):
        make_env(store, judge="gpt-4")


@pytest.mark.parametrize("data", [None, "enron"])
def test_play_from_the_terminal(data: str | None, enron_path: Path) -> None:
    import subprocess
    import sys

    extra = ["--tasks", str(enron_path)] if data else []
    actions = [
        call("search_emails", keywords=["the"]),
        call("read_email", message_id="no-such-id"),
        call("return_final_answer", answer="I don't know", sources=[]),
    ]
    result = subprocess.run(
        [sys.executable, "-m", "horizongym", "play", "EmailInbox-v0", "--seed", "2", *extra],
        input="\n".join(actions) + "\n",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "Question: " in result.stdout and '"message_id"' in result.stdout
    assert "No email with id 'no-such-id' in this inbox" in result.stdout
    assert "episode over: terminated" in result.stdout
