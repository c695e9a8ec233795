"""Mining SWE tasks from a working release: put a bug in, keep it if tests catch it, validate it.

The SWE-smith recipe (Yang et al. 2025, arXiv 2504.21798), on one source release:

1. **Source.** The release's files (a PyPI sdist, or the embedded library), its import root and
   test files (:mod:`horizongym.envs.swe.packages`); the environment image holds the pinned test
   runner (:mod:`horizongym.envs.swe.environments`). The source itself travels with each sandbox.
2. **Baseline.** The test suite runs once with a line tracer (:mod:`horizongym.envs.swe.linetrace`)
   and once plainly, both with JUnit XML: which tests pass, and which lines each one runs.
3. **Mutants.** Mutation sites (:mod:`horizongym.envs.swe.mutations`) on lines that a passing
   test runs, in a seeded, kind-balanced order. Each mutant runs the tests that run its lines
   (no other test can notice it), in a sandbox reset between mutants. A mutant is kept when
   the run completes (no collection error, no timeout) and at least one test that passed now
   fails.
4. **Instance.** ``FAIL_TO_PASS`` = tests that pass on the release and fail on the mutant;
   ``PASS_TO_PASS`` = the other tests of the test files involved, passing on both. The test
   files holding ``FAIL_TO_PASS`` tests are hidden: ``start_patch`` (the mutation, and those
   files deleted) gives the agent's starting state, ``test_patch`` adds them back, ``patch`` (the
   mutation reversed) is the gold fix. The problem statement is written from the failing
   tests' output as a bug report (:mod:`horizongym.envs.swe.reports`): no test names or test
   paths, and nothing about the change that caused it.
5. **Validation.** Every instance goes through the real harness
   (:func:`horizongym.envs.swe.harness.evaluate_patch`): the gold patch must resolve it; an
   empty patch, and a patch that deletes the failing tests and adds a ``conftest.py`` that skips
   everything, must not. Only instances that pass all three are kept.

Deterministic: the same release, seed and limits give the same instances (the first
``max_tasks`` validated ones in candidate order). A run's result is cached under
``$HORIZONGYM_CACHE`` by the hash of the release, the parameters and this code, so a second run
only reads a file.
"""

from __future__ import annotations

import json
import math
import posixpath
import queue
import re
import shlex
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from horizongym.cache import cached, content_key
from horizongym.envs.swe.diffs import file_diff, files_diff
from horizongym.envs.swe.environments import environment_image, starting_files
from horizongym.envs.swe.mining_report import Baseline, MiningError, MiningReport, MutantRun
from horizongym.envs.swe.mutations import Mutation, find_mutations, sample_mutations
from horizongym.envs.swe.packages import (
    DEFAULT_PACKAGES,
    EMBEDDED_ROOT,
    SourceRelease,
    embedded_source,
    load_source,
)
from horizongym.envs.swe.patches import patch_paths
from horizongym.envs.swe.reports import CodeIndex, junit_failure_texts, problem_statement
from horizongym.envs.swe.testdeps import declared_requirements, pin_requirements
from horizongym.envs.swe.testrun import JUNIT_PATH, PASSED, junit_key, outcomes_for, parse_junit, selection_command
from horizongym.envs.swe.testsetup import needs_network, read_test_setup
from horizongym.envs.swe.types import SWEEnvironment, SWEInstance, load_instances
from horizongym.sandboxes import tar_files
from horizongym.sandboxes.base import Sandbox, SandboxSpec

MINER_VERSION = "2"
DEFAULT_SEED = 0
DEFAULT_MAX_CANDIDATES = 60
DEFAULT_MAX_TASKS = 12
WORKDIR = "/work"
TRACE_DIR = "/tmp/horizongym-trace"
TRACE_PLUGIN = "horizongym_linetrace"
SELECTION_PATH = "/tmp/horizongym-selection.txt"
FAILING = frozenset({"failed", "error"})
EMBEDDED_INSTANCES = EMBEDDED_ROOT / "textkit.jsonl"
"""The embedded library's tasks, mined with the default parameters and shipped (SWE-v0's default set)."""
CONFTEST_SKIP_ALL = (
    "import pytest\n\n\n"
    "def pytest_collection_modifyitems(items):\n"
    "    for item in items:\n"
    '        item.add_marker(pytest.mark.skip(reason="skipped"))\n'
)
_CODE_MODULES = tuple(
    f"horizongym.envs.swe.{name}"
    for name in (
        "mining",
        "mining_report",
        "mutations",
        "packages",
        "environments",
        "diffs",
        "linetrace",
        "reports",
        "harness",
        "testrun",
        "testsetup",
        "testdeps",
        "patches",
        "types",
    )
)
"""The code a mining run's result depends on (its cache key hashes their source)."""
T = TypeVar("T")
R = TypeVar("R")


