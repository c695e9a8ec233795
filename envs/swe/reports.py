"""Bug reports written from failing tests' output, the way a user of the package would file them.

A mined task's ``problem_statement`` must describe the symptom, not the cure: it shows the
failing call, the error, and the tail of the traceback *inside the package*, as a user who hit
the bug would paste them. It never names a test function, a test class or a test file (the
hidden tests must stay hidden), and it says nothing about the change that caused the bug.

Input is pytest's ``--tb=short`` text from the JUnit report of the mutant's run. For chained
exceptions only the last traceback is used. Memory addresses and the sandbox's working
directory are removed, so the same failure gives the same report on every run.
"""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

_FRAME = re.compile(r"^(?P<path>[^\s].*?):(?P<line>\d+): in (?P<func>\S+)$")
_CHAINED = re.compile(
    r"^(During handling of the above exception, another exception occurred:"
    r"|The above exception was the direct cause of the following exception:)$",
    re.MULTILINE,
)
_EXCEPTION = re.compile(r"^(?P<name>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Warning|Interrupt|StopIteration))\b")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_NOISE = re.compile(r"\s*[\^~]+\s*|Use -v+ to get (more|the full) diff.*|Full diff:|\.\.\.Full output truncated.*")
"""Caret lines under a traceback's source line, and pytest's hints about its own options."""
_CALL = re.compile(r"([A-Za-z_][\w.]*)\(")
_TEST_WORD = re.compile(r"\btest_\w+|\bTest[A-Z_]\w*|\btests?/|\btesting/")
MAX_ERROR_LINES = 12


def junit_failure_texts(xml_text: str) -> dict[str, str]:
    """The failure or error text of each failing test case, by JUnit key (``classname::name``)."""
    texts: dict[str, str] = {}
    for case in ElementTree.fromstring(xml_text).iter("testcase"):
        key = f"{case.get('classname', '')}::{case.get('name', '')}"
        for child in case:
            if child.tag in ("failure", "error") and key not in texts:
                texts[key] = (child.text or child.get("message") or "").strip()
    return texts


