"""A small INI reader: ``[sections]``, ``key = value`` or ``key: value``, ``#``/``;`` comments."""

from __future__ import annotations

_TRUE = frozenset({"1", "yes", "true", "on"})
_FALSE = frozenset({"0", "no", "false", "off"})


class IniError(ValueError):
    """A line that is not a section header, an assignment, a comment or blank."""

    def __init__(self, line_number: int, message: str) -> None:
        super().__init__(f"line {line_number}: {message}")
        self.line_number = line_number


def parse_ini(text: str, default_section: str = "DEFAULT") -> dict[str, dict[str, str]]:
    """Sections of ``text`` as dicts; keys are lower-cased, values stripped.

    Keys before the first header go to ``default_section``. An indented line continues the
    value of the previous key. A repeated section adds to the earlier one; a repeated key
    replaces the earlier value.
    """
    sections: dict[str, dict[str, str]] = {}
    current = default_section
    last_key: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if raw[0] in " \t" and last_key is not None:
            previous = sections[current][last_key]
            sections[current][last_key] = (previous + "\n" + line).strip()
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise IniError(number, f"bad section header {line!r}")
            current = line[1:-1].strip()
            sections.setdefault(current, {})
            last_key = None
            continue
        positions = [p for p in (line.find("="), line.find(":")) if p != -1]
        if not positions:
            raise IniError(number, f"expected 'key = value', got {line!r}")
        split = min(positions)
        key = line[:split].strip().lower()
        if not key:
            raise IniError(number, "empty key")
        value = line[split + 1 :].strip()
        sections.setdefault(current, {})[key] = value
        last_key = key
    return sections


def get_bool(section: dict[str, str], key: str, default: bool = False) -> bool:
    """A yes/no value (``1/yes/true/on``, ``0/no/false/off``, any case)."""
    if key not in section:
        return default
    value = section[key].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"not a boolean: {section[key]!r}")


def get_int(section: dict[str, str], key: str, default: int = 0) -> int:
    """An integer value; ``_`` separators are allowed (``1_000``)."""
    if key not in section:
        return default
    return int(section[key].replace("_", ""))


def get_list(section: dict[str, str], key: str, separator: str = ",") -> list[str]:
    """A list value: items split on ``separator`` or newlines, stripped, empty ones dropped."""
    raw = section.get(key, "")
    items: list[str] = []
    for line in raw.split("\n"):
        items.extend(part.strip() for part in line.split(separator))
    return [item for item in items if item]
