"""``horizongym export``: real runs as a Hugging Face dataset TRL reads, ATIF trajectories, chat SFT JSONL."""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from datasets import load_from_disk
from trl.data_utils import apply_chat_template, is_conversational, maybe_apply_chat_template

import horizongym
from horizongym.agents import Action, Message, Policy, RandomPolicy, expert_for
from horizongym.agents.base import PolicyError, PolicyUnavailable
from horizongym.agents.experts.keychain import KeyChainExpert
from horizongym.agents.hf import TransformersPolicy
from horizongym.agents.tiny import build_byte_tokenizer
from horizongym.cli import main
from horizongym.envs.keychain import KeyChainEnv
from horizongym.training.rollouts import EnvRecipe, Episode, EpisodeStore, RolloutEngine, read_episodes
from horizongym.training.rollouts.atif import ATIF_VERSION
from horizongym.training.rollouts.export import (
    FORMATS,
    ExportError,
    chat_messages,
    export_episodes,
    export_run,
    reward_components,
)


class BrokenChainEnv(KeyChainEnv):
    """KeyChain whose second step raises: an env bug that ends the episode with its action unanswered."""

    def step(self, action: str) -> Any:
        if self.state.turn >= 1:
            raise RuntimeError("the chain store is corrupt")
        return super().step(action)


horizongym.register("ExportBrokenChain-v0", BrokenChainEnv)


def _task_kind(messages: list[Message]) -> int:
    """0, 1 or 2, fixed by the task's first observation: how :class:`LosesTheThread` behaves on it."""
    first = next(m["content"] for m in messages if m["role"] == "user")
    return zlib.crc32(first.encode()) % 3


class LosesTheThread(KeyChainExpert):
    """The expert, whose second turn fails on two tasks of three: a lost server, or a reply it cannot parse."""

    name = "flaky-expert"

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        if len(messages) > 2 and _task_kind(messages) == 0:
            raise PolicyUnavailable("cannot reach http://127.0.0.1:9/v1/chat/completions: ConnectError")
        if len(messages) > 2 and _task_kind(messages) == 1:
            raise PolicyError("the model's reply holds no text")
        return await super().act(messages, tools, seed=seed)


class SaysHello(Policy):
    name = "hello"

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        return Action(text="hello")


