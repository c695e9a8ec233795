"""The read side of ``horizongym view``: the JSON API over real run files made by the real engine
(KeyChain expert and random, a tree run, SearchJudge, KernelGen and SWE experts, a one-step tiny
training run), the CLI command, and a 10,000-episode file (its index and page times are printed)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from horizongym.cli import main
from horizongym.training.rollouts.store import read_run
from horizongym.training.rollouts.summary import format_table, summarize
from horizongym.training.rollouts.trajectory import Episode
from horizongym.view.app import create_app
from horizongym.view.catalog import RunCatalog, RunSourceError
from horizongym.view.outline import ROW_KEYS


def _cli(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(args)) == 0, args
    return out.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("view")
    paths = {
        name: root / f"{name}.jsonl" for name in ("expert", "random", "timeouts", "tree", "search", "kernel", "swe")
    }
    _cli("rollout", "KeyChain-v0", "--policy", "expert", "-n", "3", "--out", str(paths["expert"]), "--quiet")
    _cli(
        "rollout",
        "KeyChain-v0",
        "--policy",
        "random",
        "-n",
        "6",
        "--max-turns",
        "2",
        "--out",
        str(paths["random"]),
        "--quiet",
    )
    timeouts = ["--timeout", "0.001", "--out", str(paths["timeouts"]), "--quiet"]
    _cli("rollout", "SearchJudge-v0", "--policy", "expert", "-n", "2", *timeouts)
    _cli(
        "rollout", "KeyChain-v0", "--policy", "random", "-n", "3", "--tree", "3", "--out", str(paths["tree"]), "--quiet"
    )
    _cli("rollout", "SearchJudge-v0", "--policy", "expert", "-n", "1", "--out", str(paths["search"]), "--quiet")
    _cli(
        "rollout",
        "KernelGen-v0",
        "--policy",
        "expert",
        "--seed",
        "3",
        "-n",
        "1",
        "--out",
        str(paths["kernel"]),
        "--quiet",
    )
    _cli("rollout", "SWE-v0", "--policy", "expert", "-n", "1", "--out", str(paths["swe"]), "--quiet")
    mixed = root / "mixed.jsonl"
    mixed.write_bytes(b"".join(paths[name].read_bytes() for name in ("expert", "random", "timeouts")))
    paths["mixed"] = mixed
    train = root / "train"
    _cli(
        "train", "KeyChain-v0", "--policy", "tiny", "--out", str(train), "--quiet", "--steps", "1", "--group", "2",
        "--tasks-per-step", "1", "--max-new-tokens", "6", "--env-kwargs", '{"max_turns": 2}',
    )  # fmt: skip
    paths["train"] = train
    return paths


@pytest.fixture(scope="module")
def client(runs: dict[str, Path]) -> TestClient:
    order = ("mixed", "tree", "search", "kernel", "swe", "train")
    return TestClient(create_app(RunCatalog([runs[name] for name in order])))


MIXED, TREE, SEARCH, KERNEL, SWE, TRAIN = (f"r{i}" for i in range(6))


def _all_rows(client: TestClient, run: str, **params: Any) -> list[dict[str, Any]]:
    return client.get(f"/api/runs/{run}/episodes", params={**params, "limit": 500}).json()["episodes"]


def test_runs_are_listed_with_their_kind_and_counts(client: TestClient, runs: dict[str, Path]) -> None:
    listed = client.get("/api/runs").json()["runs"]
    assert [r["id"] for r in listed] == [f"r{i}" for i in range(6)]
    assert [r["name"] for r in listed] == [
        "mixed.jsonl",
        "tree.jsonl",
        "search.jsonl",
        "kernel.jsonl",
        "swe.jsonl",
        "train",
    ]
    assert [r["kind"] for r in listed] == ["episodes"] * 5 + ["train"]
    assert [r["metrics"] for r in listed] == [False] * 5 + [True]
    assert listed[0]["episodes"] == 11 == len(read_run(runs["mixed"], "view"))
    assert listed[5]["episodes"] == len(read_run(runs["train"] / "episodes.jsonl", "view")) == 2


def test_summary_is_what_show_prints(client: TestClient, runs: dict[str, Path]) -> None:
    for run, name in ((MIXED, "mixed"), (TREE, "tree")):
        summary = client.get(f"/api/runs/{run}/summary").json()
        episodes = read_run(runs[name], "show")
        assert summary["rows"] == [dataclasses.asdict(s) for s in summarize(episodes)]
        printed = _cli("show", str(runs[name]))
        assert summary["table"] == format_table(summarize(episodes)) and printed.startswith(summary["table"])
        if name == "tree":
            assert summary["trees"].startswith("trees: 3 trunks") and summary["trees"] in printed
        else:
            assert summary["trees"] is None
    assert client.get(f"/api/runs/{MIXED}/summary").json()["failures"] is None  # time limits are the policy's
    assert {r["env_id"] for r in client.get(f"/api/runs/{MIXED}/summary").json()["rows"]} == {
        "KeyChain-v0",
        "SearchJudge-v0",
    }


def _error_texts(episode: Episode) -> str:
    """What the error filter searches: the episode's error, termination detail and step errors, lowered."""
    texts = (episode.error, episode.termination_detail, *(step.error for step in episode.steps))
    return " | ".join(text.lower() for text in texts if text)


