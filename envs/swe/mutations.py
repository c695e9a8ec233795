"""Small bugs put into working Python code: AST-located mutations applied as exact text edits.

Each mutation is found on the syntax tree and applied to the *source text* at the node's span
(``lineno``/``col_offset``/``end_lineno``/``end_col_offset``; column offsets are UTF-8 byte
offsets), so the diff between the original and the mutant touches only the mutated tokens and
formatting and comments stay as they were. Kinds:

* ``flip_comparison`` — the first operator of a comparison turned into its negation
  (``<``↔``>=``, ``>``↔``<=``, ``==``↔``!=``, ``is``↔``is not``, ``in``↔``not in``);
* ``off_by_one`` — in ``range(...)`` arguments, slice bounds and indexes: an integer literal
  moved by one, a ``+ 1``/``- 1`` dropped, or a ``- 1`` added to a bound (``range(len(x))``
  → ``range(len(x) - 1)``);
* ``swap_arguments`` — the first two positional arguments of a call exchanged;
* ``drop_statement`` — a simple statement (assignment, augmented assignment, call) removed
  from a block where it is not the last statement (never a docstring);
* ``wrong_constant`` — ``True``↔``False``, an integer changed (0→1, 1→0, k→k+1) or a short
  string literal changed (``"-"``→``"_"``, one character dropped, …);
* ``invert_condition`` — ``if c:`` → ``if not (c):`` and ``if not c:`` → ``if c:``.

Only code inside function and method bodies is mutated: module-level code runs at import
time, where a bug breaks everything at once instead of giving a focused failure.

:func:`find_mutations` enumerates every site of a module in a fixed order;
:func:`sample_mutations` draws a seeded, kind-balanced sample with at most one mutation per
function. Whether a mutant makes a good task (tests that fail on it and pass on the
original) is decided by running the tests (:mod:`horizongym.envs.swe.mining`).

Sources: the operators of mutation testing (DeMillo, Lipton & Sayward 1978, "Hints on test
data selection"; mutmut, cosmic-ray) used as a bug generator for agent tasks, as in
SWE-smith (Yang et al. 2025, arXiv 2504.21798), whose "procedural modifications" of
functions these kinds follow.
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

KINDS = (
    "flip_comparison",
    "off_by_one",
    "swap_arguments",
    "drop_statement",
    "wrong_constant",
    "invert_condition",
)

_FLIPS: dict[type[ast.cmpop], tuple[str, str]] = {
    ast.Lt: (r"<", ">="),
    ast.GtE: (r">=", "<"),
    ast.Gt: (r">", "<="),
    ast.LtE: (r"<=", ">"),
    ast.Eq: (r"==", "!="),
    ast.NotEq: (r"!=", "=="),
    ast.Is: (r"is", "is not"),
    ast.IsNot: (r"is\s+not", "is"),
    ast.In: (r"in", "not in"),
    ast.NotIn: (r"not\s+in", "in"),
}
_STRING_SWAPS = {"-": "_", "_": "-", " ": "", "": " ", ",": ";", ";": ",", ".": ",", ":": ";", "\n": "", "/": "\\"}
_NO_SWAP_CALLS = frozenset({"isinstance", "issubclass", "getattr", "setattr", "hasattr", "delattr", "super", "print"})
_MAX_STRING = 20


@dataclass(frozen=True)
class Mutation:
    """One text edit of one file: bytes ``start:end`` of the UTF-8 source become ``replacement``."""

    kind: str
    path: str
    line: int
    """First line of the edited span (1-based)."""
    end_line: int
    start: int
    end: int
    original: str
    replacement: str
    function: str
    """Qualified name of the function or method the edit is in (``Class.method``)."""
    description: str

    @property
    def id(self) -> str:
        """A short content hash: the same edit of the same file has the same id."""
        key = f"{self.path}\0{self.start}\0{self.end}\0{self.replacement}"
        return hashlib.sha256(key.encode()).hexdigest()[:10]

    def apply(self, source: str) -> str:
        """The mutated source (``source`` must be the text the mutation was found in)."""
        data = source.encode()
        if data[self.start : self.end].decode() != self.original:
            raise ValueError(f"{self.path}:{self.line}: the source does not hold the text this mutation edits")
        return (data[: self.start] + self.replacement.encode() + data[self.end :]).decode()

    def is_valid(self, source: str) -> bool:
        """The mutant parses and its syntax tree differs from the original's."""
        try:
            mutated = ast.parse(self.apply(source))
        except (SyntaxError, ValueError):
            return False
        return ast.dump(mutated) != ast.dump(ast.parse(source))


