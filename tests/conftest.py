"""Shared fixtures: tiny transformers models built from a config (nothing is downloaded), and the headless
Chromium of the browser tests (Debian's, driven by Selenium)."""

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


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's chromium (``apt-get install chromium``): no browser can be downloaded at test time."""
CHROMEDRIVER = Path("/usr/bin/chromedriver")
"""Debian's chromium-driver, of the same version."""
SCREENSHOTS_ENV = "HORIZONGYM_SCREENSHOTS"
"""A folder where the browser tests also put their screenshots (the README's is made this way)."""


@pytest.fixture(scope="module")
def chromium() -> Any:
    """A headless Chromium driven by Selenium, one per test module. Fails (never skips) when
    chromium, chromedriver or selenium is missing, saying how to install them."""
    browser = ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver"))
    missing = [f"{path} (Debian's {package})" for path, package in browser if not path.is_file()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package (in the dev extra)")
    if missing:
        pytest.fail(
            f"the browser tests need {', '.join(missing)}: run 'make test' (it installs Debian's chromium and "
            "chromium-driver, and the dev extra), or 'apt-get install chromium chromium-driver'",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshot(chromium: Any, tmp_path: Path) -> Any:
    """``screenshot(name)``: the browser's window as ``NAME.png`` in the test's tmp dir, and in
    ``$HORIZONGYM_SCREENSHOTS`` too when that is set; returns the tmp dir's file."""
    import os
    import shutil

    def take(name: str) -> Path:
        path = tmp_path / f"{name}.png"
        assert chromium.save_screenshot(str(path)), f"no screenshot taken of {name}"
        folder = os.environ.get(SCREENSHOTS_ENV)
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(folder) / path.name)
        return path

    return take


@pytest.fixture(scope="module")
def keychain_expert_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A KeyChain run file of two episodes by the expert policy, made by ``horizongym rollout`` once per module."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("recorded") / "run.jsonl"
    args = ["rollout", "KeyChain-v0", "--policy", "expert", "-n", "2", "--out", str(out), "--quiet"]
    made = subprocess.run([sys.executable, "-m", "horizongym", *args], capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    return out


@pytest.fixture
def keychain_run_copy(keychain_expert_run: Path, tmp_path: Path) -> Path:
    """A copy of :func:`keychain_expert_run` in the test's tmp dir, for a test that appends to it."""
    import shutil

    copy = tmp_path / "run.jsonl"
    shutil.copy(keychain_expert_run, copy)
    return copy
