"""Task sources of the SWE environment, named by a short spec.

Specs (the ``tasks=`` option of ``SWE-v0``; the env splits the instances, see
:mod:`horizongym.envs.tasklist`):

* ``embedded`` — the default: bugs mined from a small library shipped with horizongym
  (:func:`~horizongym.envs.swe.mining.embedded_instances`);
* ``pypi`` — bugs mined from the pinned real PyPI packages (:mod:`horizongym.envs.swe.packages`);
* a path to a JSONL file of SWE-bench-format instances (``horizongym swe mine ... --out FILE``).

Every instance loaded here is remembered by id for this process (:func:`known_instance`), so
scripted experts can look the gold patch of an episode's instance up.
"""

from __future__ import annotations

from pathlib import Path

from horizongym.envs.swe.types import SWEInstance, load_instances

_KNOWN: dict[str, SWEInstance] = {}
"""Every instance loaded in this process, by id."""


def known_instance(instance_id: str) -> SWEInstance | None:
    """An instance some SWE env of this process loaded (for scripted policies), or None."""
    return _KNOWN.get(instance_id)


def load_swe_tasks(tasks: str | list[SWEInstance]) -> list[SWEInstance]:
    """The instances named by ``tasks`` (see the module docstring), or ``tasks`` itself when it is a list."""
    if isinstance(tasks, list):
        instances = tasks
    elif tasks == "embedded":
        from horizongym.envs.swe.mining import embedded_instances

        instances = embedded_instances()
    elif tasks == "pypi":
        from horizongym.envs.swe.mining import default_package_instances

        instances = default_package_instances()
    elif Path(tasks).is_file():
        instances = load_instances(tasks)
    elif "/" in tasks or tasks.endswith((".jsonl", ".json", ".gz")):
        raise FileNotFoundError(
            f"no SWE task file at {tasks} (tasks is 'embedded', 'pypi' or a JSONL file of 'horizongym swe mine')"
        )
    else:
        raise ValueError(f"tasks must be 'embedded', 'pypi', a JSONL file or a list of SWEInstance; got {tasks!r}")
    for instance in instances:
        _KNOWN[instance.instance_id] = instance
    return instances
