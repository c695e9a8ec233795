"""Running a pytest selection in a sandbox and reading per-test outcomes from its JUnit XML.

Outcomes are ``passed``, ``failed``, ``error``, ``skipped`` and ``missing`` (asked for but not
run: a deleted or renamed test). Test ids are pytest node ids (``tests/test_x.py::TestC::test_y``);
JUnit names them by class path (``tests.test_x.TestC``) and name, so both are mapped to one key.
"""

from __future__ import annotations

import shlex
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable

JUNIT_PATH = "/tmp/horizongym-junit.xml"
PASSED = "passed"


def junit_key(node_id: str) -> str:
    """The key JUnit gives a pytest node id: ``a/b.py::C::t[x]`` -> ``a.b.C::t[x]``."""
    path, _, rest = node_id.partition("::")
    module = path.removesuffix(".py").replace("/", ".")
    *classes, name = rest.split("::") if rest else [""]
    return "::".join([".".join([module, *classes]), name])


def parse_junit(xml_text: str) -> dict[str, str]:
    """Outcome per JUnit key (see :func:`junit_key`)."""
    outcomes: dict[str, str] = {}
    root = ElementTree.fromstring(xml_text)
    for case in root.iter("testcase"):
        key = f"{case.get('classname', '')}::{case.get('name', '')}"
        children = {child.tag for child in case}
        if "error" in children:
            outcome = "error"
        elif "failure" in children:
            outcome = "failed"
        elif "skipped" in children:
            outcome = "skipped"
        else:
            outcome = PASSED
        if outcomes.get(key, PASSED) == PASSED:  # a test that errors in teardown keeps the worst outcome
            outcomes[key] = outcome
    return outcomes


def outcomes_for(node_ids: Iterable[str], junit: dict[str, str]) -> dict[str, str]:
    """Outcome of each node id (``missing`` when the run did not report it)."""
    return {node_id: junit.get(junit_key(node_id), "missing") for node_id in node_ids}


def selection_command(test_command: str, node_ids: Iterable[str], junit_path: str = JUNIT_PATH) -> str:
    """The shell command that runs the test files holding ``node_ids`` and writes JUnit XML.

    Whole files are run rather than node ids, because pytest refuses a whole run when one id
    does not exist; the ids are then looked up in the report.
    """
    files = sorted({node_id.partition("::")[0] for node_id in node_ids})
    return f"{test_command} --junitxml={junit_path} -o junit_family=xunit1 " + " ".join(shlex.quote(f) for f in files)
