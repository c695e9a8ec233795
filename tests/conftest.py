"""Shared fixtures: tiny transformers models built from a config (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def keychain_dialogue() -> dict[str, Any]:
    """A KeyChain-like conversation in two turns, with the real KeyChain tool schemas.

    ``first`` should be answered with ``first_completion`` (a lookup call); ``second`` is
    ``first`` plus that call and its result, answered with ``second_completion`` (plain text).
    """
    from horizongym.envs.keychain.env import KeyChainEnv

    tools = KeyChainEnv().tools.schemas()
    first = [
        {"role": "system", "content": "You play KeyChain. Use the tools."},
        {
            "role": "user",
            "content": "A key-value store holds 12 keys. Start key: amber. A value '-> k' points to key k. "
            "Follow the chain from the start key until you reach a number, then answer that number.",
        },
    ]
    call = {
        "id": "call_0",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"key": "amber"}'},
    }
    second = [
        *first,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_0", "content": "amber = 4821"},
    ]
    return {
        "tools": tools,
        "first": first,
        "first_completion": '<tool_call>{"name": "lookup", "arguments": {"key": "amber"}}</tool_call>',
        "second": second,
        "second_completion": "The chain ends at 4821.",
    }


def _shared_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A folder every xdist worker of this run sees (a private one without xdist)."""
    if worker_id == "master":
        return tmp_path_factory.mktemp("shared")
    return tmp_path_factory.getbasetemp().parent


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A folder shared by every xdist worker of this test run (guard what you build in it with a lock)."""
    return _shared_dir(tmp_path_factory, worker_id)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny Llama with a byte-level tokenizer, saved with ``save_pretrained``."""
    from horizongym.agents.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama", seed=0)


@pytest.fixture(scope="session")
def trained_model_dir(
    tmp_path_factory: pytest.TempPathFactory, worker_id: str, keychain_dialogue: dict[str, Any]
) -> Path:
    """A tiny Llama overfit so that greedy decoding answers both turns of ``keychain_dialogue``.

    Trained once per test run and shared by the xdist workers (a file lock guards it).
    """
    from filelock import FileLock

    from horizongym.agents.tiny import build_tiny_model, sft_overfit

    shared = _shared_dir(tmp_path_factory, worker_id)
    target = shared / "tiny-keychain"
    with FileLock(str(shared / "tiny-keychain.lock")):
        if not (target / "TRAINED").exists():
            build_tiny_model(target, seed=1)
            d = keychain_dialogue
            sft_overfit(
                target,
                [(d["first"], d["first_completion"]), (d["second"], d["second_completion"])],
                tools=d["tools"],
            )
            (target / "TRAINED").write_text("ok\n")
    return target


SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _shared_file(relative: str) -> Path:
    """A real data file in ../shared/data (read in place); a missing file fails the test, never skips it."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.fail(f"the real data file is missing at {path} (see its folder's PROVENANCE.md)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def hotpot_path() -> Path:
    """The real HotpotQA sample (926 questions)."""
    return _shared_file("hotpotqa/questions.jsonl.gz")


@pytest.fixture(scope="session")
def enron_path() -> Path:
    """The real Enron sample (44,714 emails, 137 inboxes)."""
    return _shared_file("enron/emails.jsonl.gz")
