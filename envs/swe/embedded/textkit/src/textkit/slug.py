"""URL slugs and identifier case conversion."""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[^a-zA-Z0-9]+")
_CAMEL_BOUNDARY = re.compile(r"([a-z0-9])([A-Z])|([A-Z]+)([A-Z][a-z])")


def strip_accents(text: str) -> str:
    """``text`` with diacritics removed (``"Crème brûlée"`` -> ``"Creme brulee"``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def slugify(text: str, separator: str = "-", max_length: int | None = None, lowercase: bool = True) -> str:
    """A URL-friendly slug: ASCII letters and digits joined by ``separator``.

    ``max_length`` cuts the slug at a word boundary where possible, never leaving a
    trailing separator.
    """
    words = [word for word in _SEPARATORS.split(strip_accents(text)) if word]
    if lowercase:
        words = [word.lower() for word in words]
    slug = separator.join(words)
    if max_length is not None and len(slug) > max_length:
        cut = slug[:max_length]
        boundary = cut.rfind(separator)
        if boundary > 0 and not slug[max_length:].startswith(separator):
            cut = cut[:boundary]
        slug = cut.strip(separator)
    return slug


def camel_to_snake(name: str) -> str:
    """``"parseHTTPResponse"`` -> ``"parse_http_response"``."""

    def split(match: re.Match[str]) -> str:
        if match.group(1):
            return f"{match.group(1)}_{match.group(2)}"
        return f"{match.group(3)}_{match.group(4)}"

    return _CAMEL_BOUNDARY.sub(split, name).replace("-", "_").lower()


def snake_to_camel(name: str, upper_first: bool = False) -> str:
    """``"parse_http_response"`` -> ``"parseHttpResponse"`` (``"ParseHttpResponse"`` with ``upper_first``).

    Leading underscores are kept: ``"_private_name"`` -> ``"_privateName"``.
    """
    stripped = name.lstrip("_")
    prefix = name[: len(name) - len(stripped)]
    parts = [part for part in stripped.split("_") if part]
    if not parts:
        return name
    head = parts[0].capitalize() if upper_first else parts[0].lower()
    tail = "".join(part.capitalize() for part in parts[1:])
    return prefix + head + tail
