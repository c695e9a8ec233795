"""A run's summary, as ``horizongym show`` prints it: the table per env and policy, the trees line
when the run has branches, and the failure report when some episodes failed."""

from __future__ import annotations

import dataclasses
from typing import Any

from horizongym.training.rollouts.failure_report import failure_report
from horizongym.training.rollouts.summary import format_table, summarize
from horizongym.training.rollouts.tree import TreeStats
from horizongym.view.catalog import Run


def run_summary(run: Run) -> dict[str, Any]:
    """The payload of ``GET /api/runs/RID/summary`` (computed once per version of the run's file)."""
    index = run.refreshed()
    cached = run.summary_cache
    if cached is not None and cached[0] == index.version:
        return dict(cached[1])
    outlines = list(index.outlines)
    summaries = summarize(outlines)
    trees = None
    if any(outline.branch for outline in outlines):
        stats = TreeStats()
        for outline in outlines:
            stats.count(outline)
        trees = stats.line()
    failed = [n for n, outline in enumerate(outlines) if not outline.trainable]
    failures = failure_report([run.episode(n) for n in failed], len(outlines)) if failed else None
    payload = {
        "rows": [dataclasses.asdict(summary) for summary in summaries],
        "table": format_table(summaries),
        "trees": trees,
        "failures": failures,
    }
    run.summary_cache = (index.version, payload)
    return dict(payload)
