from __future__ import annotations

import pytest
from textkit.ini import IniError, get_bool, get_int, get_list, parse_ini

SAMPLE = """
# global settings
name = demo

[server]
Host = example.org
port: 8080
; a comment
debug = yes
paths = /a,
    /b
[client]
retries = 1_000
"""


def test_sections_and_default() -> None:
    config = parse_ini(SAMPLE)
    assert config["DEFAULT"] == {"name": "demo"}
    assert set(config) == {"DEFAULT", "server", "client"}


def test_keys_lower_cased_and_separators() -> None:
    server = parse_ini(SAMPLE)["server"]
    assert server["host"] == "example.org"
    assert server["port"] == "8080"


def test_continuation_lines() -> None:
    assert parse_ini(SAMPLE)["server"]["paths"] == "/a,\n/b"


def test_value_with_separator_characters() -> None:
    assert parse_ini("url = http://x:80/a=b")["DEFAULT"]["url"] == "http://x:80/a=b"


def test_repeated_section_and_key() -> None:
    config = parse_ini("[a]\nx = 1\n[b]\ny = 2\n[a]\nx = 3\nz = 4")
    assert config["a"] == {"x": "3", "z": "4"}


def test_empty_section_kept() -> None:
    assert parse_ini("[empty]\n")["empty"] == {}


@pytest.mark.parametrize("text", ["[broken", "[]", "just words", " = value"])
def test_errors(text: str) -> None:
    with pytest.raises(IniError):
        parse_ini(text)


def test_error_line_number() -> None:
    with pytest.raises(IniError) as info:
        parse_ini("a = 1\n\nbad line")
    assert info.value.line_number == 3


def test_get_bool() -> None:
    server = parse_ini(SAMPLE)["server"]
    assert get_bool(server, "debug") is True
    assert get_bool({"x": "Off"}, "x") is False
    assert get_bool(server, "missing", default=True) is True
    with pytest.raises(ValueError):
        get_bool({"x": "maybe"}, "x")


def test_get_int() -> None:
    config = parse_ini(SAMPLE)
    assert get_int(config["client"], "retries") == 1000
    assert get_int(config["server"], "port") == 8080
    assert get_int(config["server"], "missing", default=7) == 7


def test_get_list() -> None:
    server = parse_ini(SAMPLE)["server"]
    assert get_list(server, "paths") == ["/a", "/b"]
    assert get_list({"x": "a; b;;c"}, "x", separator=";") == ["a", "b", "c"]
    assert get_list(server, "missing") == []
