"""bench/baselines.py's plumbing, with the scripted experts and the random policy on real envs (no model)."""

from __future__ import annotations

import json

import pytest

from horizongym.bench import baselines
from horizongym.training.rollouts.trajectory import Episode, Step


def step(turn: int, error: str | None = None) -> Step:
    return Step(turn=turn, action="a", error=error)


def test_format_errors_are_malformed_calls_only() -> None:
    assert baselines.is_format_error(step(1, "invalid_json: Expecting value"))
    assert baselines.is_format_error(step(1, "tool_crashed: boom; unknown_tool: no tool 'x'"))
    assert not baselines.is_format_error(step(1, "tool_timeout: ran 30 s"))
    assert not baselines.is_format_error(step(1))


def test_score_counts_steps_and_episodes() -> None:
    episodes = [
        Episode(env_id="E", seed=0, steps=[step(1, "no_tool_call: none"), step(2)], success=True),
        Episode(env_id="E", seed=1, steps=[step(1), step(2), step(3, "invalid_arguments: x")], success=False),
        Episode(env_id="E", seed=2, steps=[step(1)], success=None),
    ]
    result = baselines.score(episodes)
    assert result.episodes == 3
    assert result.success == pytest.approx(1 / 3)
    assert result.format_error_rate == pytest.approx(2 / 6)
    assert result.mean_turns == pytest.approx(2.0)
    with pytest.raises(ValueError, match="no episodes"):
        baselines.score([])


def test_bench_prints_a_figure_per_env_policy_and_metric(capsys: pytest.CaptureFixture[str]) -> None:
    baselines.figures.clear()
    baselines.main(["--tasks", "3", "--envs", "KeyChain-v0,LongChain-v0", "--policies", "expert,random"])
    lines = capsys.readouterr().out.strip().splitlines()
    figures = [json.loads(line) for line in lines[-12:]]
    assert all(line.startswith("{") for line in lines[-12:]) and not lines[-13].startswith("{")
    values = {(f["params"]["env"], f["params"]["policy"], f["metric"]): f["value"] for f in figures}
    assert len(values) == 12
    assert {f["params"]["tasks"] for f in figures} == {3}
    for env in ("KeyChain-v0", "LongChain-v0"):
        assert values[(env, "expert", "success")] == 1.0
        assert values[(env, "expert", "format_error_rate")] == 0.0
        assert values[(env, "expert", "mean_turns")] >= 2
        assert values[(env, "random", "success")] == 0.0
        assert values[(env, "random", "format_error_rate")] > 0.0
    assert "| KeyChain-v0 | 1.00 / 0.00 /" in "\n".join(lines)


def test_quick_is_one_task_of_every_env_but_swe(capsys: pytest.CaptureFixture[str]) -> None:
    baselines.figures.clear()
    baselines.main(["--quick", "--policies", "random"])
    envs = {f["params"]["env"] for f in baselines.figures}
    assert envs == {c.env_id for c in baselines.CASES} - {"SWE-v0"}
    assert {f["params"]["tasks"] for f in baselines.figures} == {1}
    assert "SWE-v0" not in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--max-turns"):
        baselines.main(["--max-turns", "0"])


def test_unknown_names_exit_with_the_choices() -> None:
    with pytest.raises(SystemExit, match="unknown policy gpt: choose from smollm2, expert, random"):
        baselines.main(["--policies", "gpt"])
    with pytest.raises(SystemExit, match="unknown env Nope-v0"):
        baselines.main(["--envs", "Nope-v0"])