def test_every_filter_selects_what_it_names(client: TestClient, runs: dict[str, Path]) -> None:
    episodes = read_run(runs["mixed"], "view")
    expected: dict[str, Any] = {
        "env_id=SearchJudge-v0": lambda e: e.env_id == "SearchJudge-v0",
        "policy=random": lambda e: e.policy == "random",
        "outcome=truncated": lambda e: e.outcome == "truncated",
        "success=true": lambda e: e.success is True,
        "success=false": lambda e: e.success is False,
        "success=none": lambda e: e.success is None,
        "min_reward=0.5": lambda e: e.total_reward >= 0.5,
        "max_reward=0": lambda e: e.total_reward <= 0,
        "min_turns=2": lambda e: e.num_turns >= 2,
        "max_turns=1": lambda e: e.num_turns <= 1,
        "error=RAN PAST": lambda e: "ran past" in _error_texts(e),
        "error=time limit": lambda e: "time limit" in _error_texts(e),
        "error=no_tool_call": lambda e: "no_tool_call" in _error_texts(e),
        "branch=trunk": lambda e: e.branch == 0,
        "branch=branch": lambda e: e.branch > 0,
        "seed=1": lambda e: e.seed == 1,
        "seed=0&sample=0": lambda e: e.seed == 0 and e.sample == 0,
        "policy=random&max_turns=1&success=false": lambda e: (
            e.policy == "random" and e.num_turns <= 1 and e.success is False
        ),
        "env_id=&policy=": lambda e: True,  # blank inputs filter nothing
    }
    for query, wanted in expected.items():
        params = dict(part.split("=") for part in query.split("&"))
        page = client.get(f"/api/runs/{MIXED}/episodes", params=params).json()
        numbers = [n for n, e in enumerate(episodes) if wanted(e)]
        assert [row["n"] for row in page["episodes"]] == numbers, query
        assert page["total"] == len(numbers), query
    assert any(e.error for e in episodes) and any(e.success is None for e in episodes)
    assert any("no_tool_call" in (step.error or "") for e in episodes for step in e.steps), "a step error to find"
    assert client.get(f"/api/runs/{TREE}/episodes", params={"branch": "branch"}).json()["total"] >= 1
    tree = read_run(runs["tree"], "view")
    one_tree = client.get(f"/api/runs/{TREE}/episodes", params={"seed": tree[0].seed, "sample": tree[0].sample})
    assert sorted(row["branch"] for row in one_tree.json()["episodes"]) == sorted(
        e.branch for e in tree if e.key == tree[0].key
    )
    facets = client.get(f"/api/runs/{MIXED}/episodes").json()["facets"]
    assert facets == {
        "env_id": ["KeyChain-v0", "SearchJudge-v0"],
        "policy": ["expert", "random"],
        "outcome": sorted({str(e.outcome) for e in episodes}),
    }


def test_step_errors_are_found_by_the_error_filter(client: TestClient, runs: dict[str, Path]) -> None:
    """The summary counts step errors (``invalid_json``, ``no_tool_call``...); the error filter finds their episodes."""
    episodes = read_run(runs["tree"], "view")
    failed = [n for n, e in enumerate(episodes) if any(step.error for step in e.steps)]
    assert failed and not any(episodes[n].error for n in failed)
    word = next(step.error for step in episodes[failed[0]].steps if step.error).split(":")[0]
    found = [row["n"] for row in _all_rows(client, TREE, error=word.upper())]
    assert found == [n for n, e in enumerate(episodes) if any(word in (step.error or "") for step in e.steps)]
    assert failed[0] in found


