"""The horizongym command, run as a person would run it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest


def horizongym(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "horizongym", *args], input=stdin, capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_list_shows_ids_descriptions_and_tools() -> None:
    result = horizongym("list")
    assert result.returncode == 0
    assert "KeyChain-v0" in result.stdout and "tools: answer, lookup" in result.stdout
    listed = {entry["id"]: entry for entry in json.loads(horizongym("list", "--json").stdout)}
    assert listed["KeyChain-v0"]["tools"] == ["answer", "lookup"]
    assert listed["KeyChain-v0"]["description"].startswith("Follow a chain of keys")


def test_rollout_show_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "e.jsonl"
    first = horizongym("rollout", "KeyChain-v0", "--policy", "expert", "-n", "6", "--group", "2", "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert "100.0%" in first.stdout and len(out.read_text().splitlines()) == 12
    again = horizongym("rollout", "KeyChain-v0", "-n", "6", "--out", str(out))
    assert again.returncode == 2 and "pass --resume" in again.stderr
    more = horizongym("rollout", "KeyChain-v0", "-n", "8", "--group", "2", "--out", str(out), "--resume", "--quiet")
    assert more.returncode == 0 and len(out.read_text().splitlines()) == 16
    page = tmp_path / "page.html"
    shown = horizongym("show", str(out), "--html", str(page))
    assert shown.returncode == 0 and "KeyChain-v0" in shown.stdout and "16" in shown.stdout
    html = page.read_text()
    assert html.count("<details") == 16 and "lookup" in html


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("rollout", "KeyChian-v0"), "Did you mean: KeyChain-v0"),
        (("play", "Nope-v0"), "unknown environment 'Nope-v0'"),
        (
            ("rollout", "KeyChain-v0", "--policy", "openai:http://127.0.0.1:9/v1#m", "--out", "{tmp}/x.jsonl"),
            "cannot reach",
        ),
        (("rollout", "KeyChain-v0", "--policy", "hf:{tmp}/missing", "--out", "{tmp}/y.jsonl"), "no model at"),
        (("show", "{tmp}/none.jsonl"), "no episode file"),
        (("serve", "{tmp}/missing"), "no model at"),
        (("rollout", "KeyChain-v0", "--env-kwargs", "[1]"), "must be a JSON object"),
        (("play", "KeyChain-v0", "--import", "no_such_module_xyz"), "cannot import 'no_such_module_xyz'"),
        (("kernels", "eval", "softmax", "{tmp}/none.py"), "no candidate file"),
        (("kernels", "eval", "sofmax", __file__), "no task 'sofmax'"),
        (("kernels", "eval", "softmax", __file__, "--backend", "tpu"), "backend must be one of"),
    ],
)
def test_mistakes_get_one_clear_line_and_status_2(args: tuple[str, ...], fragment: str, tmp_path: Path) -> None:
    result = horizongym(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert result.returncode == 2
    assert fragment in result.stderr and "Traceback" not in result.stderr


def test_play_a_whole_episode_from_the_keyboard() -> None:
    first = horizongym("play", "KeyChain-v0", "--seed", "5", stdin="/quit\n")
    start = first.stdout.split("Start key: ")[1].split(".")[0]
    lines, key = [], start
    from horizongym.envs.keychain import KeyChainEnv

    env = KeyChainEnv()
    env.reset(seed=5)
    while env.store[key].startswith("->"):
        lines.append(f"<lookup>{key}</lookup>")
        key = env.store[key].removeprefix("-> ")
    lines += [
        "not a tool call",
        f'<tool_call>{{"name": "answer", "arguments": {{"value": "{env.store[key]}"}}}}</tool_call>',
    ]
    result = horizongym("play", "KeyChain-v0", "--seed", "5", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    assert "Error [no_tool_call]" in result.stdout and "reward -0.1" in result.stdout
    assert "Correct." in result.stdout and "episode over: terminated" in result.stdout


def test_rollout_with_a_users_own_module(tmp_path: Path) -> None:
    (tmp_path / "my_envs.py").write_text(
        "import horizongym\nfrom horizongym.envs.keychain import KeyChainEnv\n"
        "horizongym.register('MyChain-v0', KeyChainEnv, kwargs={'max_depth': 2})\n"
    )
    result = horizongym(
        "rollout",
        "MyChain-v0",
        "--import",
        "my_envs",
        "--policy",
        "random",
        "-n",
        "64",
        "--concurrency",
        "64",
        "--out",
        "r.jsonl",
        "--quiet",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 64


def test_kernels_tasks_and_eval(tmp_path: Path) -> None:
    listed = horizongym("kernels", "tasks", "--level", "2")
    assert listed.returncode == 0 and "L2/swiglu_gate" in listed.stdout and "L1/" not in listed.stdout
    from horizongym.agents.experts.kernel_solutions import SOLUTIONS

    candidate = tmp_path / "softmax.py"
    candidate.write_text(SOLUTIONS["softmax"]["cpp"])
    shown = horizongym("kernels", "eval", "L1/softmax", str(candidate), "--backend", "cpu", "--trials", "10")
    assert shown.returncode == 0, shown.stderr
    assert "Result: CORRECT" in shown.stdout and "PyTorch eager (reference)" in shown.stdout
    as_json = horizongym("kernels", "eval", "softmax", str(candidate), "--backend", "cpu", "--trials", "5", "--json")
    report = json.loads(as_json.stdout)
    assert report["status"] == "correct" and report["reward_components"]["correct"] == 0.3


def test_train_flags_come_from_train_config(capsys: pytest.CaptureFixture[str]) -> None:
    from horizongym.cli import TRAIN_FLAGS, build_parser, config_flag, train_config
    from horizongym.training.config import TrainConfig

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    help_text = capsys.readouterr().out
    for name in TrainConfig.model_fields.keys() - {"env_id"}:
        flag = re.escape(config_flag(name, TRAIN_FLAGS))
        assert re.search(rf"^  {flag}[ ,\n]", help_text, re.MULTILINE), f"TrainConfig.{name} has no flag"
    assert all(flag in help_text for flag in ("--policy", "--resume", "--quiet", "--tasks", "--import"))

    defaults = parser.parse_args(["train", "KeyChain-v0"])
    for name, field in TrainConfig.model_fields.items():
        if name not in ("env_id", "env_kwargs"):
            assert getattr(defaults, name) == field.get_default(call_default_factory=True), name
    assert train_config(defaults) == TrainConfig(env_id="KeyChain-v0")

    flags = ["--eval-env-kwargs", '{"split": "test"}', "--group", "2", "--out", "runs/x", "--no-deterministic"]
    flags += ["--ratio-level", "sequence", "--grad-accumulation", "3", "--tasks", "d.jsonl"]
    args = parser.parse_args(["train", "KeyChain-v0", *flags])
    config = train_config(args)
    assert config.eval_env_kwargs == {"split": "test"} and config.env_kwargs == {"tasks": "d.jsonl"}
    assert (config.group_size, config.out_dir, config.deterministic) == (2, "runs/x", False)
    assert (config.ratio_level, config.grad_accumulation) == ("sequence", 3)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--eval-env-kwargs", "[1]"), "--eval-env-kwargs: must be a JSON object"),
        (("--lora-rank", "0"), "bad training settings: --lora-rank: Input should be greater than or equal to 1"),
        (("--advantage", "ppo"), "unknown advantage 'ppo'"),
        (("--ratio-level", "word"), "invalid choice: 'word'"),
    ],
)
def test_bad_train_settings_name_the_flag(args: tuple[str, ...], fragment: str, tmp_path: Path) -> None:
    result = horizongym("train", "KeyChain-v0", "--out", str(tmp_path / "run"), *args)
    assert result.returncode == 2 and fragment in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_help_of_every_command_reads() -> None:
    top = horizongym("--help")
    assert top.returncode == 0 and "train" in top.stdout and "swe" in top.stdout
    train = horizongym("train", "--help")
    assert train.returncode == 0
    assert "--eval-env-kwargs JSON" in train.stdout and "--deterministic, --no-deterministic" in train.stdout
    assert "--lr X" in train.stdout and "(default: 0.0001)" in train.stdout
    for command in (("kernels", "eval"), ("swe", "mine"), ("sandbox", "doctor")):
        assert horizongym(*command, "--help").returncode == 0


_NO_TORCH = """
import sys
from horizongym.cli import main

codes = [
    main(["rollout", "KeyChain-v0", "--policy", "random", "-n", "3", "--out", sys.argv[1], "--quiet"]),
    main(["show", sys.argv[1]]),
    main(["play", "KeyChain-v0"]),
]
heavy = sorted({name.split(".")[0] for name in sys.modules} & {"torch", "transformers", "peft", "docker"})
print("codes", codes, "heavy", heavy)
"""


def test_rollout_show_and_play_import_no_torch(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, str(tmp_path / "e.jsonl")],
        input="/quit\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "codes [0, 0, 0] heavy []" in result.stdout