# ----- entry points --------------------------------------------------------------------------
def mine_report(
    package_spec: str,
    *,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    max_tasks: int = DEFAULT_MAX_TASKS,
    seed: int = DEFAULT_SEED,
    workers: int = 2,
    backend: str = "docker",
) -> MiningReport:
    """Mine ``package_spec`` (``NAME==VERSION`` or ``embedded:NAME``); its validated instances are ``.instances``.

    ``max_candidates`` bounds the mutants tried, ``max_tasks`` the instances kept. The report also
    counts what was tried and rejected. Cached by content hash.
    """
    release = load_source(package_spec)
    key = mining_key(release, max_candidates=max_candidates, max_tasks=max_tasks, seed=seed)
    stored: dict[str, MiningReport] = {}

    def build(folder: Path) -> None:
        miner = _Miner(release, seed=seed, workers=max(1, workers), backend=backend)
        report = miner.run(max_candidates=max_candidates, max_tasks=max_tasks)
        (folder / "report.json").write_text(json.dumps(report.to_json(), sort_keys=True, indent=1))
        stored["fresh"] = report

    folder = cached(f"swe-mined-{_slug(release.name)}-{_slug(release.version)}-{key[:20]}", build)
    if "fresh" in stored:
        return stored["fresh"]
    return MiningReport.from_json(json.loads((folder / "report.json").read_text()))


def mining_key(release: SourceRelease, *, max_candidates: int, max_tasks: int, seed: int) -> str:
    """The cache key of a mining run: the release's hash, the parameters and the miner's code."""
    parts = [MINER_VERSION, release.source, release.sha256, str(seed), str(max_candidates), str(max_tasks)]
    return content_key(*parts, modules=_CODE_MODULES, length=64)


def embedded_instances() -> list[SWEInstance]:
    """SWE-v0's default tasks: the shipped instances of the embedded library (mined if they are stale)."""
    current = embedded_source("textkit").sha256
    if EMBEDDED_INSTANCES.is_file():
        shipped = load_instances(EMBEDDED_INSTANCES)
        if shipped and all(item.environment.sdist_sha256 == current for item in shipped):
            return shipped
    return mine_report("embedded:textkit").instances


def default_package_instances(packages: Sequence[str] = DEFAULT_PACKAGES, **kwargs: Any) -> list[SWEInstance]:
    """Tasks mined from the pinned real packages (:data:`~horizongym.envs.swe.packages.DEFAULT_PACKAGES`)."""
    return [item for spec in packages for item in mine_report(spec, **kwargs).instances]


