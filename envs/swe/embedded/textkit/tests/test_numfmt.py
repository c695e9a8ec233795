from __future__ import annotations

import pytest
from textkit.numfmt import chunked, clamp, human_size, median, ordinal, percent_change


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1, "1st"),
        (2, "2nd"),
        (3, "3rd"),
        (4, "4th"),
        (11, "11th"),
        (12, "12th"),
        (13, "13th"),
        (21, "21st"),
        (22, "22nd"),
        (101, "101st"),
        (111, "111th"),
        (0, "0th"),
    ],
)
def test_ordinal(number: int, text: str) -> None:
    assert ordinal(number) == text


def test_human_size() -> None:
    assert human_size(0) == "0 B"
    assert human_size(1023) == "1023 B"
    assert human_size(1024) == "1.0 KiB"
    assert human_size(1536) == "1.5 KiB"
    assert human_size(5 * 1024**3, precision=2) == "5.00 GiB"


def test_human_size_negative_and_huge() -> None:
    assert human_size(-2048) == "-2.0 KiB"
    assert human_size(1024**6) == "1024.0 PiB"


def test_clamp() -> None:
    assert clamp(5, 0, 10) == 5
    assert clamp(-1, 0, 10) == 0
    assert clamp(11, 0, 10) == 10
    with pytest.raises(ValueError):
        clamp(1, 2, 1)


def test_median() -> None:
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    assert median([7]) == 7
    with pytest.raises(ValueError):
        median([])


def test_percent_change() -> None:
    assert percent_change(50, 75) == 50.0
    assert percent_change(200, 150) == -25.0
    assert percent_change(-50, -25) == 50.0
    assert percent_change(3, 4, digits=2) == 33.33
    with pytest.raises(ZeroDivisionError):
        percent_change(0, 1)


def test_chunked() -> None:
    assert list(chunked([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
    assert list(chunked("abcdef", 3)) == ["abc", "def"]
    assert list(chunked([], 3)) == []
    with pytest.raises(ValueError):
        list(chunked([1], 0))
