from __future__ import annotations

import pytest
from textkit.slug import camel_to_snake, slugify, snake_to_camel, strip_accents


def test_slugify_basic() -> None:
    assert slugify("Hello, World!") == "hello-world"


def test_slugify_accents() -> None:
    assert slugify("Crème Brûlée à la carte") == "creme-brulee-a-la-carte"


def test_slugify_separator_and_case() -> None:
    assert slugify("Hello World", separator="_", lowercase=False) == "Hello_World"


def test_slugify_max_length_cuts_at_word_boundary() -> None:
    assert slugify("the quick brown fox", max_length=12) == "the-quick"
    assert slugify("the quick brown fox", max_length=9) == "the-quick"


def test_slugify_max_length_single_long_word() -> None:
    assert slugify("abcdefghij", max_length=4) == "abcd"


def test_slugify_short_text_is_not_cut() -> None:
    assert slugify("a b", max_length=3) == "a-b"


def test_slugify_empty() -> None:
    assert slugify("  ***  ") == ""


def test_strip_accents() -> None:
    assert strip_accents("Ångström façade") == "Angstrom facade"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("parseHttpResponse", "parse_http_response"),
        ("parseHTTPResponse", "parse_http_response"),
        ("HTMLParser", "html_parser"),
        ("already_snake", "already_snake"),
        ("version2Number", "version2_number"),
        ("kebab-case", "kebab_case"),
    ],
)
def test_camel_to_snake(name: str, expected: str) -> None:
    assert camel_to_snake(name) == expected


def test_snake_to_camel() -> None:
    assert snake_to_camel("parse_http_response") == "parseHttpResponse"
    assert snake_to_camel("parse_http_response", upper_first=True) == "ParseHttpResponse"


def test_snake_to_camel_keeps_leading_underscores() -> None:
    assert snake_to_camel("__private_name") == "__privateName"


def test_snake_to_camel_only_underscores() -> None:
    assert snake_to_camel("___") == "___"