# ----- the miner -----------------------------------------------------------------------------
class _Miner:
    """One mining run over one release (see the module docstring for the steps)."""

    def __init__(self, release: SourceRelease, *, seed: int, workers: int, backend: str) -> None:
        self.release = release
        self.layout = release.layout
        self.seed = seed
        self.workers = workers
        self.backend = backend
        self.texts: dict[str, str] = {}
        for path in self.layout.source_files:
            try:
                self.texts[path] = release.files[path].decode("utf-8")
            except UnicodeDecodeError:
                continue  # not mutated (diffs are text)
        self.setup = read_test_setup(release.files)
        self.test_files = self.setup.test_files(release.files, self.layout.test_files)
        own = frozenset(p.removeprefix("src/").split("/")[0].removesuffix(".py") for p in self.layout.source_files)
        declared = declared_requirements(release.files, release.name, self.setup.warning_modules(own))
        pins, unavailable = pin_requirements(declared.requirements)
        self.environment = SWEEnvironment(
            source=release.source,
            sdist_sha256=release.sha256,
            dependencies=pins,
            python_path=self.layout.python_path,
            test_command=self.setup.test_command,
        )
        self.report = MiningReport(source=release.source)
        self.report.test_setup = {
            **self.setup.summary(),
            "requirement_sources": declared.sources,
            "installed": pins,
            "not_installed": {**declared.skipped, **{r: f"no wheel: {e}" for r, e in unavailable.items()}},
        }
        self.rejected: Counter[str] = Counter()

    # ----- sandboxes ---------------------------------------------------------------------
    def spec(self) -> SandboxSpec:
        python_path = ":".join(posixpath.normpath(posixpath.join(WORKDIR, p)) for p in self.layout.python_path)
        return SandboxSpec(
            image=environment_image(self.environment),
            workdir=WORKDIR,
            files=tar_files(self.release.files),
            env=(("PYTHONPATH", python_path), ("PYTHONDONTWRITEBYTECODE", "1")),
        )

    @contextmanager
    def sandboxes(self) -> Iterator[queue.Queue[Sandbox]]:
        from horizongym.sandboxes import open_sandbox

        spec = self.spec()
        pool: queue.Queue[Sandbox] = queue.Queue()
        opened: list[Sandbox] = []
        try:
            for _ in range(self.workers):
                sandbox = open_sandbox(spec, backend=self.backend)
                opened.append(sandbox)
                pool.put(sandbox)
            yield pool
        finally:
            for sandbox in opened:
                sandbox.close()

    def parallel(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if self.workers == 1 or len(items) <= 1:
            return [function(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.workers) as executor:
            return list(executor.map(function, items))

    # ----- the run -----------------------------------------------------------------------
    def run(self, *, max_candidates: int, max_tasks: int) -> MiningReport:
        started = time.perf_counter()
        phases: defaultdict[str, float] = defaultdict(float)
        with self.sandboxes() as pool:
            phases["setup"] += time.perf_counter() - started
            first = pool.get()
            clock = time.perf_counter()
            baseline = self.baseline(first)
            pool.put(first)
            order = self.candidates(baseline, max_candidates)
            phases["baseline"] += time.perf_counter() - clock

            def evaluate(mutation: Mutation) -> MutantRun:
                sandbox = pool.get()
                try:
                    return self.run_mutant(sandbox, baseline, mutation)
                finally:
                    pool.put(sandbox)

            # The result is the first ``max_tasks`` validated instances in candidate order;
            # mutants are run in batches sized by the yield so far, and instances validated
            # only as far as needed.
            kept: list[SWEInstance] = []
            pending: list[SWEInstance] = []
            made = position = 0
            while len(kept) < max_tasks:
                need = max_tasks - len(kept)
                if len(pending) < need and position < len(order):
                    rate = (made + 1) / (position + 2)
                    size = max(self.workers, math.ceil((need - len(pending)) / rate))
                    chunk = order[position : position + size]
                    position += len(chunk)
                    clock = time.perf_counter()
                    runs = self.parallel(evaluate, chunk)
                    phases["mutants"] += time.perf_counter() - clock
                    fresh = [instance for run in runs if (instance := self.instance(baseline, run)) is not None]
                    made += len(fresh)
                    pending.extend(fresh)
                    continue
                if not pending:
                    break
                batch, pending = pending[:need], pending[need:]
                clock = time.perf_counter()
                kept.extend(self.validate(batch))
                phases["validation"] += time.perf_counter() - clock
        self.report.tried = position
        self.report.instances = kept
        self.report.validation = {i.instance_id: self.report.validation[i.instance_id] for i in kept}
        self.report.mutations = {i.instance_id: self.report.mutations[i.instance_id] for i in kept}
        self.report.rejected = dict(sorted(self.rejected.items()))
        self.report.seconds = round(time.perf_counter() - started, 2)
        self.report.phases = {name: round(value, 2) for name, value in phases.items()}
        return self.report

    def baseline(self, sandbox: Sandbox) -> Baseline:
        """Step 2: which tests pass, and the lines each runs."""
        from horizongym.envs.swe import linetrace

        plugin = Path(linetrace.__file__).read_bytes()
        sandbox.write_file(f"{TRACE_DIR}/{TRACE_PLUGIN}.py", plugin)
        sandbox.write_file(f"{TRACE_DIR}/files.txt", "\n".join(self.layout.source_files).encode())
        test_files = self.test_files
        if not test_files:
            raise MiningError(f"{self.release.source}: no test files")
        trace_json = f"{TRACE_DIR}/trace.json"
        traced = (
            f"HORIZONGYM_TRACE_FILES={TRACE_DIR}/files.txt HORIZONGYM_TRACE_OUT={trace_json} "
            f'PYTHONPATH={TRACE_DIR}:"$PYTHONPATH" {self.environment.test_command} -p {TRACE_PLUGIN} '
            "--continue-on-collection-errors " + " ".join(shlex.quote(f) for f in test_files)
        )
        result = sandbox.exec(traced, timeout=900)
        try:
            trace = json.loads(sandbox.read_file(trace_json))
        except (FileNotFoundError, ValueError) as error:
            raise MiningError(f"{self.release.source}: the traced test run failed:\n{result.output[-3000:]}") from error
        broken = {path.split("::")[0] for path in trace["collect_errors"]}
        tests = [t for t in trace["tests"] if t.split("::")[0] not in broken]
        file_of = {t: t.split("::")[0] for t in tests}
        usable = sorted({file_of[t] for t in tests})
        plain = sandbox.exec(f"rm -f {JUNIT_PATH}; " + selection_command(self.environment.test_command, usable), 900)
        try:
            plain_outcomes = outcomes_for(tests, parse_junit(sandbox.read_file(JUNIT_PATH).decode("utf-8", "replace")))
        except (FileNotFoundError, ValueError) as error:
            raise MiningError(f"{self.release.source}: the test run failed:\n{plain.output[-3000:]}") from error
        passing = frozenset(t for t in tests if trace["outcomes"].get(t) == PASSED and plain_outcomes.get(t) == PASSED)
        self.report.skipped_tests = self.skipped_tests(trace, tests, plain_outcomes, sandbox, broken)
        if not passing:
            raise MiningError(f"{self.release.source}: no test passes:\n{plain.output[-3000:]}")
        coverage: dict[str, dict[int, frozenset[str]]] = {}
        for path, by_line in trace["lines"].items():
            coverage[path] = {
                int(line): frozenset(trace["tests"][i] for i in indexes if trace["tests"][i] in passing)
                for line, indexes in by_line.items()
            }
        return Baseline(tests, passing, file_of, coverage, usable, plain.duration_s)

    def skipped_tests(
        self, trace: dict[str, Any], tests: list[str], plain: dict[str, str], sandbox: Sandbox, broken: set[str]
    ) -> dict[str, int]:
        """How many tests of the release are not mined from, by reason (the baseline's left-outs)."""
        texts = junit_failure_texts(sandbox.read_file(JUNIT_PATH).decode("utf-8", "replace"))
        reasons: Counter[str] = Counter()
        for test in tests:
            traced, outcome = trace["outcomes"].get(test), plain.get(test)
            if traced == PASSED and outcome == PASSED:
                continue
            if outcome in FAILING and needs_network(texts.get(junit_key(test), "")):
                reasons["needs_network"] += 1
            elif outcome in FAILING:
                reasons["fails_on_the_release"] += 1
            elif outcome == "skipped" or traced == "skipped":
                reasons["skipped_by_pytest"] += 1
            else:
                reasons["differs_under_the_tracer"] += 1
        if broken:
            reasons["files_not_collected"] = len(broken)
        deselected = len(trace.get("deselected", []))
        if deselected:
            reasons["deselected_by_marker"] = deselected
        return dict(sorted(reasons.items()))

    def candidates(self, baseline: Baseline, max_candidates: int) -> list[Mutation]:
        """Step 3's order: valid mutation sites on covered lines, seeded and kind-balanced."""
        sites = []
        for path, text in self.texts.items():
            lines = baseline.coverage.get(path, {})
            for mutation in find_mutations(text, path):
                if any(lines.get(n) for n in range(mutation.line, mutation.end_line + 1)):
                    sites.append(mutation)
        self.report.candidates = len(sites)
        chosen = []
        for mutation in sample_mutations(sites, len(sites), self.seed, per_function=None):
            if mutation.is_valid(self.texts[mutation.path]):
                chosen.append(mutation)
                if len(chosen) == max_candidates:
                    break
        return chosen

    def covering_tests(self, baseline: Baseline, mutation: Mutation) -> list[str]:
        lines = baseline.coverage.get(mutation.path, {})
        covering = {t for n in range(mutation.line, mutation.end_line + 1) for t in lines.get(n, ())}
        return [t for t in baseline.tests if t in covering]

    def run_mutant(self, sandbox: Sandbox, baseline: Baseline, mutation: Mutation) -> MutantRun:
        tests = self.covering_tests(baseline, mutation)
        sandbox.reset()
        sandbox.write_file(mutation.path, mutation.apply(self.texts[mutation.path]).encode())
        sandbox.write_file(SELECTION_PATH, "\n".join(tests).encode())  # pytest reads "@file" one argument a line
        command = (
            f"rm -f {JUNIT_PATH}; {self.environment.test_command} --tb=short --junitxml={JUNIT_PATH} "
            f"-o junit_family=xunit1 @{SELECTION_PATH}"
        )
        result = sandbox.exec(command, timeout=20.0 + 4.0 * baseline.seconds)
        failures: dict[str, str] = {}
        try:
            xml = sandbox.read_file(JUNIT_PATH).decode("utf-8", "replace")
            outcomes = outcomes_for(tests, parse_junit(xml))
            texts = junit_failure_texts(xml)
            failures = {t: texts.get(junit_key(t), "") for t in tests if outcomes[t] in FAILING}
        except (FileNotFoundError, ValueError):
            outcomes = dict.fromkeys(tests, "missing")
        return MutantRun(mutation, tests, outcomes, failures, result.exit_code, result.timed_out)

    # ----- step 4: instances ---------------------------------------------------------------
    def instance(self, baseline: Baseline, run: MutantRun) -> SWEInstance | None:
        if run.timed_out:
            return self._reject("timeout")
        if run.exit_code not in (0, 1):
            return self._reject("run_error")
        if any(run.outcomes.get(t, "missing") == "missing" for t in run.tests):
            return self._reject("tests_missing")
        fail_to_pass = sorted(t for t in run.tests if run.outcomes[t] in FAILING)
        if not fail_to_pass:
            return self._reject("survived")
        files = {baseline.file_of[t] for t in run.tests}
        unchanged = [t for t in baseline.tests if t in baseline.passing and baseline.file_of[t] in files]
        pass_to_pass = sorted(t for t in unchanged if run.outcomes.get(t, PASSED) == PASSED)
        mutation = run.mutation
        original = self.texts[mutation.path]
        mutated = mutation.apply(original)
        hidden = sorted({baseline.file_of[t] for t in fail_to_pass})
        try:
            hidden_texts = {path: self.release.files[path].decode("utf-8") for path in hidden}
        except UnicodeDecodeError:
            return self._reject("binary_test_file")
        start_patch = file_diff(mutation.path, original, mutated) + files_diff(
            [(path, hidden_texts[path], None) for path in hidden]
        )
        environment = self.environment.model_copy(update={"start_patch": start_patch})
        release = self.release
        label = release.label
        _, commit = starting_files(environment, label)
        code = CodeIndex(
            sources={**self.texts, mutation.path: mutated},
            tests={path: self.release.files[path].decode("utf-8", "replace") for path in self.layout.test_files},
            test_ids=baseline.tests,
        )
        statement = problem_statement(
            f"{release.name} {release.version}",
            int(mutation.id[:8], 16),
            [run.failures.get(t, "") for t in fail_to_pass],
            code,
        )
        instance_id = f"{_slug(release.name)}-{_slug(release.version)}-{mutation.id[:8]}"
        self.report.mutations[instance_id] = {
            "kind": mutation.kind,
            "path": mutation.path,
            "line": mutation.line,
            "description": mutation.description,
        }
        return SWEInstance(
            instance_id=instance_id,
            repo=label,
            base_commit=commit,
            problem_statement=statement,
            patch=file_diff(mutation.path, mutated, original),
            test_patch=files_diff([(path, None, hidden_texts[path]) for path in hidden]),
            FAIL_TO_PASS=fail_to_pass,
            PASS_TO_PASS=pass_to_pass,
            version=release.version,
            created_at=release.created_at,
            environment=environment,
        )

    def _reject(self, reason: str) -> SWEInstance | None:
        """Count a rejected mutant; returns None (no instance)."""
        self.rejected[reason] += 1
        return None

    # ----- step 5: validation --------------------------------------------------------------
    def validate(self, instances: list[SWEInstance]) -> list[SWEInstance]:
        from horizongym.envs.swe.harness import evaluate_patch

        checks = [(item, kind) for item in instances for kind in ("gold", "empty", "cheat")]

        def check(job: tuple[SWEInstance, str]) -> bool:
            item, kind = job
            patch = {"gold": item.patch, "empty": "", "cheat": cheat_patch(item, self.release)}[kind]
            return evaluate_patch(item, patch, backend=self.backend).resolved

        verdicts = self.parallel(check, checks)
        kept = []
        for index, item in enumerate(instances):
            gold, empty, cheat = verdicts[3 * index : 3 * index + 3]
            self.report.validation[item.instance_id] = {"gold": gold, "empty": empty, "cheat": cheat}
            if gold and not empty and not cheat:
                kept.append(item)
            else:
                self.rejected["validation"] += 1
        return kept


def cheat_patch(instance: SWEInstance, release: SourceRelease) -> str:
    """A submission that games the tests: failing test files replaced, a conftest that skips everything."""
    hidden = set(patch_paths(instance.test_patch))
    visible = sorted({test.split("::")[0] for test in instance.PASS_TO_PASS} - hidden)
    old_conftest = release.files.get("conftest.py")
    changes: list[tuple[str, str | None, str | None]] = [
        ("conftest.py", old_conftest.decode() if old_conftest is not None else None, CONFTEST_SKIP_ALL)
    ]
    changes += [(path, None, "def test_nothing():\n    pass\n") for path in sorted(hidden)]
    changes += [(path, release.files[path].decode("utf-8", "replace"), None) for path in visible]
    return files_diff(changes)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()
