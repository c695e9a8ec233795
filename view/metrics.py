"""A training run's ``metrics.jsonl`` (one JSON object per step, as the trainer logs it) for its curves.

``keys`` names every numeric value the records hold, sorted: a top-level one by its name
(``reward_mean``), one inside a nested object by its dotted path (``eval.success_rate``, the
held-out evaluation). Lines that are not JSON objects (a line torn by a kill) are skipped.
"""

from __future__ import annotations

import json
from typing import Any

from horizongym.argtypes import os_error
from horizongym.view.catalog import Run
from horizongym.view.errors import ApiError, not_found


def numeric_keys(record: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in record.items():
        if isinstance(value, dict):
            keys |= numeric_keys(value, f"{prefix}{key}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            keys.add(prefix + key)
    return keys


def run_metrics(run: Run) -> dict[str, Any]:
    """The payload of ``GET /api/runs/RID/metrics``; ApiError 404 when the run has no metrics."""
    path = run.metrics_path
    if path is None or not path.is_file():
        raise not_found(
            f"run {run.id} ({run.source}) has no metrics.jsonl: curves come from a trainer's --out folder; "
            "give 'horizongym view' that folder"
        )
    records: list[dict[str, Any]] = []
    try:
        with open(path, "rb") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
    except OSError as exc:
        raise ApiError(500, f"cannot read {path}: {os_error(exc)}") from None
    keys: set[str] = set()
    for record in records:
        keys |= numeric_keys(record)
    return {"records": records, "keys": sorted(keys)}