def test_reward_bounds_keep_the_reward_the_table_shows(runs: dict[str, Path], tmp_path: Path) -> None:
    """A reward summed to -0.30000000000000004 reads -0.300: reward >= -0.3 and <= -0.3 both keep it."""
    episode = read_run(runs["expert"], "view")[0]
    path = tmp_path / "sums.jsonl"
    rewards = [-0.1 - 0.1 - 0.1, -0.3, -0.3000001, 0.1 + 0.2, 0.3]
    path.write_text("".join(episode.model_copy(update={"seed": i, "total_reward": r}).model_dump_json() + "\n"
                            for i, r in enumerate(rewards)))  # fmt: skip
    client = TestClient(create_app(RunCatalog([path])))
    assert rewards[0] != -0.3 and rewards[3] != 0.3
    for params, wanted in (
        ({"min_reward": "-0.3"}, [0, 1, 3, 4]),
        ({"max_reward": "-0.3"}, [0, 1, 2]),
        ({"min_reward": "-0.3", "max_reward": "-0.3"}, [0, 1]),
        ({"min_reward": "0.3", "max_reward": "0.3"}, [3, 4]),
    ):
        assert [row["n"] for row in _all_rows(client, "r0", **params)] == wanted, params


def test_rows_carry_the_episode_figures(client: TestClient, runs: dict[str, Path]) -> None:
    episodes = read_run(runs["train"] / "episodes.jsonl", "view")
    rows = _all_rows(client, TRAIN)
    assert [list(row) for row in rows] == [list(ROW_KEYS)] * len(episodes)
    for row, e in zip(rows, episodes, strict=True):
        assert row["tokens"] == e.num_generated_tokens > 0 and row["turns"] == e.num_turns
        assert (row["seed"], row["sample"], row["branch"], row["total_reward"]) == (
            e.seed,
            e.sample,
            e.branch,
            e.total_reward,
        )
    timed_out = _all_rows(client, MIXED, env_id="SearchJudge-v0")
    assert timed_out and all(row["termination_reason"] == "time_limit" for row in timed_out)
    assert all("ran past the episode's time limit" in row["error"] for row in timed_out)  # the env's or the policy's


def test_sort_and_paging(client: TestClient, runs: dict[str, Path]) -> None:
    episodes = read_run(runs["mixed"], "view")
    for key, attr in (("total_reward", "total_reward"), ("turns", "num_turns"), ("seed", "seed"), ("policy", "policy")):
        for order in ("asc", "desc"):
            rows = _all_rows(client, MIXED, sort=key, order=order)
            values = [getattr(episodes[row["n"]], attr) for row in rows]
            assert values == sorted(values, reverse=order == "desc"), (key, order)
            ties = [row["n"] for row in rows if getattr(episodes[row["n"]], attr) == values[0]]
            assert ties == sorted(ties), "ties keep file order"
    success = _all_rows(client, MIXED, sort="success", order="desc")
    judged = [e.success for e in episodes]
    trues, falses, nones = judged.count(True), judged.count(False), judged.count(None)
    assert nones and [row["success"] for row in success] == [True] * trues + [False] * falses + [None] * nones
    assert [row["success"] for row in _all_rows(client, MIXED, sort="success")] == [False] * falses + [True] * trues + [
        None
    ] * nones  # no value: last either way
    pages = [client.get(f"/api/runs/{MIXED}/episodes", params={"offset": o, "limit": 4}).json() for o in (0, 4, 8, 12)]
    assert [row["n"] for page in pages for row in page["episodes"]] == list(range(11))
    assert [(p["offset"], p["limit"], p["total"], len(p["episodes"])) for p in pages][2:] == [
        (8, 4, 11, 3),
        (12, 4, 11, 0),
    ]
    assert client.get(f"/api/runs/{MIXED}/episodes").json()["limit"] == 50


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"success": "maybe"}, "success must be true, false or none, not 'maybe'"),
        ({"min_reward": "lots"}, "min_reward must be a number, not 'lots'"),
        ({"max_turns": "2.5"}, "max_turns must be a whole number, not '2.5'"),
        ({"branch": "leaf"}, "branch must be trunk or branch"),
        ({"seed": "first"}, "seed must be a whole number, not 'first'"),
        ({"sort": "colour"}, "sort must be one of n, env_id"),
        ({"order": "up"}, "order must be asc or desc"),
        ({"offset": "-1"}, "offset must be 0 or more"),
        ({"limit": "501"}, "limit must be 1..500"),
        ({"limit": "0"}, "limit must be 1..500"),
        ({"colour": "red"}, "unknown parameter 'colour'"),
    ],
)
def test_bad_parameters_are_400_with_one_line(client: TestClient, params: dict[str, str], words: str) -> None:
    response = client.get(f"/api/runs/{MIXED}/episodes", params=params)
    assert response.status_code == 400 and words in response.json()["error"]
    assert "\n" not in response.json()["error"]