def find_mutations(source: str, path: str) -> list[Mutation]:
    """Every mutation site of a module, in source order (empty for files that do not parse)."""
    if "\r" in source or "\f" in source:
        return []  # offsets below assume plain "\n" line ends
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    finder = _Finder(source, path)
    finder.module(tree)
    unique = {(m.start, m.end, m.replacement): m for m in finder.found}
    return sorted(unique.values(), key=lambda m: (m.start, m.end, KINDS.index(m.kind), m.replacement))


def sample_mutations(
    mutations: Sequence[Mutation], k: int, seed: int, *, per_function: int | None = 1, kinds: Sequence[str] = KINDS
) -> list[Mutation]:
    """A seeded sample of ``k`` mutations, balanced over kinds and spread over functions.

    Each kind's candidates are shuffled with ``random.Random(seed)``, then kinds take turns in
    the order of ``kinds``. Every function gets one mutation before any gets a second, and so
    on, up to ``per_function`` (no limit when None). The same candidates and seed give the
    same sample, in the same order.
    """
    rng = random.Random(seed)
    pools: dict[str, list[Mutation]] = defaultdict(list)
    for mutation in sorted(mutations, key=lambda m: (m.path, m.start, m.end, m.kind, m.replacement)):
        pools[mutation.kind].append(mutation)
    for kind in kinds:
        rng.shuffle(pools[kind])
    used: dict[tuple[str, str], int] = defaultdict(int)
    taken: set[int] = set()
    chosen: list[Mutation] = []
    limit = 1
    while len(chosen) < k:
        cursors = dict.fromkeys(kinds, 0)
        progressed = True
        while progressed and len(chosen) < k:
            progressed = False
            for kind in kinds:
                pool = pools[kind]
                while cursors[kind] < len(pool):
                    mutation = pool[cursors[kind]]
                    cursors[kind] += 1
                    function = (mutation.path, mutation.function)
                    if id(mutation) not in taken and used[function] < limit:
                        used[function] += 1
                        taken.add(id(mutation))
                        chosen.append(mutation)
                        progressed = True
                        break
                if len(chosen) >= k:
                    break
        if len(taken) == sum(len(pools[kind]) for kind in kinds) or (
            per_function is not None and limit >= per_function
        ):
            break
        limit += 1
    return chosen


