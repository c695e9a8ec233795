"""The episode list's query: filters, sort and paging over an index's ROWs.

Filters combine with AND; each is optional, and an empty value counts as absent (a blank input):

==================  ===========================================================================
``env_id``          the ROW's value, exactly; also ``policy``, ``outcome``
``seed``            the task seed, a whole number; also ``sample`` (a tree's episodes share both)
``success``         ``true``, ``false`` or ``none`` (not judged)
``min_reward``      ``total_reward >= value``; ``max_reward``: ``<=`` (see below)
``min_turns``       ``turns >= value``; ``max_turns``: ``<=``
``error``           a case-insensitive substring of the episode's error, its termination detail, or
                    the error of one of its steps (``invalid_json: ...``)
``branch``          ``trunk`` (branch 0) or ``branch`` (a fork: branch > 0)
==================  ===========================================================================

A reward within ``REWARD_TOLERANCE`` (relative) of a bound counts as equal to it: rewards are sums of
floats, and a stored ``-0.30000000000000004`` is the ``-0.300`` the table shows, so ``min_reward=-0.3``
keeps it (``math.isclose`` with that ``rel_tol``).

``sort`` is a ROW key (default ``n``) and ``order`` ``asc`` or ``desc``; episodes with no value for
the key come last either way, and ties keep file order. ``offset`` (default 0) and ``limit``
(default 50, at most 500) pick the page. A bad value is an :class:`~horizongym.view.errors.ApiError`
400 naming the parameter, what it got and what it takes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from horizongym.view.errors import bad_request
from horizongym.view.index import FACETS, EpisodeIndex
from horizongym.view.outline import ROW_KEYS, EpisodeOutline

REWARD_TOLERANCE = 1e-9
"""Relative distance under which a reward equals a bound (module docstring)."""
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
PARAMETERS = (
    "env_id",
    "policy",
    "outcome",
    "seed",
    "sample",
    "success",
    "min_reward",
    "max_reward",
    "min_turns",
    "max_turns",
    "error",
    "branch",
    "sort",
    "order",
    "offset",
    "limit",
)

Test = Callable[[dict[str, Any], EpisodeOutline], bool]


@dataclass(frozen=True)
class EpisodeQuery:
    """A parsed query: its tests (all must pass), the sort key and order, and the page."""

    tests: tuple[Test, ...] = ()
    sort: str = "n"
    descending: bool = False
    offset: int = 0
    limit: int = DEFAULT_LIMIT


def _number(name: str, text: str, kind: type[float] | type[int]) -> float:
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise bad_request(f"{name} must be {what}, not {text!r}") from None


def _equals(key: str, value: Any) -> Test:
    return lambda row, _: bool(row[key] == value)


def _is(key: str, value: bool | None) -> Test:
    return lambda row, _: row[key] is value


def _near(value: float, bound: float) -> bool:
    return math.isclose(value, bound, rel_tol=REWARD_TOLERANCE, abs_tol=REWARD_TOLERANCE)


def _at_least(key: str, bound: float) -> Test:
    return lambda row, _: bool(row[key] >= bound or _near(row[key], bound))


def _at_most(key: str, bound: float) -> Test:
    return lambda row, _: bool(row[key] <= bound or _near(row[key], bound))


def _error_holds(needle: str) -> Test:
    def test(_: dict[str, Any], outline: EpisodeOutline) -> bool:
        texts = (outline.error, outline.termination_detail, *(step.error for step in outline.steps))
        return any(needle in text.lower() for text in texts if text)

    return test


def _forked(forks: bool) -> Test:
    return lambda row, _: (row["branch"] > 0) == forks


def parse_query(params: Mapping[str, str]) -> EpisodeQuery:
    """The query of the request parameters ``params`` (see the module docstring)."""
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise bad_request(f"unknown parameter {unknown[0]!r}: the episode list takes {', '.join(PARAMETERS)}")
    given = {key: value.strip() for key, value in params.items() if value.strip()}
    tests: list[Test] = []
    for key in ("env_id", "policy", "outcome"):
        if key in given:
            tests.append(_equals(key, given[key]))
    for key in ("seed", "sample"):
        if key in given:
            tests.append(_equals(key, int(_number(key, given[key], int))))
    if "success" in given:
        choices: dict[str, bool | None] = {"true": True, "false": False, "none": None}
        word = given["success"].lower()
        if word not in choices:
            raise bad_request(f"success must be true, false or none, not {given['success']!r}")
        tests.append(_is("success", choices[word]))
    bounds = {
        "min_reward": ("total_reward", float, False),
        "max_reward": ("total_reward", float, True),
        "min_turns": ("turns", int, False),
        "max_turns": ("turns", int, True),
    }
    for name, (key, kind, upper) in bounds.items():
        if name in given:
            bound = _number(name, given[name], kind)
            tests.append(_at_most(key, bound) if upper else _at_least(key, bound))
    if "error" in given:
        tests.append(_error_holds(given["error"].lower()))
    if "branch" in given:
        if given["branch"] not in ("trunk", "branch"):
            raise bad_request(f"branch must be trunk or branch, not {given['branch']!r}")
        tests.append(_forked(given["branch"] == "branch"))
    sort = given.get("sort", "n")
    if sort not in ROW_KEYS:
        raise bad_request(f"sort must be one of {', '.join(ROW_KEYS)}, not {sort!r}")
    order = given.get("order", "asc")
    if order not in ("asc", "desc"):
        raise bad_request(f"order must be asc or desc, not {order!r}")
    offset = int(_number("offset", given.get("offset", "0"), int))
    if offset < 0:
        raise bad_request(f"offset must be 0 or more, not {offset}")
    limit = int(_number("limit", given.get("limit", str(DEFAULT_LIMIT)), int))
    if not 1 <= limit <= MAX_LIMIT:
        raise bad_request(f"limit must be 1..{MAX_LIMIT}, not {limit}")
    return EpisodeQuery(tuple(tests), sort, order == "desc", offset, limit)


def run_query(index: EpisodeIndex, query: EpisodeQuery) -> dict[str, Any]:
    """The page of ROWs ``query`` asks for, with the filtered total and the facets (every value of
    ``env_id``, ``policy`` and ``outcome`` in the run)."""
    rows, outlines = index.rows, index.outlines  # a snapshot: another thread may be appending
    count = min(len(rows), len(outlines))
    pairs = zip(rows[:count], outlines[:count], strict=True)
    matched = [row for row, outline in pairs if all(test(row, outline) for test in query.tests)]
    if query.sort != "n" or query.descending:
        key = query.sort
        present = [row for row in matched if row[key] is not None]
        present.sort(key=lambda row: row[key], reverse=query.descending)
        matched = present + [row for row in matched if row[key] is None]
    return {
        "total": len(matched),
        "offset": query.offset,
        "limit": query.limit,
        "episodes": matched[query.offset : query.offset + query.limit],
        "facets": {key: sorted(index.facets[key]) for key in FACETS},
    }
