"""The records of a mining run: the baseline test run, each mutant's tests, and the report.

:class:`MiningReport` is what ``horizongym swe mine`` prints and caches: the validated instances,
and what was tried and thrown away and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from horizongym.envs.swe.mutations import Mutation
from horizongym.envs.swe.types import SWEInstance


class MiningError(RuntimeError):
    """The release's test suite could not be run (nothing to mine)."""


@dataclass(frozen=True)
class Baseline:
    """The release's test suite before any mutation."""

    tests: list[str]
    """Node ids, in run order."""
    passing: frozenset[str]
    """Tests that passed with the tracer and without it."""
    file_of: dict[str, str]
    coverage: dict[str, dict[int, frozenset[str]]]
    """Source file -> line -> passing tests that ran it."""
    test_files: list[str]
    seconds: float
    """Wall time of the plain run of every test file."""


@dataclass(frozen=True)
class MutantRun:
    """The tests of one mutant."""

    mutation: Mutation
    tests: list[str]
    """The tests that run the mutated lines (only those are run: the others cannot notice)."""
    outcomes: dict[str, str]
    failures: dict[str, str]
    """Failure text (short traceback) of each failing test."""
    exit_code: int
    timed_out: bool


@dataclass
class MiningReport:
    """What a mining run produced, and what it threw away and why."""

    source: str
    instances: list[SWEInstance] = field(default_factory=list)
    candidates: int = 0
    """Mutation sites on covered lines."""
    tried: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    """Mutants or instances dropped, by reason (``survived``: no test failed)."""
    validation: dict[str, dict[str, bool]] = field(default_factory=dict)
    mutations: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per kept instance: the bug put in (``kind``, ``path``, ``line``, ``description``)."""
    """Per kept instance: was it resolved by the ``gold``, ``empty`` and ``cheat`` patches."""
    test_setup: dict[str, Any] = field(default_factory=dict)
    """How the tests were run (:meth:`~horizongym.envs.swe.testsetup.TestSetup.summary`): the pytest
    configuration, the options left out of its ``addopts``, the network marker deselected, the
    requirements installed (and where they were declared) and those not installed, with why."""
    skipped_tests: dict[str, int] = field(default_factory=dict)
    """Tests of the release not mined from, by reason (``needs_network``, ``fails_on_the_release``,
    ``skipped_by_pytest``, ``deselected_by_marker``, ``differs_under_the_tracer``,
    ``files_not_collected``: test files that did not import)."""
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    """Wall time of each step: ``setup`` (image, sandboxes), ``baseline``, ``mutants``, ``validation``."""
    from_cache: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "instances": [item.model_dump() for item in self.instances],
            "candidates": self.candidates,
            "tried": self.tried,
            "rejected": self.rejected,
            "validation": self.validation,
            "mutations": self.mutations,
            "test_setup": self.test_setup,
            "skipped_tests": self.skipped_tests,
            "seconds": self.seconds,
            "phases": self.phases,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MiningReport:
        return cls(
            source=data["source"],
            instances=[SWEInstance.model_validate(item) for item in data["instances"]],
            candidates=data["candidates"],
            tried=data["tried"],
            rejected=data["rejected"],
            validation=data["validation"],
            mutations=data.get("mutations", {}),
            test_setup=data.get("test_setup", {}),
            skipped_tests=data.get("skipped_tests", {}),
            seconds=data["seconds"],
            phases=data.get("phases", {}),
            from_cache=True,
        )
