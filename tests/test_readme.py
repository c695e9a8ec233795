"""The README's "write your own environment" example runs as written and passes the checker."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _example() -> str:
    text = README.read_text()
    block = re.search(r"<!-- readme-example:start -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert block, "README example block not found"
    return block.group(1)


def test_example_is_about_twenty_lines() -> None:
    code_lines = [line for line in _example().splitlines() if line.strip()]
    assert len(code_lines) <= 35


def test_readme_example_runs_checks_and_rolls_out(tmp_path: Path) -> None:
    script = tmp_path / "my_envs.py"
    script.write_text(
        _example()
        + textwrap.dedent(
            """
            from gymnasium.utils.env_checker import check_env
            from horizongym.agents import RandomPolicy
            from horizongym.training.rollouts import RolloutEngine

            assert info["tools"][0]["function"]["parameters"]["properties"]["number"]["type"] == "integer"
            assert observation in ("Higher.", "Lower.", "Correct!") and not truncated
            check_env(hg.make("Guess-v0").unwrapped)
            bad = env.step('<tool_call>{"name": "guess", "arguments": {"number": "fifty"}}</tool_call>')
            assert "invalid_arguments" in bad[0] and bad[1] < 0
            episodes = RolloutEngine("Guess-v0", RandomPolicy(), concurrency=64, progress=False).run_sync(64)
            assert len(episodes) == 64
            print("ok")
            """
        )
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
