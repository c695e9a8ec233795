"""Property tests of the command line's JSON options (``--env-kwargs``, and ``train``'s
``--eval-env-kwargs`` and ``--advantage-options``): any text is either taken, or refused with exit
status 2 (1 when the env it builds fails every episode) and one line on standard error, never a
traceback."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import horizongym.cli
from horizongym.cli import main

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
KEYS = ["max_turns", "min_depth", "max_depth", "store_size", "format_penalty", "tool_instructions", "gamma", "eps"]
"""Keys that KeyChain-v0 or an advantage estimator takes: their values get tried with every type."""
OBJECTS = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), JSON_VALUES, max_size=3).map(json.dumps)
FRAGMENTS = [
    "{",
    "}",
    "[",
    "]",
    '"',
    ":",
    ",",
    "null",
    "NaN",
    "-Infinity",
    "1e999",
    "\\u",
    "\\",
    "'",
    "\x00",
    " ",
    "--",
]
FRAGMENTS += ["[" * 5000, "9" * 5000]  # deeper than the parser goes, a number longer than Python reads
TEXTS = st.one_of(
    st.text(),
    st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), max_size=12).map("".join),
    JSON_VALUES.map(json.dumps),
    OBJECTS,
    OBJECTS.flatmap(lambda text: st.integers(0, len(text)).map(lambda cut: text[:cut])),  # cut short
)


def is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


def assert_refused_in_one_line(code: int, err: str, flag: str, text: str) -> None:
    """Exit status 1 or 2 with exactly one line, ``...: error: ...``, naming the flag when the text is not
    a JSON object."""
    assert code in (1, 2), (code, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and ": error: " in lines[0], err
    if not is_json_object(text):
        assert code == 2 and flag in lines[0]


class ReachedTraining(Exception):
    """Raised in place of loading a model: the settings were all taken."""


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(text=TEXTS)
def test_rollout_env_kwargs_take_any_text(text: str, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "e.jsonl"
    out.unlink(missing_ok=True)
    args = ["rollout", "KeyChain-v0", "--policy", "random", "-n", "1", "--max-turns", "3", "--timeout", "10"]
    code = main([*args, "--out", str(out), "--quiet", f"--env-kwargs={text}"])
    err = capsys.readouterr().err
    if code != 0:
        assert_refused_in_one_line(code, err, "--env-kwargs", text)
    else:
        assert is_json_object(text) and out.exists()


@SETTINGS
@given(text=TEXTS)
def test_play_env_kwargs_take_any_text(text: str, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("<lookup>amber</lookup>\n/quit\n"))
    code = main(["play", "KeyChain-v0", f"--env-kwargs={text}"])
    err = capsys.readouterr().err
    if code != 0:
        assert_refused_in_one_line(code, err, "--env-kwargs", text)
    else:
        assert is_json_object(text)


@SETTINGS
@given(flag=st.sampled_from(["--env-kwargs", "--eval-env-kwargs", "--advantage-options"]), text=TEXTS)
def test_train_json_options_take_any_text(
    flag: str, text: str, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def reached(*args: Any, **kwargs: Any) -> None:
        raise ReachedTraining

    monkeypatch.setattr(horizongym.cli, "_train_model", reached)
    args = ["train", "KeyChain-v0", "--out", str(tmp_path / "run"), "--eval-every", "1", f"{flag}={text}"]
    try:
        code = main(args)
    except ReachedTraining:
        assert is_json_object(text)
        return
    assert_refused_in_one_line(code, capsys.readouterr().err, flag, text)
    assert code == 2