def test_unknown_runs_and_episodes_are_404(client: TestClient) -> None:
    for path, words in (
        ("/api/runs/r9/summary", "no run 'r9': the runs are r0, r1"),
        ("/api/runs/r9/episodes", "no run 'r9'"),
        (f"/api/runs/{MIXED}/episodes/11", "run r0 has no episode 11 (pick 0..10)"),
        (f"/api/runs/{MIXED}/metrics", "has no metrics.jsonl"),
        ("/api/nothing", "no such address /api/nothing"),
    ):
        response = client.get(path)
        assert response.status_code == 404 and words in response.json()["error"], path
    bad = client.get(f"/api/runs/{MIXED}/episodes/x")
    assert bad.status_code == 400 and "episode number must be a whole number" in bad.json()["error"]


def test_episode_detail_is_the_record_with_turns(client: TestClient, runs: dict[str, Path]) -> None:
    episodes = read_run(runs["mixed"], "view")
    for n in (0, 4, 10):
        detail = client.get(f"/api/runs/{MIXED}/episodes/{n}").json()
        assert detail["episode"] == episodes[n].model_dump(mode="json")
        assert detail["row"] == _all_rows(client, MIXED)[n]
        assert [t["turn"] for t in detail["turns"]] == [s.turn for s in episodes[n].steps]
        assert all(t["tokens"] is None and t["advantage"] is None for t in detail["turns"])
        assert all(t["team_svg"] is None for t in detail["turns"])  # a single policy: no team picture
        assert detail["extras"] == {"swe_diff": None, "kernel": None, "search": None} or n == 10


