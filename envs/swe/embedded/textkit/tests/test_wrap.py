from __future__ import annotations

import pytest
from textkit.wrap import fill, indent, truncate, wrap


def test_wrap_greedy() -> None:
    assert wrap("the quick brown fox jumps over the lazy dog", 10) == [
        "the quick",
        "brown fox",
        "jumps over",
        "the lazy",
        "dog",
    ]


def test_wrap_exact_width_fits() -> None:
    assert wrap("abcd efgh", 9) == ["abcd efgh"]
    assert wrap("abcd efgh", 8) == ["abcd", "efgh"]


def test_wrap_collapses_whitespace() -> None:
    assert wrap("  a \n\t b  ", 10) == ["a b"]


def test_wrap_splits_long_words() -> None:
    assert wrap("xy abcdefghij z", 4) == ["xy", "abcd", "efgh", "ij z"]


def test_wrap_empty() -> None:
    assert wrap("", 5) == []


def test_wrap_rejects_zero_width() -> None:
    with pytest.raises(ValueError):
        wrap("a", 0)


def test_fill_keeps_paragraphs() -> None:
    assert fill("one two three\n\nfour five", 7) == "one two\nthree\n\nfour\nfive"


def test_indent() -> None:
    assert indent("a\n\nb", "> ") == "> a\n\n> b"
    assert indent("a\n\nb", "> ", skip_blank=False) == "> a\n> \n> b"


def test_truncate_short_text_unchanged() -> None:
    assert truncate("short", 10) == "short"
    assert truncate("exactly10!", 10) == "exactly10!"


def test_truncate_on_word_boundary() -> None:
    assert truncate("the quick brown fox", 14) == "the quick..."


def test_truncate_keeps_whole_word_before_space() -> None:
    assert truncate("the quick brown fox", 13) == "the quick..."


def test_truncate_without_spaces() -> None:
    assert truncate("abcdefghijkl", 8) == "abcde..."


def test_truncate_custom_placeholder() -> None:
    assert truncate("hello wonderful world", 12, placeholder=" [+]") == "hello [+]"


def test_truncate_too_narrow() -> None:
    with pytest.raises(ValueError):
        truncate("hello world", 2)
