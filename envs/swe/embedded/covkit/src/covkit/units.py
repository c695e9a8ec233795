"""Converting lengths and durations between units, and reading quantities such as ``"2.5 km"``."""

from __future__ import annotations

import re

FACTORS = {
    "length": {"mm": 0.001, "cm": 0.01, "m": 1.0, "km": 1000.0, "in": 0.0254, "ft": 0.3048, "mi": 1609.344},
    "time": {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0},
}
_QUANTITY = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([a-z]+)\s*$")


def dimension(unit: str) -> str:
    """The dimension (``length`` or ``time``) of a unit."""
    for name, units in FACTORS.items():
        if unit in units:
            return name
    raise ValueError(f"unknown unit {unit!r}")


def convert(value: float, source: str, target: str) -> float:
    """``value`` in unit ``source`` expressed in unit ``target`` (same dimension)."""
    kind = dimension(source)
    if dimension(target) != kind:
        raise ValueError(f"cannot convert {source} to {target}")
    return value * FACTORS[kind][source] / FACTORS[kind][target]


def parse_quantity(text: str) -> tuple[float, str]:
    """``"2.5 km"`` -> ``(2.5, "km")``."""
    match = _QUANTITY.match(text.lower())
    if match is None:
        raise ValueError(f"not a quantity: {text!r}")
    unit = match.group(2)
    dimension(unit)
    return float(match.group(1)), unit