def test_trained_turns_show_tokens_logprobs_and_advantages(client: TestClient, runs: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(runs["train"] / "init")
    episodes = read_run(runs["train"] / "episodes.jsonl", "view")
    for n, episode in enumerate(episodes):
        turns = client.get(f"/api/runs/{TRAIN}/episodes/{n}").json()["turns"]
        for turn, step in zip(turns, episode.steps, strict=True):
            assert step.advantage is not None and turn["advantage"] == step.advantage
            assert step.token_ids and step.logprobs and step.prompt_token_ids
            assert [t["id"] for t in turn["tokens"]] == step.token_ids
            assert [t["logprob"] for t in turn["tokens"]] == step.logprobs
            assert [t["text"] for t in turn["tokens"]] == [tokenizer.decode([i]) for i in step.token_ids]
            assert turn["completion_tokens"] == len(step.token_ids) and turn["prompt_tokens"] == len(
                step.prompt_token_ids
            )
    # the same file outside its folder: no tokenizer known, unless --tokenizer names one
    alone = runs["train"].parent / "alone.jsonl"
    shutil.copy(runs["train"] / "episodes.jsonl", alone)
    ids = episodes[0].steps[0].token_ids or []
    for tokenizer_dir, texts in (
        (None, [f"<{i}>" for i in ids]),
        (runs["train"] / "init", [tokenizer.decode([i]) for i in ids]),
    ):
        other = TestClient(create_app(RunCatalog([alone], tokenizer=tokenizer_dir)))
        assert [t["text"] for t in other.get("/api/runs/r0/episodes/0").json()["turns"][0]["tokens"]] == texts


def test_extras_of_swe_kernel_and_search_episodes(client: TestClient, runs: dict[str, Path]) -> None:
    swe = client.get(f"/api/runs/{SWE}/episodes/0").json()["extras"]
    assert swe["kernel"] is None and swe["search"] is None
    assert swe["swe_diff"].startswith("diff --git") and "+++ b/" in swe["swe_diff"]

    kernel = client.get(f"/api/runs/{KERNEL}/episodes/0").json()["extras"]["kernel"]
    recorded = read_run(runs["kernel"], "view")[0].steps[0].info["evaluation"]
    assert len(kernel) == 1 and kernel[0]["turn"] == 1 and kernel[0]["status"] == recorded["status"] == "correct"
    assert kernel[0]["speedup"] == recorded["speedup"] and kernel[0]["runtime_ms"] == recorded["candidate_ms"]
    assert kernel[0]["reference_ms"] == recorded["reference_ms"] > 0 and kernel[0]["compile_s"] is None

    search = client.get(f"/api/runs/{SEARCH}/episodes/0").json()["extras"]["search"]
    episode = read_run(runs["search"], "view")[0]
    queries = [c["arguments"]["query"] for s in episode.steps for c in s.tool_calls if c["name"] == "search"]
    assert [row["query"] for row in search] == queries and len(search) >= 2
    assert [row["turn"] for row in search] == [
        s.turn for s in episode.steps if any(c["name"] == "search" for c in s.tool_calls)
    ]
    verdicts = [e["verdict"] for s in episode.steps for e in s.reward_events if e["event"] == "judge"]
    assert [row["verdict"] for row in search] == verdicts
    for row in search:
        assert row["docs"] and all(isinstance(d["id"], str) and isinstance(d["gold"], bool) for d in row["docs"])
        assert any(d["gold"] for d in row["docs"]) == row["useful"]
    first = episode.steps[0].tool_results[0]["content"]
    assert all(f"(Title: {d['title']})" in first for d in search[0]["docs"])


def test_metrics_of_a_training_run(client: TestClient, runs: dict[str, Path]) -> None:
    metrics = client.get(f"/api/runs/{TRAIN}/metrics").json()
    lines = (runs["train"] / "metrics.jsonl").read_text().splitlines()
    assert metrics["records"] == [json.loads(line) for line in lines]
    assert {"reward_mean", "success_rate", "tokens_per_s", "step"} <= set(metrics["keys"])
    assert metrics["keys"] == sorted(metrics["keys"])


def test_envs_list_the_registry_with_tools(client: TestClient) -> None:
    envs = {e["id"]: e for e in client.get("/api/envs").json()["envs"]}
    assert {"KeyChain-v0", "SearchJudge-v0", "SWE-v0"} <= set(envs)
    keychain = envs["KeyChain-v0"]
    assert keychain["description"] and "error" not in keychain
    assert sorted(t["function"]["name"] for t in keychain["tools"]) == ["answer", "lookup"]


def test_the_page_and_its_assets_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert client.get("/static/index.html").text == page.text


def test_a_file_that_grows_or_is_rewritten_is_indexed_again(runs: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    lines = runs["random"].read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]))
    client = TestClient(create_app(RunCatalog([path])))
    assert client.get("/api/runs").json()["runs"][0]["episodes"] == 2
    with open(path, "ab") as handle:  # appended: one more episode, and a line torn by a write in progress
        handle.write(lines[2] + lines[3][:40])
    assert client.get("/api/runs/r0/episodes").json()["total"] == 3
    with open(path, "ab") as handle:
        handle.write(lines[3][40:])
    assert client.get("/api/runs/r0/episodes").json()["total"] == 4
    assert client.get("/api/runs/r0/episodes/3").json()["episode"]["seed"] == json.loads(lines[3])["seed"]
    summary = client.get("/api/runs/r0/summary").json()
    assert summary["rows"][0]["episodes"] == 4
    path.write_bytes(lines[5] + lines[4])  # rewritten: shorter, other episodes
    assert [row["seed"] for row in _all_rows(client, "r0")] == [
        json.loads(lines[5])["seed"],
        json.loads(lines[4])["seed"],
    ]
    assert client.get("/api/runs/r0/summary").json()["rows"][0]["episodes"] == 2
    played = tmp_path / "play.jsonl"  # the play-out file: listed before it exists
    catalog = RunCatalog([path])
    assert catalog.add(played).id == "r1" and catalog.add(played).id == "r1" and len(catalog.runs) == 2
    played.write_bytes(lines[0])
    assert TestClient(create_app(catalog)).get("/api/runs").json()["runs"][1]["episodes"] == 1


