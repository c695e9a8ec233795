"""CSV rows with quoting: fields with the delimiter, quotes or newlines are quoted, quotes doubled."""

from __future__ import annotations


class CsvError(ValueError):
    """A row that is not valid CSV (an unterminated quoted field, text after a closing quote)."""


def parse_row(line: str, delimiter: str = ",", quote: str = '"') -> list[str]:
    """The fields of one CSV row: ``'a,"b,c",d'`` -> ``["a", "b,c", "d"]``."""
    fields: list[str] = []
    field: list[str] = []
    in_quotes = False
    after_quote = False
    index = 0
    while index < len(line):
        char = line[index]
        if in_quotes:
            if char == quote:
                if index + 1 < len(line) and line[index + 1] == quote:
                    field.append(quote)
                    index += 1
                else:
                    in_quotes = False
                    after_quote = True
            else:
                field.append(char)
        elif char == delimiter:
            fields.append("".join(field))
            field = []
            after_quote = False
        elif after_quote:
            raise CsvError(f"text after a closing quote at column {index}")
        elif char == quote and not field:
            in_quotes = True
        else:
            field.append(char)
        index += 1
    if in_quotes:
        raise CsvError("unterminated quoted field")
    fields.append("".join(field))
    return fields


def parse_csv(text: str, delimiter: str = ",", header: bool = False) -> list[list[str]] | list[dict[str, str]]:
    """Rows of ``text`` (blank lines skipped); with ``header``, dicts keyed by the first row."""
    rows = [parse_row(line, delimiter) for line in text.splitlines() if line.strip()]
    if not header:
        return rows
    if not rows:
        return []
    names = rows[0]
    records = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(names):
            raise CsvError(f"row {number} has {len(row)} fields, the header has {len(names)}")
        records.append(dict(zip(names, row, strict=True)))
    return records


def format_row(fields: list[object], delimiter: str = ",", quote: str = '"') -> str:
    """One CSV row, quoting only the fields that need it; ``None`` is an empty field."""
    out = []
    for value in fields:
        text = "" if value is None else str(value)
        if delimiter in text or quote in text or "\n" in text or text != text.strip():
            text = quote + text.replace(quote, quote * 2) + quote
        out.append(text)
    return delimiter.join(out)
