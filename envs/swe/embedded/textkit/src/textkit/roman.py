"""Roman numerals, 1 to 3999, in their standard subtractive form."""

from __future__ import annotations

_VALUES = (
    (1000, "M"),
    (900, "CM"),
    (500, "D"),
    (400, "CD"),
    (100, "C"),
    (90, "XC"),
    (50, "L"),
    (40, "XL"),
    (10, "X"),
    (9, "IX"),
    (5, "V"),
    (4, "IV"),
    (1, "I"),
)
_DIGITS = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def to_roman(number: int) -> str:
    """``1994`` -> ``"MCMXCIV"``."""
    if not isinstance(number, int) or isinstance(number, bool):
        raise TypeError("expected an int")
    if number < 1 or number > 3999:
        raise ValueError("Roman numerals cover 1 to 3999")
    parts = []
    for value, letters in _VALUES:
        count, number = divmod(number, value)
        parts.append(letters * count)
    return "".join(parts)


def from_roman(numeral: str) -> int:
    """``"MCMXCIV"`` -> ``1994``; lower case is accepted, non-standard forms (``"IIII"``) are not."""
    text = numeral.strip().upper()
    if not text:
        raise ValueError("empty numeral")
    total = 0
    for index, char in enumerate(text):
        if char not in _DIGITS:
            raise ValueError(f"not a Roman digit: {char!r}")
        value = _DIGITS[char]
        if index + 1 < len(text) and _DIGITS.get(text[index + 1], 0) > value:
            total -= value
        else:
            total += value
    if total < 1 or to_roman(total) != text:
        raise ValueError(f"not a standard Roman numeral: {numeral!r}")
    return total