def test_numbers_are_read_runs_despite_bad_and_duplicate_lines(runs: dict[str, Path], tmp_path: Path) -> None:
    lines = runs["random"].read_bytes().splitlines(keepends=True)
    path = tmp_path / "messy.jsonl"
    path.write_bytes(lines[0] + b"not json\n" + lines[1] + b"\n" + lines[0] + b'{"seed": 1}\n' + lines[2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = read_run(path, "view")
    catalog = RunCatalog([path])
    assert catalog.runs[0].index.skipped == 3
    client = TestClient(create_app(catalog))
    assert [row["seed"] for row in _all_rows(client, "r0")] == [e.seed for e in expected]
    for n, episode in enumerate(expected):
        assert Episode.model_validate(client.get(f"/api/runs/r0/episodes/{n}").json()["episode"]) == episode


def test_bad_sources_are_refused_with_one_line(runs: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "notes.jsonl").write_text('{"hello": 1}\n')
    (tmp_path / "empty.jsonl").write_text("")
    cases = {
        tmp_path / "missing.jsonl": "no episode file at",
        tmp_path / "notes.jsonl": "is not an episode file: none of its lines is an episode",
        tmp_path / "empty.jsonl": "holds no episodes",
        tmp_path: "is a folder without episodes.jsonl or metrics.jsonl",
    }
    for source, words in cases.items():
        with pytest.raises(RunSourceError, match=words):
            RunCatalog([source])
    with pytest.raises(RunSourceError, match="no tokenizer there"):
        RunCatalog([runs["mixed"]], tokenizer=tmp_path)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_cli_serves_the_runs_and_refuses_bad_input(runs: dict[str, Path], tmp_path: Path) -> None:
    command = [sys.executable, "-m", "horizongym", "view"]
    for args, words in (
        ([str(tmp_path / "missing.jsonl")], "no episode file at"),
        ([str(runs["mixed"]), "--port", "http"], "--port"),
    ):
        result = subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and words in result.stderr and len(result.stderr.strip().splitlines()) <= 3
    port = _free_port()
    play_out = tmp_path / "play.jsonl"
    server = subprocess.Popen(
        [*command, str(runs["mixed"]), str(runs["train"]), "--port", str(port), "--play-out", str(play_out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first
        listed = httpx.get(f"http://127.0.0.1:{port}/api/runs", timeout=30).json()["runs"]
        assert [(r["name"], r["kind"]) for r in listed] == [
            ("mixed.jsonl", "episodes"),
            ("train", "train"),
            ("play.jsonl", "episodes"),
        ]
        taken = subprocess.run(
            [*command, str(runs["mixed"]), "--port", str(port)], capture_output=True, text=True, timeout=60
        )
        assert taken.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in taken.stderr
        assert "choose another --port" in taken.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_ten_thousand_episodes_index_once_and_page_fast(runs: dict[str, Path], tmp_path: Path) -> None:
    lines = runs["mixed"].read_bytes().splitlines()
    big = tmp_path / "big.jsonl"
    with open(big, "wb") as handle:
        for i in range(10_000):
            row = json.loads(lines[i % len(lines)])
            row["seed"] = 1_000 + i
            handle.write(json.dumps(row).encode() + b"\n")
    start = time.perf_counter()
    catalog = RunCatalog([big])
    index_s = time.perf_counter() - start
    client = TestClient(create_app(catalog))
    start = time.perf_counter()
    page = client.get("/api/runs/r0/episodes", params={"policy": "random", "sort": "total_reward", "order": "desc"})
    page_s = time.perf_counter() - start
    start = time.perf_counter()
    detail = client.get("/api/runs/r0/episodes/9999")
    detail_s = time.perf_counter() - start
    assert page.json()["total"] == sum(1 for i in range(10_000) if b'"policy":"random"' in lines[i % len(lines)])
    assert len(page.json()["episodes"]) == 50 and detail.json()["row"]["seed"] == 10_999
    size = os.path.getsize(big) / 1e6
    print(
        f"\nview index: 10000 episodes ({size:.0f} MB) in {index_s:.2f} s; "
        f"filtered sorted page {page_s * 1e3:.0f} ms; one episode {detail_s * 1e3:.0f} ms"
    )


def test_an_unexpected_failure_is_one_json_line_with_status_500(
    runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import horizongym.view.app as app_module

    def broken(run: Any, n: int) -> Any:
        raise KeyError("steps\nsecond line")

    monkeypatch.setattr(app_module, "episode_view", broken)
    client = TestClient(create_app(RunCatalog([runs["mixed"]])), raise_server_exceptions=False)
    response = client.get("/api/runs/r0/episodes/0")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error.startswith("/api/runs/r0/episodes/0 failed: KeyError: 'steps") and "\n" not in error
