from __future__ import annotations

import pytest
from textkit.roman import from_roman, to_roman

KNOWN = [
    (1, "I"),
    (4, "IV"),
    (9, "IX"),
    (14, "XIV"),
    (40, "XL"),
    (90, "XC"),
    (400, "CD"),
    (1994, "MCMXCIV"),
    (2024, "MMXXIV"),
    (3999, "MMMCMXCIX"),
]


@pytest.mark.parametrize(("number", "numeral"), KNOWN)
def test_to_roman(number: int, numeral: str) -> None:
    assert to_roman(number) == numeral


@pytest.mark.parametrize(("number", "numeral"), KNOWN)
def test_from_roman(number: int, numeral: str) -> None:
    assert from_roman(numeral) == number


def test_round_trip() -> None:
    for number in range(1, 4000):
        assert from_roman(to_roman(number)) == number


def test_from_roman_lower_case_and_spaces() -> None:
    assert from_roman("  xlii ") == 42


@pytest.mark.parametrize("bad", ["", "IIII", "VX", "IC", "ABC", "MMMM"])
def test_from_roman_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        from_roman(bad)


@pytest.mark.parametrize("bad", [0, -1, 4000])
def test_to_roman_range(bad: int) -> None:
    with pytest.raises(ValueError):
        to_roman(bad)


def test_to_roman_type() -> None:
    with pytest.raises(TypeError):
        to_roman(True)
    with pytest.raises(TypeError):
        to_roman(2.0)  # type: ignore[arg-type,unused-ignore]