@dataclass(frozen=True)
class CodeIndex:
    """The project's code as the failing run saw it: names defined in the package and in the tests."""

    sources: Mapping[str, str]
    """Package modules (path -> text), with the bug in."""
    tests: Mapping[str, str]
    """Test files (path -> text)."""
    test_ids: Sequence[str] = ()

    @cached_property
    def functions(self) -> dict[str, list[tuple[int, int, str]]]:
        """Per source file: (first line, last line, qualified name) of every function."""
        index: dict[str, list[tuple[int, int, str]]] = {}
        for path, text in self.sources.items():
            index[path] = []
            try:
                tree = ast.parse(text)
            except SyntaxError:
                continue
            stack: list[tuple[ast.AST, str]] = [(tree, "")]
            while stack:
                node, prefix = stack.pop()
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                        name = prefix + child.name
                        if not isinstance(child, ast.ClassDef):
                            index[path].append((child.lineno, child.end_lineno or child.lineno, name))
                        stack.append((child, name + "."))
                    else:
                        stack.append((child, prefix))
        return index

    @cached_property
    def package_names(self) -> frozenset[str]:
        """Names of the functions, methods and classes the package defines."""
        names = set()
        for path, text in self.sources.items():
            names.update(re.findall(r"^\s*(?:async\s+)?(?:def|class)\s+(\w+)", text, re.MULTILINE))
            for _, _, qualname in self.functions.get(path, []):
                names.update(qualname.split("."))
        return frozenset(names)

    @cached_property
    def test_words(self) -> frozenset[str]:
        """What would give the tests away: test ids' parts, test files and everything they define."""
        words: set[str] = set()
        for test in self.test_ids:
            path, *parts = test.split("::")
            words.add(path)
            words.update(part.split("[")[0] for part in parts)
        for path, text in self.tests.items():
            words.add(path)
            words.add(path.rsplit("/", 1)[-1].removesuffix(".py"))
            defined = re.findall(r"^\s*(?:async\s+)?(?:def|class)\s+(\w+)", text, re.MULTILINE)
            words.update(name for name in defined if len(name) >= 4)  # not ``f``, ``g``: too common in code
        return frozenset(word for word in words if word) - self.package_names

    def qualname(self, path: str, line: int) -> str | None:
        """The innermost function of ``path`` that holds ``line``."""
        best = None
        for first, last, name in self.functions.get(path, []):
            if first <= line <= last and (best is None or first >= best[0]):
                best = (first, name)
        return best[1] if best else None

    def clean(self, line: str) -> bool:
        """The line names no test function, test class or test file."""
        if _TEST_WORD.search(line):
            return False
        return not any(re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", line) for word in self.test_words)


@dataclass
class Failure:
    """One failing test's output: frames (path, line, function, source lines) and error lines."""

    frames: list[tuple[str, int, str, list[str]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str, workdir: str = "/work") -> Failure:
        text = _ADDRESS.sub("", text.replace(f"{workdir.rstrip('/')}/", ""))
        text = _CHAINED.split(text)[-1]  # the exception that reached the caller
        failure = cls()
        for line in text.splitlines():
            match = _FRAME.match(line)
            if match:
                failure.frames.append((match["path"], int(match["line"]), match["func"], []))
            elif line.startswith("E ") or line == "E":
                failure.errors.append(line[1:].strip())
            elif line.startswith("    ") and failure.frames and not failure.errors:
                failure.frames[-1][3].append(line[4:])
        failure.errors = [line for line in failure.errors if line and not _NOISE.fullmatch(line)]
        for _, _, _, source in failure.frames:
            source[:] = [line for line in source if line.strip() and not _NOISE.fullmatch(line)]
        return failure


@dataclass(frozen=True)
class Symptom:
    """What one failing test shows a user: the API involved, the exception and the text to paste."""

    api: str
    exception: str
    text: str
    signature: tuple[str, str]


def symptom(text: str, code: CodeIndex) -> Symptom | None:
    """The user-visible part of one failure, or None if nothing can be shown without naming tests."""
    failure = Failure.parse(text)
    package = [frame for frame in failure.frames if frame[0] in code.sources]
    in_tests = [frame for frame in failure.frames if frame[0] in code.tests]
    call = [line.strip() for line in (in_tests[-1][3] if in_tests else [])][:3]
    call = [line for line in call if code.clean(line)]
    errors = [line for line in failure.errors if code.clean(line)][:MAX_ERROR_LINES]
    if not errors:
        return None
    match = _EXCEPTION.match(errors[0])
    exception = match["name"] if match else "AssertionError"
    if package:
        # the entry point into the package, skipping protocol machinery (``curry.__call__``) when
        # a named function follows
        named = [frame for frame in package if not _is_dunder(frame[2]) or frame[2] == "__init__"]
        path, line, function, _ = (named or package)[0]
        api = _display_name(code.qualname(path, line) or function)
    else:
        api = _api_in(call + errors, code)
    parts = []
    if call:
        parts.append("\n".join(call))
    if package:
        lines = ["Traceback (most recent call last):"]
        for path, number, function, source in package[-3:]:
            lines.append(f'  File "{path}", line {number}, in {function}')
            lines.extend(f"    {line.strip()}" for line in source[-2:] if code.clean(line))
        parts.append("\n".join(lines))
    parts.append("\n".join(errors))
    where = f"{package[-1][0]}:{package[-1][2]}" if package else errors[0][:60]
    return Symptom(api, exception, "\n".join(parts), (exception, where))


def problem_statement(title: str, variant: int, failures: Sequence[str], code: CodeIndex) -> str:
    """A bug report about ``title`` (``"name version"``) from the failing tests' texts.

    ``variant`` picks the wording (a hash of the bug, so reports differ between tasks but not
    between runs). At most two distinct symptoms are shown; the number of other failures is
    mentioned.
    """
    shown: list[Symptom] = []
    for text in failures:
        found = symptom(text, code)
        if found is not None and all(found.signature != s.signature for s in shown):
            shown.append(found)
            if len(shown) == 2:
                break
    if not shown:
        return f"Something broke in {title}: code that used to work now fails, without a useful error message.\n"
    first = shown[0]
    where = f"`{first.api}`" if first.api else "the package"
    capital = where[0].upper() + where[1:]
    if first.exception == "AssertionError":
        openings = [
            f"After upgrading to {title}, {where} returns a wrong result.",
            f"{capital} gives an incorrect result in {title}.",
            f"Since {title}, {where} no longer behaves as documented: the result is wrong.",
        ]
    else:
        openings = [
            f"After upgrading to {title}, {where} raises `{first.exception}`.",
            f"{capital} fails with `{first.exception}` in {title}, on input that used to work.",
            f"Since {title}, calling {where} crashes with `{first.exception}`.",
        ]
    body = [openings[variant % len(openings)], "", "```", first.text, "```"]
    if len(shown) > 1:
        body += ["", "A related failure:", "", "```", shown[1].text, "```"]
    others = len(failures) - 1
    if others > 0:
        body += ["", f"Other calls fail as well ({others} more {'check' if others == 1 else 'checks'} of mine)."]
    body += ["", "Expected: the behaviour of earlier releases (and of the documentation)."]
    return "\n".join(body) + "\n"


def _display_name(qualname: str) -> str:
    """``LRI.__init__`` -> ``LRI``; other names unchanged."""
    owner, _, name = qualname.rpartition(".")
    return owner if name == "__init__" and owner else qualname


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _api_in(lines: Sequence[str], code: CodeIndex) -> str:
    """The first call in ``lines`` of something the package defines."""
    for line in lines:
        for name in _CALL.findall(line):
            last = name.rsplit(".", 1)[-1]
            if last in code.package_names and last not in code.test_words and not last.startswith("__"):
                return last
    return ""