def rollout(path: Path, env_id: str, policy: Policy, tasks: int, group: int = 1, **engine: Any) -> None:
    """Append ``policy``'s episodes on ``env_id`` to the run file ``path``, as ``horizongym rollout`` does."""
    with (
        EpisodeStore(path) as store,
        RolloutEngine(EnvRecipe(env_id), policy, concurrency=4, store=store, progress=False, **engine) as run,
    ):
        run.run_sync(tasks, group)


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run file: the KeyChain expert (native tool calls), the random policy (text, native and broken
    calls), an expert that fails on infrastructure or on its own, and an env that raises mid-episode."""
    path = tmp_path_factory.mktemp("mixed") / "run.jsonl"
    rollout(path, "KeyChain-v0", expert_for("KeyChain-v0"), tasks=3, group=2)
    rollout(path, "KeyChain-v0", RandomPolicy(), tasks=3, group=2, max_turns=5, system_prompt="Follow the chain.")
    rollout(path, "KeyChain-v0", LosesTheThread(), tasks=9, max_attempts=2)
    rollout(path, "ExportBrokenChain-v0", expert_for("KeyChain-v0"), tasks=2)
    return path


@pytest.fixture(scope="module")
def episodes(mixed_run: Path) -> list[Episode]:
    stored = read_episodes(mixed_run)
    assert {e.messages[0]["role"] for e in stored} == {"system", "user"}
    outcomes = {e.outcome for e in stored}
    assert outcomes == {"completed", "infra_error", "policy_error", "env_error"}, outcomes  # the run has every kind
    return stored


@pytest.fixture(scope="module")
def keychain_tools() -> list[dict[str, Any]]:
    env = horizongym.make("KeyChain-v0")
    return list(env.reset(seed=0)[1]["tools"])


def by_key(episodes: list[Episode]) -> dict[tuple[str, str, int, int], Episode]:
    return {(e.env_id, e.policy, e.seed, e.sample): e for e in episodes}


def cli(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    """``horizongym export ARGS`` in this process: exit status, output, error output."""
    code = main(["export", *[str(a) for a in args]])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_same_conversation(got: list[dict[str, Any]], episode: Episode, *, arguments_as_text: bool) -> None:
    """``got`` is the episode's conversation: the same turns, calls and replies; tool-call arguments as
    JSON text (OpenAI's API) or as objects (chat templates)."""
    assert len(got) == len(episode.messages)
    for message, recorded in zip(got, episode.messages, strict=True):
        assert (message["role"], message["content"]) == (recorded["role"], recorded["content"])
        assert message.get("tool_call_id") == recorded.get("tool_call_id")
        calls = [
            (c["id"], c["type"], c["function"]["name"], c["function"]["arguments"])
            for c in message.get("tool_calls") or []
        ]
        expected = [
            (c["id"], c["type"], c["function"]["name"], c["function"]["arguments"])
            for c in recorded.get("tool_calls") or []
        ]
        if not arguments_as_text:
            expected = [(*call[:3], json.loads(call[3])) for call in expected]
            assert all(isinstance(call[3], dict) for call in calls)
        assert calls == expected


# ----- hf --------------------------------------------------------------------------------------


def test_hf_rows_hold_each_earned_episode_and_trl_reads_them(
    mixed_run: Path, episodes: list[Episode], keychain_tools: list[dict[str, Any]], tmp_path: Path, capsys: Any
) -> None:
    code, out, err = cli(capsys, mixed_run, "--format", "hf", "--out", tmp_path / "hf")
    assert code == 0, err
    earned = [e for e in episodes if e.trainable]
    failed = [e for e in episodes if not e.trainable]
    counts = ", ".join(f"{outcome} {n}" for outcome, n in Counter(e.outcome for e in failed).most_common())
    assert out.strip() == (
        f"export: wrote {len(earned)} episodes as hf to {tmp_path / 'hf'}; left out {len(failed)} failed "
        f"({counts}; --include-failed keeps them)"
    )
    dataset = load_from_disk(str(tmp_path / "hf"))
    assert len(dataset) == len(earned)
    stored = by_key(episodes)
    tokenizer = build_byte_tokenizer()
    for row in dataset:
        episode = stored[(row["env_id"], row["policy"], row["seed"], row["sample"])]
        assert_same_conversation(row["prompt"] + row["completion"], episode, arguments_as_text=False)
        opening = ["system", "user"] if episode.policy == "random" else ["user"]  # its run has a system prompt
        assert [m["role"] for m in row["prompt"]] == opening
        assert row["completion"][0]["role"] == "assistant"
        assert row["tools"] == keychain_tools
        assert row["reward"] == episode.total_reward
        assert row["reward_components"] == reward_components(episode)
        assert sum(row["reward_components"].values()) == pytest.approx(row["reward"])
        assert (row["success"], row["outcome"], row["trainable"]) == (episode.success, "completed", True)
        assert (row["task_id"], row["num_turns"], row["env_kwargs"]) == (episode.task_id, episode.num_turns, {})
        assert row["prompt_token_ids"] is row["completion_token_ids"] is row["logprobs"] is None  # scripted
        # TRL's own reading of a conversational prompt-completion row, tools rendered into the prompt
        assert is_conversational(row)
        text = apply_chat_template(row, tokenizer, tools=row["tools"])
        assert text["prompt"].endswith("<|im_start|>assistant\n") and '"name": "lookup"' in text["prompt"]
        assert set(text) == {"prompt", "completion"}
        for call in (c for m in row["completion"] for c in m.get("tool_calls") or []):
            arguments = json.dumps(call["function"]["arguments"])  # an object, rendered once as JSON
            assert f'"arguments": {arguments}' in text["completion"]
        for reply in (m for m in row["completion"] if m["role"] == "tool"):
            assert f"<tool_response>\n{reply['content']}\n</tool_response>" in text["completion"]


def test_hf_messages_layout_is_trl_language_modeling(mixed_run: Path, episodes: list[Episode], tmp_path: Path) -> None:
    result = export_run(mixed_run, "hf", tmp_path / "hf", layout="messages", include_failed=True)
    dataset = load_from_disk(str(tmp_path / "hf"))
    assert "prompt" not in dataset.column_names and "messages" in dataset.column_names
    stored = by_key(episodes)
    assert result.written == len(dataset) == len(episodes)  # every episode here has messages
    assert {row["outcome"] for row in dataset} == {"completed", "infra_error", "policy_error", "env_error"}
    tokenizer = build_byte_tokenizer()
    for row in dataset:
        episode = stored[(row["env_id"], row["policy"], row["seed"], row["sample"])]
        assert_same_conversation(row["messages"], episode, arguments_as_text=False)
        assert row["trainable"] == episode.trainable
        rendered = maybe_apply_chat_template(row, tokenizer, tools=row["tools"])
        assert set(rendered) == {"text"} and rendered["text"].startswith("<|im_start|>system\n")


def test_hf_keeps_a_local_models_token_ids_and_logprobs_per_turn(tiny_model_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run.jsonl"
    policy = TransformersPolicy(tiny_model_dir, max_new_tokens=6, temperature=1.0, device="cpu")
    rollout(run, "KeyChain-v0", policy, tasks=2, max_turns=2)
    (episode, *_) = stored = read_episodes(run)
    assert all(s.token_ids and s.logprobs and s.prompt_token_ids for e in stored for s in e.steps)
    export_run(run, "hf", tmp_path / "hf")
    export_run(run, "atif", tmp_path / "atif")
    rows = {(row["seed"], row["sample"]): row for row in load_from_disk(str(tmp_path / "hf"))}
    for episode in stored:
        row = rows[episode.key]
        assert row["completion_token_ids"] == [s.token_ids for s in episode.steps]
        assert row["prompt_token_ids"] == [s.prompt_token_ids for s in episode.steps]
        assert row["logprobs"] == [s.logprobs for s in episode.steps]  # float64 both ways: exact
    for path in sorted((tmp_path / "atif").iterdir()):
        trajectory = json.loads(path.read_text())
        validate_atif(trajectory)
        episode = next(e for e in stored if e.seed == trajectory["extra"]["seed"])
        agent_steps = [s for s in trajectory["steps"] if s["source"] == "agent"]
        assert [s["metrics"]["completion_token_ids"] for s in agent_steps] == [s.token_ids for s in episode.steps]
        assert [s["metrics"]["logprobs"] for s in agent_steps] == [s.logprobs for s in episode.steps]
        assert [s["metrics"]["prompt_tokens"] for s in agent_steps] == [
            len(s.prompt_token_ids or []) for s in episode.steps
        ]
        assert trajectory["final_metrics"]["total_completion_tokens"] == episode.num_generated_tokens


# ----- sft-jsonl -------------------------------------------------------------------------------


def test_sft_jsonl_is_openai_chat_format(
    mixed_run: Path, episodes: list[Episode], keychain_tools: list[dict[str, Any]], tmp_path: Path
) -> None:
    out = tmp_path / "sft.jsonl"
    result = export_run(mixed_run, "sft-jsonl", out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    earned = [e for e in episodes if e.trainable]
    assert result.written == len(lines) == len(earned)
    for line, episode in zip(lines, earned, strict=True):  # in run order
        assert set(line) == {"messages", "tools"} and line["tools"] == keychain_tools
        assert_same_conversation(line["messages"], episode, arguments_as_text=True)
        assert_openai_conversation(line["messages"])


def test_only_success_keeps_the_solved_episodes(mixed_run: Path, episodes: list[Episode], tmp_path: Path) -> None:
    out = tmp_path / "sft.jsonl"
    result = export_run(mixed_run, "sft-jsonl", out, only_success=True)
    solved = [e for e in episodes if e.trainable and e.success]
    unsolved = [e for e in episodes if e.trainable and not e.success]
    assert solved and unsolved
    assert result.written == len(out.read_text().splitlines()) == len(solved)
    assert f"{len(unsolved)} unsuccessful (--only-success)" in result.line()


def assert_openai_conversation(messages: list[dict[str, Any]]) -> None:
    """OpenAI's chat rules: known roles, string arguments, each tool reply answers an open call of the turn."""
    open_calls: set[str] = set()
    for message in messages:
        assert set(message) <= {"role", "content", "tool_calls", "tool_call_id", "name"}
        assert message["role"] in {"system", "user", "assistant", "tool"}
        if message["role"] == "assistant":
            open_calls = set()
            for call in message.get("tool_calls") or []:
                assert call["type"] == "function" and isinstance(call["function"]["arguments"], str)
                assert isinstance(json.loads(call["function"]["arguments"]), dict)
                open_calls.add(call["id"])
        elif message["role"] == "tool":
            assert message["tool_call_id"] in open_calls
            open_calls.discard(message["tool_call_id"])


# ----- atif ------------------------------------------------------------------------------------

# The field rules of ATIF v1.6 (Harbor, rfcs/0001-trajectory-format.md; the models in
# harbor.models.trajectories): every object admits only its own keys; required keys must be there.
ATIF_OBJECTS: dict[str, tuple[set[str], set[str]]] = {  # name: (required keys, optional keys)
    "trajectory": (
        {"schema_version", "session_id", "agent", "steps"},
        {"notes", "final_metrics", "continued_trajectory_ref", "extra"},
    ),
    "agent": ({"name", "version"}, {"model_name", "tool_definitions", "extra"}),
    "step": (
        {"step_id", "source", "message"},
        {
            "timestamp",
            "model_name",
            "reasoning_effort",
            "reasoning_content",
            "tool_calls",
            "observation",
            "metrics",
            "is_copied_context",
            "extra",
        },
    ),
    "tool_call": ({"tool_call_id", "function_name", "arguments"}, set()),
    "observation": ({"results"}, set()),
    "result": (set(), {"source_call_id", "content", "subagent_trajectory_ref"}),
    "metrics": (
        set(),
        {
            "prompt_tokens",
            "completion_tokens",
            "cached_tokens",
            "cost_usd",
            "prompt_token_ids",
            "completion_token_ids",
            "logprobs",
            "extra",
        },
    ),
    "final_metrics": (
        set(),
        {
            "total_prompt_tokens",
            "total_completion_tokens",
            "total_cached_tokens",
            "total_cost_usd",
            "total_steps",
            "extra",
        },
    ),
}
AGENT_ONLY = {"model_name", "reasoning_effort", "reasoning_content", "tool_calls", "metrics"}


def check_keys(kind: str, value: Any) -> None:
    required, optional = ATIF_OBJECTS[kind]
    assert isinstance(value, dict), f"{kind} is not an object"
    assert required <= set(value), f"{kind} lacks {required - set(value)}"
    assert set(value) <= required | optional, (
        f"{kind} has keys ATIF does not define: {set(value) - required - optional}"
    )
    if "extra" in value:
        assert isinstance(value["extra"], dict)


def validate_atif(trajectory: dict[str, Any]) -> None:
    """Fail unless ``trajectory`` follows ATIF v1.6's field rules as the RFC states them."""
    check_keys("trajectory", trajectory)
    assert trajectory["schema_version"] == ATIF_VERSION == "ATIF-v1.6"
    assert isinstance(trajectory["session_id"], str) and trajectory["session_id"]
    check_keys("agent", trajectory["agent"])
    assert isinstance(trajectory["agent"]["name"], str) and isinstance(trajectory["agent"]["version"], str)
    for tool in trajectory["agent"].get("tool_definitions", []):
        assert tool["type"] == "function" and isinstance(tool["function"]["name"], str)
    steps = trajectory["steps"]
    assert isinstance(steps, list) and len(steps) >= 1
    for number, step in enumerate(steps, start=1):
        check_keys("step", step)
        assert step["step_id"] == number  # sequential from 1
        assert step["source"] in {"system", "user", "agent"}
        assert isinstance(step["message"], str)
        if "timestamp" in step:
            datetime.fromisoformat(step["timestamp"].replace("Z", "+00:00"))
        if step["source"] != "agent":
            assert not AGENT_ONLY & set(step), f"step {number}: {AGENT_ONLY & set(step)} only on agent steps"
        call_ids = []
        for call in step.get("tool_calls", []):
            check_keys("tool_call", call)
            assert isinstance(call["tool_call_id"], str) and isinstance(call["function_name"], str)
            assert isinstance(call["arguments"], dict)
            call_ids.append(call["tool_call_id"])
        assert len(call_ids) == len(set(call_ids)), f"step {number} repeats a tool_call_id"
        if "observation" in step:
            check_keys("observation", step["observation"])
            for result in step["observation"]["results"]:
                check_keys("result", result)
                if result.get("source_call_id") is not None:
                    assert result["source_call_id"] in call_ids, f"step {number}: result of a call it did not make"
                assert isinstance(result.get("content", ""), str)
        if "metrics" in step:
            metrics = step["metrics"]
            check_keys("metrics", metrics)
            for key in ("prompt_token_ids", "completion_token_ids"):
                assert all(isinstance(t, int) for t in metrics.get(key, []))
            assert all(isinstance(p, float) for p in metrics.get("logprobs", []))
    if "final_metrics" in trajectory:
        check_keys("final_metrics", trajectory["final_metrics"])
        assert trajectory["final_metrics"].get("total_steps", len(steps)) >= 0


def test_atif_writes_one_valid_trajectory_per_episode(
    mixed_run: Path, episodes: list[Episode], keychain_tools: list[dict[str, Any]], tmp_path: Path, capsys: Any
) -> None:
    code, out, err = cli(capsys, mixed_run, "--format", "atif", "--out", tmp_path / "atif")
    assert code == 0, err
    assert out.strip() == f"export: wrote {len(episodes)} episodes as atif to {tmp_path / 'atif'}"  # failed ones too
    files = sorted((tmp_path / "atif").iterdir())
    assert len(files) == len(episodes)
    stored = by_key(episodes)
    for path in files:
        trajectory = json.loads(path.read_text())
        validate_atif(trajectory)
        facts = trajectory["extra"]
        episode = stored[(facts["env_id"], facts["policy"], facts["seed"], facts["sample"])]
        assert (facts["outcome"], facts["success"], facts["total_reward"]) == (
            episode.outcome,
            episode.success,
            episode.total_reward,
        )
        assert trajectory["agent"]["tool_definitions"] == keychain_tools
        assert trajectory["final_metrics"]["total_steps"] == len(trajectory["steps"])
        steps = trajectory["steps"]
        opening = 2 if episode.policy == "random" else 1  # the random policy's run has a system prompt
        assert [(s["source"], s["message"]) for s in steps[:opening]] == [
            (m["role"], m["content"]) for m in episode.messages[:opening]
        ]
        assert steps[opening]["source"] == "agent"
        agent = [s for s in steps if s["source"] == "agent"]
        unfinished = episode.unfinished_action is not None
        assert len(agent) == episode.num_turns + unfinished
        assistant = [m for m in episode.messages if m["role"] == "assistant"]
        for step, message in zip(agent, assistant, strict=True):
            assert step["message"] == (message["content"] or "")
            native = message.get("tool_calls") or []
            if native:  # the policy's own calls, ids and all
                assert [(c["tool_call_id"], c["function_name"], c["arguments"]) for c in step["tool_calls"]] == [
                    (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in native
                ]
        for step, record, message in zip(agent, episode.steps, assistant, strict=False):
            (result,) = step["observation"]["results"]  # one call or one text action per KeyChain turn
            assert result["content"] == record.observation
            assert step["extra"]["reward"] == record.reward
            assert step["extra"]["reward_components"] == record.reward_components
            if message.get("tool_calls"):  # a native call's answer is paired with it
                assert result["source_call_id"] == step["tool_calls"][0]["tool_call_id"]
        if unfinished:  # the env raised on this action: it has no observation
            assert episode.outcome == "env_error"
            assert "observation" not in agent[-1] and agent[-1]["extra"]["unfinished"] is True
            assert "the chain store is corrupt" in agent[-1]["extra"]["error"]
    assert any(stored_episode.unfinished_action for stored_episode in episodes)


def test_atif_pairs_calls_the_env_parsed_from_text(mixed_run: Path, episodes: list[Episode], tmp_path: Path) -> None:
    """A text action's Hermes block is a tool call too: listed with an id, its answer unpaired (it is text)."""
    random_run = [e for e in episodes if e.policy == "random"]
    export_episodes(random_run, "atif", tmp_path / "atif")
    parsed = 0
    for path in sorted((tmp_path / "atif").iterdir()):
        trajectory = json.loads(path.read_text())
        episode = next(
            e for e in random_run if (e.seed, e.sample) == (trajectory["extra"]["seed"], trajectory["extra"]["sample"])
        )
        agent = [s for s in trajectory["steps"] if s["source"] == "agent"]
        assistant = [m for m in episode.messages if m["role"] == "assistant"]
        for turn, (step, message, record) in enumerate(zip(agent, assistant, episode.steps, strict=True)):
            if message.get("tool_calls") or not record.tool_calls:
                continue
            parsed += 1
            assert step["message"] == record.action
            assert [c["tool_call_id"] for c in step["tool_calls"]] == [
                f"call_{turn}_{i}" for i in range(len(record.tool_calls))
            ]
            assert [c["arguments"] for c in step["tool_calls"]] == [c["arguments"] for c in record.tool_calls]
            assert "source_call_id" not in step["observation"]["results"][0]
    assert parsed, "the random policy wrote no call as text in this run"


# ----- what is left out, and mistakes ----------------------------------------------------------


def test_a_run_with_bad_lines_exports_its_good_episodes(mixed_run: Path, tmp_path: Path, capsys: Any) -> None:
    run = tmp_path / "run.jsonl"
    lines = mixed_run.read_text().splitlines(keepends=True)
    run.write_text(lines[0] + "not json\n" + lines[0] + "".join(lines[1:4]))
    code, out, err = cli(capsys, run, "--format", "sft-jsonl", "--out", tmp_path / "sft.jsonl")
    assert code == 0
    assert out.startswith(f"export: wrote 4 episodes as sft-jsonl to {tmp_path / 'sft.jsonl'}")
    assert f"{run}:2: skipped not JSON" in err and f"{run}:3: skipped a duplicate of line 1" in err


@pytest.fixture()
def keychain_file(mixed_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run.jsonl"
    run.write_text(mixed_run.read_text().splitlines(keepends=True)[0])
    return run


def mistakes(tmp_path: Path, keychain_file: Path) -> Iterator[tuple[list[Any], str]]:
    """(arguments of ``horizongym export``, what its one-line error must say)."""
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "junk.jsonl").write_text('{"hello": 1}\n')
    (tmp_path / "taken.jsonl").write_text("a line that must survive\n")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "kept.txt").write_text("keep me\n")
    (tmp_path / "a-file").write_text("x\n")
    hello_run = tmp_path / "hello.jsonl"
    with EpisodeStore(hello_run) as store:
        store.append(read_episodes(keychain_file)[0].model_copy(update={"env_id": "NoSuchEnv-v0"}))
    yield [tmp_path / "missing.jsonl", "--format", "hf", "--out", tmp_path / "o"], "no episode file at"
    yield [tmp_path, "--format", "hf", "--out", tmp_path / "o"], "no episode file at"
    yield [tmp_path / "empty.jsonl", "--format", "hf", "--out", tmp_path / "o"], "holds no episodes"
    yield [tmp_path / "junk.jsonl", "--format", "atif", "--out", tmp_path / "o"], "is not an episode file"
    yield [keychain_file, "--format", "parquet", "--out", tmp_path / "o"], "invalid choice: 'parquet'"
    yield [keychain_file, "--format", "hf"], "the following arguments are required: --out"
    yield [keychain_file, "--format", "atif", "--layout", "messages", "--out", tmp_path / "o"], "--layout goes with"
    yield [keychain_file, "--format", "hf", "--out", tmp_path / "a-file" / "hf"], "cannot write --out"
    yield [keychain_file, "--format", "hf", "--out", tmp_path / "a-file"], "is a file; --format hf writes a folder"
    yield [keychain_file, "--format", "sft-jsonl", "--out", tmp_path / "taken"], "is a folder"
    yield [keychain_file, "--format", "sft-jsonl", "--out", tmp_path / "taken.jsonl"], "already exists"
    yield [keychain_file, "--format", "atif", "--out", tmp_path / "taken"], "already exists"
    yield [keychain_file, "--format", "sft-jsonl", "--out", keychain_file], "is the run being read"
    yield [hello_run, "--format", "sft-jsonl", "--out", tmp_path / "o"], "cannot build NoSuchEnv-v0"


def test_each_mistake_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, keychain_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = None
    for arguments, words in mistakes(tmp_path, keychain_file):
        before = before or sorted(p.name for p in tmp_path.rglob("*"))
        code, out, err = cli(capsys, *arguments)
        assert code == 2, (arguments, out, err)
        *warnings, error = err.splitlines()  # a file of bad lines is warned about line by line first
        assert error.split(": error: ")[0] in {"horizongym", "horizongym export"}, err
        assert all(line.startswith("horizongym: warning: ") for line in warnings), err
        assert words in error, err
        assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no export, no scratch left behind
    assert (tmp_path / "taken.jsonl").read_text() == "a line that must survive\n"
    assert (tmp_path / "taken" / "kept.txt").read_text() == "keep me\n"


def test_an_env_of_ones_own_needs_its_module_imported(keychain_file: Path, tmp_path: Path, capsys: Any) -> None:
    run = tmp_path / "mine.jsonl"
    with EpisodeStore(run) as store:
        store.append(read_episodes(keychain_file)[0].model_copy(update={"env_id": "horizongym/NotRegistered-v0"}))
    code, _, err = cli(capsys, run, "--format", "hf", "--out", tmp_path / "hf")
    assert code == 2 and "cannot build horizongym/NotRegistered-v0" in err and "--import MODULE" in err


def test_a_run_with_nothing_left_to_export_says_what_was_left_out(tmp_path: Path, capsys: Any) -> None:
    run = tmp_path / "run.jsonl"
    rollout(run, "KeyChain-v0", SaysHello(), tasks=2, max_turns=1)
    code, _, err = cli(capsys, run, "--format", "hf", "--out", tmp_path / "hf", "--only-success")
    assert code == 2
    assert (
        err.strip()
        == "horizongym: error: nothing to export: all 2 episodes were left out (2 unsuccessful (--only-success))"
    )
    assert not (tmp_path / "hf").exists()


def test_an_empty_folder_may_take_the_export(keychain_file: Path, tmp_path: Path) -> None:
    (tmp_path / "atif").mkdir()
    assert export_run(keychain_file, "atif", tmp_path / "atif").written == 1
    assert len(list((tmp_path / "atif").iterdir())) == 1


def test_the_api_refuses_unknown_formats_and_layouts(keychain_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown format 'csv'; choose one of hf, atif, sft-jsonl"):
        export_run(keychain_file, "csv", tmp_path / "o")
    with pytest.raises(ExportError, match="unknown layout 'chatml'"):
        export_run(keychain_file, "hf", tmp_path / "o", layout="chatml")
    parser_formats = next(
        a.choices
        for a in _export_parser()._actions
        if a.dest == "format"  # the command offers what the module writes
    )
    assert tuple(parser_formats) == FORMATS


def _export_parser() -> Any:
    from horizongym.cli import build_parser

    commands: Any = next(a for a in build_parser()._actions if a.dest == "command")
    return commands.choices["export"]


def test_chat_messages_leave_out_the_records_own_marks(episodes: list[Episode]) -> None:
    """A record marks a fresh context on its user message; chat formats have no such key."""
    episode = episodes[0]
    marked = [*episode.messages, {"role": "user", "content": "a fresh start", "fresh_context": True}]
    messages = chat_messages(episode.model_copy(update={"messages": marked}), arguments="json")
    assert messages[-1] == {"role": "user", "content": "a fresh start"}
    assert messages[:-1] == [dict(m) for m in episode.messages]  # the expert's arguments are JSON text already


def test_episodes_are_not_changed_by_an_export(episodes: list[Episode], tmp_path: Path) -> None:
    before = [e.model_dump_json() for e in episodes]
    for format in FORMATS:
        export_episodes(episodes, format, tmp_path / format, include_failed=True, tools=lambda e: [])
    assert [e.model_dump_json() for e in episodes] == before