class _Finder:
    """Walks one module and collects the mutation sites inside functions."""

    def __init__(self, source: str, path: str) -> None:
        self.data = source.encode()
        self.path = path
        self.line_starts = [0]
        for match in re.finditer(rb"\n", self.data):
            self.line_starts.append(match.end())
        self.found: list[Mutation] = []

    # ----- positions ---------------------------------------------------------------------
    def offset(self, line: int, col: int) -> int:
        return self.line_starts[line - 1] + col

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (
            self.offset(node.lineno, node.col_offset),  # type: ignore[attr-defined]
            self.offset(node.end_lineno, node.end_col_offset),  # type: ignore[attr-defined]
        )

    def text(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.data[start:end].decode()

    def add(self, kind: str, start: int, end: int, replacement: str, function: str, what: str) -> None:
        original = self.data[start:end].decode()
        if original == replacement:
            return
        line = self.data.count(b"\n", 0, start) + 1
        end_line = self.data.count(b"\n", 0, max(start, end - 1)) + 1
        self.found.append(
            Mutation(
                kind=kind,
                path=self.path,
                line=line,
                end_line=end_line,
                start=start,
                end=end,
                original=original,
                replacement=replacement,
                function=function,
                description=f"{what} in `{function}` ({self.path}, line {line})",
            )
        )

    # ----- walking -----------------------------------------------------------------------
    def module(self, tree: ast.Module) -> None:
        for node in tree.body:
            self.outside(node, "")

    def outside(self, node: ast.stmt, prefix: str) -> None:
        """Module or class level: look for functions only."""
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            self.function(node, prefix + node.name)
        elif isinstance(node, ast.ClassDef):
            for child in node.body:
                self.outside(child, f"{prefix}{node.name}.")
        elif isinstance(node, ast.If | ast.Try):
            for block in _blocks(node):
                for child in block:
                    self.outside(child, prefix)

    def function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> None:
        body = node.body
        if body and _is_docstring(body[0]):
            body = body[1:]
        self.block(body, name)

    def block(self, body: list[ast.stmt], function: str) -> None:
        for index, stmt in enumerate(body):
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                self.function(stmt, f"{function}.{stmt.name}")
                continue
            if isinstance(stmt, ast.ClassDef):
                for child in stmt.body:
                    self.outside(child, f"{function}.{stmt.name}.")
                continue
            if index < len(body) - 1:
                self.drop(stmt, function)
            if isinstance(stmt, ast.If):
                self.invert(stmt, function)
            for block in _blocks(stmt):
                self.block(block, function)
            for expr in _own_expressions(stmt):
                self.expression(expr, function, quiet_strings=isinstance(stmt, ast.Raise | ast.Assert))

    def expression(self, root: ast.expr, function: str, *, quiet_strings: bool) -> None:
        skip: set[int] = set()  # constants an off-by-one already covers
        for node, parent in _walk_with_parents(root):
            if isinstance(node, ast.Compare):
                self.flip(node, function)
            elif isinstance(node, ast.Call):
                self.call(node, function, skip)
            elif isinstance(node, ast.Subscript):
                self.subscript(node, function, skip)
            elif isinstance(node, ast.Constant) and id(node) not in skip:
                self.constant(node, parent, function, quiet_strings=quiet_strings)

    # ----- the kinds -----------------------------------------------------------------------
    def flip(self, node: ast.Compare, function: str) -> None:
        left_end = self.span(node.left)[1]
        right_start = self.span(node.comparators[0])[0]
        between = self.data[left_end:right_start].decode()
        pattern, replacement = _FLIPS[type(node.ops[0])]
        match = re.fullmatch(rf"([\s()\\]*)({pattern})([\s()\\]*)", between)
        if match is None:
            return  # a comment or something unexpected between the operands
        start = left_end + len(match.group(1).encode())
        end = start + len(match.group(2).encode())
        self.add(
            "flip_comparison",
            start,
            end,
            replacement,
            function,
            f"comparison `{match.group(2)}` flipped to `{replacement}`",
        )

    def call(self, node: ast.Call, function: str, skip: set[int]) -> None:
        callee = node.func.id if isinstance(node.func, ast.Name) else None
        if callee == "range":
            for arg in node.args:
                self.off_by_one(arg, function, skip, add_to_names=True)
        args = node.args
        if len(args) >= 2 and callee not in _NO_SWAP_CALLS and not any(isinstance(a, ast.Starred) for a in args[:2]):
            first, second = args[0], args[1]
            a_start, a_end = self.span(first)
            b_start, b_end = self.span(second)
            a_text, b_text = self.text(first), self.text(second)
            if a_text != b_text and not isinstance(first, ast.GeneratorExp):
                between = self.data[a_end:b_start].decode()
                name = ast.unparse(node.func) if len(ast.unparse(node.func)) <= 40 else "a call"
                self.add(
                    "swap_arguments",
                    a_start,
                    b_end,
                    b_text + between + a_text,
                    function,
                    f"the first two arguments of `{name}(...)` swapped",
                )

    def subscript(self, node: ast.Subscript, function: str, skip: set[int]) -> None:
        index = node.slice
        if isinstance(index, ast.Slice):
            for bound in (index.lower, index.upper):
                if bound is not None:
                    self.off_by_one(bound, function, skip, add_to_names=True)
        elif not isinstance(index, ast.Tuple):
            self.off_by_one(index, function, skip, add_to_names=False)

    def off_by_one(self, node: ast.expr, function: str, skip: set[int], *, add_to_names: bool) -> None:
        start, end = self.span(node)
        value = _int_literal(node)
        if value is not None:
            new = value - 1 if value > 0 else value + 1
            skip.update(id(n) for n in ast.walk(node))
            self.add("off_by_one", start, end, str(new), function, f"`{self.text(node)}` changed to `{new}`")
        elif (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Add | ast.Sub)
            and _int_literal(node.right) == 1
            and self.span(node.left)[0] == start
        ):
            skip.update(id(n) for n in ast.walk(node.right))
            left = self.text(node.left)
            self.add("off_by_one", start, end, left, function, f"`{self.text(node)}` changed to `{left}`")
        elif add_to_names and isinstance(node, ast.Name | ast.Attribute | ast.Call) and "\n" not in self.text(node):
            text = self.text(node)
            self.add("off_by_one", start, end, f"{text} - 1", function, f"`{text}` changed to `{text} - 1`")

    def constant(self, node: ast.Constant, parent: ast.AST | None, function: str, *, quiet_strings: bool) -> None:
        if isinstance(parent, ast.UnaryOp | ast.JoinedStr | ast.FormattedValue):
            return
        start, end = self.span(node)
        text = self.text(node)
        value = node.value
        if isinstance(value, bool):
            new = str(not value)
        elif isinstance(value, int):
            if text != str(value):
                return  # hex, underscores, …: leave the author's spelling alone
            new = {0: "1", 1: "0"}.get(value, str(value + 1))
        elif isinstance(value, str):
            if quiet_strings or len(value) > _MAX_STRING or value.startswith("__"):
                return
            if text[:1] not in ("'", '"') or text[:3] in ("'''", '"""'):
                return
            try:
                if ast.literal_eval(text) != value:
                    return
            except (SyntaxError, ValueError):
                return  # implicit concatenation across lines, …
            new = _quote(_changed_string(value), text[0])
        else:
            return
        self.add("wrong_constant", start, end, new, function, f"constant `{text}` changed to `{new}`")

    def drop(self, stmt: ast.stmt, function: str) -> None:
        if isinstance(stmt, ast.Expr):
            if not isinstance(stmt.value, ast.Call | ast.Await):
                return
        elif not (isinstance(stmt, ast.Assign | ast.AugAssign) or (isinstance(stmt, ast.AnnAssign) and stmt.value)):
            return
        start, end = self.span(stmt)
        line_start = self.line_starts[stmt.lineno - 1]
        last_line = stmt.end_lineno or stmt.lineno
        line_end = self.line_starts[last_line] if last_line < len(self.line_starts) else len(self.data)
        if self.data[line_start:start].strip() or not re.fullmatch(rb"[ \t]*(#[^\n]*)?\n?", self.data[end:line_end]):
            return  # shares its line with other code (``a = 1; b = 2``)
        first = self.text(stmt).splitlines()[0]
        shown = first if len(first) <= 60 else first[:57] + "..."
        self.add("drop_statement", line_start, line_end, "", function, f"statement `{shown}` removed")

    def invert(self, stmt: ast.If, function: str) -> None:
        test = stmt.test
        start, end = self.span(test)
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            operand = self.text(test.operand)
            if self.span(test.operand)[1] != end:
                operand = self.data[self.span(test.operand)[0] : end].decode()  # ``not (x)`` keeps its ")"
                if not operand.endswith(")"):
                    return
                operand = "(" + operand
            self.add("invert_condition", start, end, operand, function, f"condition `{self.text(test)}` inverted")
        else:
            text = self.text(test)
            self.add("invert_condition", start, end, f"not ({text})", function, f"condition `{text}` inverted")


