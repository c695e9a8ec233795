from __future__ import annotations

import pytest
from textkit.csvlite import CsvError, format_row, parse_csv, parse_row


def test_parse_row_plain() -> None:
    assert parse_row("a,b,c") == ["a", "b", "c"]


def test_parse_row_quoted_delimiter() -> None:
    assert parse_row('a,"b,c",d') == ["a", "b,c", "d"]


def test_parse_row_doubled_quotes() -> None:
    assert parse_row('"say ""hi""",x') == ['say "hi"', "x"]


def test_parse_row_empty_fields() -> None:
    assert parse_row(",,") == ["", "", ""]
    assert parse_row("") == [""]


def test_parse_row_other_delimiter() -> None:
    assert parse_row("a;b;'c;d'", delimiter=";", quote="'") == ["a", "b", "c;d"]


def test_parse_row_quote_inside_field_is_literal() -> None:
    assert parse_row('ab"c,d') == ['ab"c', "d"]


def test_parse_row_errors() -> None:
    with pytest.raises(CsvError):
        parse_row('"open')
    with pytest.raises(CsvError):
        parse_row('"closed"extra,b')


def test_parse_csv_rows() -> None:
    assert parse_csv("a,b\n\n1,2\n") == [["a", "b"], ["1", "2"]]


def test_parse_csv_header() -> None:
    assert parse_csv("name,age\nann,31\nbob,42", header=True) == [
        {"name": "ann", "age": "31"},
        {"name": "bob", "age": "42"},
    ]


def test_parse_csv_header_mismatch() -> None:
    with pytest.raises(CsvError, match="row 3"):
        parse_csv("a,b\n1,2\n3", header=True)


def test_parse_csv_header_only_and_empty() -> None:
    assert parse_csv("a,b", header=True) == []
    assert parse_csv("", header=True) == []


def test_format_row_quotes_when_needed() -> None:
    assert format_row(["a", "b,c", 'say "hi"', None, 3]) == 'a,"b,c","say ""hi""",,3'


def test_format_row_quotes_padding() -> None:
    assert format_row([" x", "y"]) == '" x",y'


def test_format_then_parse_round_trip() -> None:
    fields = ["plain", "with,comma", 'q"uote', "", "  spaced  "]
    assert parse_row(format_row(list(fields))) == fields
