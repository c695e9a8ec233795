"""Greedy word wrapping, indentation and truncation."""

from __future__ import annotations


def wrap(text: str, width: int = 70) -> list[str]:
    """Split ``text`` into lines of at most ``width`` characters, breaking between words.

    Runs of whitespace collapse to one space. A word longer than ``width`` is split into
    pieces of ``width`` characters.
    """
    if width < 1:
        raise ValueError("width must be at least 1")
    lines: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > width:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:width])
            word = word[width:]
        if not word:
            continue
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current = current + " " + word
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def fill(text: str, width: int = 70) -> str:
    """:func:`wrap` joined with newlines; blank lines separate paragraphs and are kept."""
    paragraphs = [block for block in text.split("\n\n") if block.strip()]
    return "\n\n".join("\n".join(wrap(block, width)) for block in paragraphs)


def indent(text: str, prefix: str, skip_blank: bool = True) -> str:
    """Put ``prefix`` before each line of ``text`` (not before blank lines unless ``skip_blank`` is false)."""
    lines = text.split("\n")
    out = []
    for line in lines:
        if skip_blank and not line.strip():
            out.append(line)
        else:
            out.append(prefix + line)
    return "\n".join(out)


def truncate(text: str, width: int, placeholder: str = "...") -> str:
    """``text`` cut to at most ``width`` characters, ending in ``placeholder`` when cut.

    The cut falls on a word boundary when one exists in the kept part.
    """
    if len(text) <= width:
        return text
    if width < len(placeholder):
        raise ValueError("width is smaller than the placeholder")
    room = width - len(placeholder)
    kept = text[:room]
    space = kept.rfind(" ")
    if space > 0 and text[room] != " ":
        kept = kept[:space]
    return kept.rstrip() + placeholder
