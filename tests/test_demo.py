"""The embedded demo's pipeline end to end, at toy sizes (``--quick``)."""

from __future__ import annotations

import json
from pathlib import Path

from horizongym.training.demo import STAGES, main


def test_quick_demo_writes_summary_plot_and_episodes(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert main(["--quick", "--seeds", "1", "--out", str(out)]) == 0

    summary = json.loads((out / "summary.json").read_text())
    results = summary["results"]
    assert {r["stage"] for r in results} == set(STAGES)
    assert all(r["seed"] == 0 for r in results) and len(results) == 3
    for result in results:
        assert 0.0 <= result["success"] <= 1.0
        assert result["episodes"] > 0
        assert isinstance(result["mean_reward"], float)
    assert summary["wall_seconds"] > 0 and summary["settings"]["hidden_size"] > 0
    assert summary["env_kwargs"]["train"]["split"] == "train" and summary["env_kwargs"]["test"]["split"] == "test"

    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    for stage in STAGES:
        lines = (out / "seed0" / f"eval_{stage}.jsonl").read_text().splitlines()
        assert len(lines) == results[0]["episodes"]
        assert json.loads(lines[0])["env_id"].endswith("SearchJudge-v0")
    assert (out / "seed0" / "rl" / "episodes.jsonl").read_text().strip()
    assert (out / "seed0" / "rl" / "metrics.jsonl").read_text().strip()
    assert (out / "expert_sft.jsonl").read_text().strip()
