import math

import pytest
from covkit.units import convert, dimension, parse_quantity


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [(1.0, "km", "m", 1000.0), (12.0, "in", "ft", 1.0), (90.0, "min", "h", 1.5), (1.0, "mi", "km", 1.609344)],
)
def test_convert(value: float, source: str, target: str, expected: float) -> None:
    assert math.isclose(convert(value, source, target), expected)


def test_convert_across_dimensions_fails() -> None:
    with pytest.raises(ValueError, match="cannot convert"):
        convert(1.0, "km", "s")


def test_dimension() -> None:
    assert dimension("ms") == "time" and dimension("cm") == "length"
    with pytest.raises(ValueError):
        dimension("parsec")


def test_parse_quantity() -> None:
    assert parse_quantity("2.5 km") == (2.5, "km")
    assert parse_quantity(" -3 S ") == (-3.0, "s")
    with pytest.raises(ValueError):
        parse_quantity("three metres")