def _blocks(stmt: ast.stmt) -> Iterator[list[ast.stmt]]:
    """The statement lists nested directly in ``stmt``."""
    for name in ("body", "orelse", "finalbody"):
        block = getattr(stmt, name, None)
        if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
            yield block
    for handler in getattr(stmt, "handlers", []):
        yield handler.body
    for case in getattr(stmt, "cases", []):
        yield case.body


def _own_expressions(stmt: ast.stmt) -> Iterator[ast.expr]:
    """The expressions of ``stmt`` itself (not of the statements nested in it)."""
    for name, value in ast.iter_fields(stmt):
        if name in ("body", "orelse", "finalbody", "handlers", "cases", "decorator_list", "returns", "annotation"):
            continue
        if isinstance(value, ast.expr):
            yield value
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, ast.expr):
                    yield item
                elif isinstance(item, ast.withitem):
                    yield item.context_expr


def _walk_with_parents(root: ast.expr) -> Iterable[tuple[ast.AST, ast.AST | None]]:
    """Nodes of an expression, parents first, not descending into lambdas."""
    stack: list[tuple[ast.AST, ast.AST | None]] = [(root, None)]
    while stack:
        node, parent = stack.pop()
        yield node, parent
        if isinstance(node, ast.Lambda):
            continue
        children = [(child, node) for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr)]
        stack.extend(reversed(children))


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _int_literal(node: ast.AST) -> int | None:
    """The value of ``3`` or ``-3`` written as a plain decimal literal, else None."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int_literal(node.operand)
        return -inner if inner is not None else None
    return None


def _changed_string(value: str) -> str:
    if value in _STRING_SWAPS:
        return _STRING_SWAPS[value]
    if len(value) >= 2:
        return value[:-1]
    return value.upper() if value.upper() != value else value * 2


def _quote(value: str, quote: str) -> str:
    """``value`` as a literal in the file's quote style where that needs no escaping."""
    text = repr(value)
    if text[0] == quote or quote in value or "\\'" in text:
        return text
    return quote + text[1:-1] + quote
