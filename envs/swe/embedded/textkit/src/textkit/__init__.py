"""textkit: small, dependency-free text utilities."""

from textkit.csvlite import format_row, parse_csv, parse_row
from textkit.ini import IniError, parse_ini
from textkit.intervals import contains, intersect, merge, total_length
from textkit.numfmt import chunked, clamp, human_size, median, ordinal, percent_change
from textkit.roman import from_roman, to_roman
from textkit.slug import camel_to_snake, slugify, snake_to_camel
from textkit.wrap import fill, indent, truncate, wrap

__version__ = "1.0.0"

__all__ = [
    "IniError",
    "camel_to_snake",
    "chunked",
    "clamp",
    "contains",
    "fill",
    "format_row",
    "from_roman",
    "human_size",
    "indent",
    "intersect",
    "median",
    "merge",
    "ordinal",
    "parse_csv",
    "parse_ini",
    "parse_row",
    "percent_change",
    "slugify",
    "snake_to_camel",
    "to_roman",
    "total_length",
    "truncate",
    "wrap",
]
