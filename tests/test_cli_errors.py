"""Loud errors: every command given bad input exits non-zero with one line that names what failed,
the value and the fix, never a Python traceback. Run in process through ``main`` (fast); one
test runs the real command to check its exit status."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import horizongym
from horizongym.cli import main
from horizongym.envs.keychain import KeyChainEnv
from horizongym.failures import InfrastructureError
from horizongym.training.rollouts import read_episodes


class BrokenChain(KeyChainEnv):
    """KeyChain whose ``step`` raises on the seeds in ``broken_seeds`` (all seeds when None): an env bug,
    or with ``infra=True`` a failure of what runs it (not retryable)."""

    def __init__(self, *, broken_seeds: list[int] | None = None, infra: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.broken_seeds, self.infra = broken_seeds, infra
        self.broken = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        self.broken = self.broken_seeds is None or seed in self.broken_seeds
        return super().reset(seed=seed, options=options)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self.broken and self.infra:
            raise InfrastructureError("the evaluator died", retryable=False)
        if self.broken:
            raise RuntimeError("the lookup table is corrupted")
        observation, reward, terminated, truncated, info = super().step(action)
        return observation, float(reward), terminated, truncated, info


class Unbuildable(KeyChainEnv):
    """An env whose constructor raises, as one whose data is missing does."""

    def __init__(self, **kwargs: Any) -> None:
        raise OSError("the task archive /data/tasks.tar is missing")


@pytest.fixture
def test_envs() -> Iterator[None]:
    ids = {"BrokenChain-v0": BrokenChain, "Unbuildable-v0": Unbuildable}
    for env_id, cls in ids.items():
        horizongym.register(env_id, cls)
    yield
    for env_id in ids:
        del gym.registry[f"horizongym/{env_id}"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``horizongym ARGS`` in this process: exit status, standard output, standard error."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    """The single ``horizongym...: error:`` line of ``err`` (warnings may precede it), checked."""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    return errors[0]


# ----- env construction ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ("KeyChain-v0", "--env-kwargs", '{"bogus": 1}'),
            [
                "cannot build KeyChain-v0",
                '{"bogus": 1}',
                "unexpected keyword argument 'bogus'",
                "max_depth",
                "fix --env-kwargs",
            ],
        ),
        (
            ("KeyChain-v0", "--env-kwargs", '{"max_depth": 0}'),
            ["cannot build KeyChain-v0", "need 1 <= min_depth <= max_depth", "fix --env-kwargs"],
        ),
        (("SearchJudge-v0", "--tasks", "hotpotqa:/nope"), ["no HotpotQA file at /nope", "fix --tasks"]),
        (("SearchJudge-v0", "--tasks", "jsonl:/nope/c.jsonl:/nope/q.jsonl"), ["/nope/c.jsonl", "fix --tasks"]),
        (("EmailInbox-v0", "--tasks", "enron:/nope/emails.jsonl.gz"), ["no enron data at /nope", "fix --tasks"]),
        (("SWE-v0", "--tasks", "/nope/tasks.jsonl"), ["no SWE task file at /nope/tasks.jsonl", "fix --tasks"]),
        (("Unbuildable-v0",), ["OSError: the task archive /data/tasks.tar is missing", "how the env is registered"]),
    ],
)
@pytest.mark.parametrize("command", ["rollout", "play", "train"])
def test_an_env_that_cannot_be_built_is_one_line_naming_the_value_and_the_fix(
    command: str, args: tuple[str, ...], fragments: list[str], tmp_path: Path, test_envs: None, capsys: Any
) -> None:
    out = tmp_path / ("run" if command == "train" else "e.jsonl")
    extra = ("--out", str(out)) if command != "play" else ()
    code, _, err = run(capsys, command, *args, *extra)
    line = one_error_line(err)
    assert code == 2 and all(fragment in line for fragment in fragments), line
    assert not out.exists()  # nothing written, not even the folder of a training run


def test_a_bad_setting_of_the_evaluation_env_fails_before_training(tmp_path: Path, capsys: Any) -> None:
    code, _, err = run(
        capsys, "train", "KeyChain-v0", "--out", str(tmp_path / "run"), "--eval-every", "1",
        "--eval-env-kwargs", '{"store_size": 1}',
    )  # fmt: skip
    line = one_error_line(err)
    assert code == 2 and "cannot build the evaluation env of KeyChain-v0" in line and "fix --eval-env-kwargs" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ('{"bogus": 1}', "unexpected keyword argument 'bogus'"),
        ('{"gamma": "high"}', "not supported between"),
        ('{"gamma": 2}', "gamma must be in (0, 1]"),
        ('{"eps": NaN}', "non-finite advantages"),
    ],
)
def test_advantage_options_are_tried_before_training(options: str, fragment: str, tmp_path: Path, capsys: Any) -> None:
    code, _, err = run(capsys, "train", "KeyChain-v0", "--out", str(tmp_path / "run"), "--advantage-options", options)
    line = one_error_line(err)
    assert code == 2 and line.startswith("horizongym: error: bad training settings: --advantage-options:")
    assert fragment in line
    assert not (tmp_path / "run").exists()


# ----- policies, paths, numbers ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--policy", "gpt4"), "unknown policy 'gpt4'. Use one of: random | expert"),
        (("--policy", "openai:localhost:8000"), "write openai:URL#MODEL"),
        (("--policy", "hf:/nope/model"), "no model at '/nope/model'"),
        (("--policy", "hf:{tmp}"), "--policy hf:"),  # a folder with a config.json that is not a model
        (("-n", "0"), "argument -n: must be above 0, got 0"),
        (("--group", "two"), "argument --group: expected a number, got 'two'"),
        (("--timeout", "-1"), "argument --timeout: must be above 0"),
        (("--env-kwargs", "{max_turns: 3}"), "--env-kwargs is not valid JSON"),
        (("--env-kwargs", "[3]"), "--env-kwargs must be a JSON object"),
        (("--out", "/proc/version/e.jsonl"), "cannot write --out /proc/version/e.jsonl"),
        (("--out", "{tmp}"), "is a folder; give a file path"),
    ],
)
def test_rollout_mistakes_are_one_line(args: tuple[str, ...], fragment: str, tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "config.json").write_text("{}")
    given = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = [] if "--out" in args else ["--out", str(tmp_path / "e.jsonl")]
    code, _, err = run(capsys, "rollout", "KeyChain-v0", *given, *out, "--quiet")
    line = one_error_line(err)
    assert code == 2 and fragment.replace("{tmp}", str(tmp_path)) in line, line
    assert "see 'horizongym rollout --help'" in line or line.startswith("horizongym: error:")
    assert not (tmp_path / "e.jsonl").exists()


def test_a_missing_command_or_argument_is_one_line(capsys: Any) -> None:
    for args in (
        [],
        ["rollout"],
        ["rollout", "KeyChain-v0", "--env-kwargs"],
        ["train", "KeyChain-v0", "--lr", "x"],
        ["serve", "model", "--port", "99999"],
    ):
        code, _, err = run(capsys, *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "--help" in err, err


# ----- runs whose episodes fail -----------------------------------------------------------------
def test_when_every_episode_fails_rollout_exits_1_naming_how_many_and_the_first_error(
    tmp_path: Path, test_envs: None, capsys: Any
) -> None:
    out = tmp_path / "e.jsonl"
    code, stdout, err = run(capsys, "rollout", "BrokenChain-v0", "--policy", "random", "-n", "3", "--out", str(out))
    line = one_error_line(err)
    assert code == 1
    assert "all 3 episodes failed (env_error 3)" in line and "RuntimeError: the lookup table is corrupted" in line
    assert "the env raised: check its settings" in line
    # after the table: the first failure's error and the innermost calls of its traceback
    report = stdout.split("3 of 3 episodes failed (env_error 3); the first, seed 0 sample 0 (env_error):\n")[1]
    assert report.startswith("  step: RuntimeError: the lookup table is corrupted at ")
    assert re.search(r"\n    \S*test_cli_errors\.py:\d+ in step\n", report)
    assert len(read_episodes(out)) == 3  # the episodes are kept, to look at


def test_the_record_keeps_the_one_line_error_first_then_a_short_traceback(tmp_path: Path, test_envs: None) -> None:
    assert main(["rollout", "BrokenChain-v0", "--policy", "random", "-n", "1", "--out", str(tmp_path / "e.jsonl")]) == 1
    (episode,) = read_episodes(tmp_path / "e.jsonl")
    first, *calls = (episode.error or "").splitlines()
    assert re.fullmatch(r"step: RuntimeError: the lookup table is corrupted at /\S+/test_cli_errors\.py:\d+", first)
    assert 1 <= len(calls) <= 4 and all(call.startswith("  ") and ":" in call and " in " in call for call in calls)
    assert calls[-1].endswith(" in step") and "horizongym/training/rollouts/engine.py" in episode.error  # type: ignore[operator]


def test_infrastructure_failures_name_what_to_check(tmp_path: Path, test_envs: None, capsys: Any) -> None:
    kwargs = json.dumps({"infra": True})
    out = str(tmp_path / "e.jsonl")
    code, _, err = run(
        capsys, "rollout", "BrokenChain-v0", "--policy", "random", "-n", "2", "--out", out, "--env-kwargs", kwargs
    )
    line = one_error_line(err)
    assert code == 1 and "all 2 episodes failed (infra_error 2)" in line and "horizongym sandbox doctor" in line


def test_some_failed_episodes_are_summarized_and_the_run_succeeds(tmp_path: Path, test_envs: None, capsys: Any) -> None:
    out = tmp_path / "e.jsonl"
    kwargs = json.dumps({"broken_seeds": [1]})
    code, stdout, err = run(
        capsys, "rollout", "BrokenChain-v0", "--policy", "random", "-n", "3", "--out", str(out), "--env-kwargs", kwargs
    )
    assert code == 0 and ": error: " not in err
    assert "1 of 3 episodes failed (env_error 1); the first, seed 1 sample 0 (env_error):" in stdout
    assert "  step: RuntimeError: the lookup table is corrupted" in stdout
    # show says the same about the file
    code, shown, _ = run(capsys, "show", str(out))
    assert code == 0 and "1 of 3 episodes failed (env_error 1)" in shown


def test_train_that_learned_nothing_exits_1(tmp_path: Path, test_envs: None, tiny_model_dir: Path, capsys: Any) -> None:
    code, _, err = run(
        capsys, "train", "BrokenChain-v0", "--policy", f"hf:{tiny_model_dir}", "--out", str(tmp_path / "run"),
        "--steps", "1", "--tasks-per-step", "1", "--group", "2", "--max-new-tokens", "2", "--quiet",
    )  # fmt: skip
    line = one_error_line(err)
    assert code == 1 and "nothing can be learned: step 1: all 2 episodes failed (env_error 2)" in line


def test_play_reports_an_env_that_raises_in_one_line(
    test_envs: None, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("<lookup>amber</lookup>\n"))
    code, _, err = run(capsys, "play", "BrokenChain-v0")
    line = one_error_line(err)
    assert code == 1 and "BrokenChain-v0 raised in step 1 with its default settings" in line
    assert "RuntimeError: the lookup table is corrupted (at " in line


# ----- files: show, --import, list ---------------------------------------------------------------
def test_show_names_what_is_wrong_with_a_file(tmp_path: Path, capsys: Any) -> None:
    assert run(capsys, "show", str(tmp_path / "none.jsonl"))[0] == 2
    foreign = tmp_path / "data.jsonl"
    foreign.write_text('{"question": "q", "answer": "a"}\n')
    code, _, err = run(capsys, "show", str(foreign))
    line = one_error_line(err)
    assert code == 2 and "is not an episode file" in line and "env_id: Field required" in line
    assert f"horizongym: warning: {foreign}:1: skipped not an episode (env_id: Field required" in err


@pytest.mark.parametrize("command", [("replay",), ("replay", "--rescore")])
def test_replay_names_a_file_that_holds_no_episode(command: tuple[str, ...], tmp_path: Path, capsys: Any) -> None:
    foreign = tmp_path / "data.jsonl"
    foreign.write_text('{"question": "q", "answer": "a"}\n')
    code, _, err = run(capsys, *command[:1], str(foreign), *command[1:], "--out", str(tmp_path / "new.jsonl"))
    line = one_error_line(err)
    assert code == 2 and "is not an episode file" in line and "reads the JSONL files" in line


def test_show_warns_one_line_per_bad_line_and_reads_the_rest(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "e.jsonl"
    assert main(["rollout", "KeyChain-v0", "-n", "3", "--out", str(path), "--quiet"]) == 0
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "{oops\n" + lines[1] + lines[0] + lines[2][:40])
    capsys.readouterr()
    code, stdout, err = run(capsys, "show", str(path), "--html", str(tmp_path / "no" / "such" / "folder" / "p.html"))
    warnings = [line for line in err.splitlines() if line.startswith("horizongym: warning: ")]
    assert [w.split(": skipped ")[0].rsplit(":", 1)[1] for w in warnings] == ["2", "4", "5"]
    assert "not JSON" in warnings[0] and "a duplicate of line 1" in warnings[1] and "a torn last line" in warnings[2]
    assert "KeyChain-v0  expert  2 " in stdout
    assert code == 2 and "cannot write --html" in one_error_line(err)


def test_an_import_that_raises_is_one_line(tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "raising_envs.py").write_text("raise RuntimeError('no licence key')\n")
    (tmp_path / "unparsable_envs.py").write_text("x = (\n")
    code, _, err = run(capsys, "list", "--import", "raising_envs")
    line = one_error_line(err)
    assert code == 2 and "cannot import 'raising_envs' (from --import): it raised RuntimeError: no licence key" in line
    code, _, err = run(capsys, "rollout", "KeyChain-v0", "--import", "unparsable_envs")
    assert code == 2 and "SyntaxError: '(' was never closed" in one_error_line(err)


def test_list_shows_an_env_whose_entry_point_does_not_load_and_exits_1(capsys: Any) -> None:
    horizongym.register("Dangling-v0", "no_such_package.envs:Env")
    try:
        code, stdout, err = run(capsys, "list")
    finally:
        del gym.registry["horizongym/Dangling-v0"]
    assert code == 1 and "KeyChain-v0" in stdout
    assert "CANNOT LOAD its entry point 'no_such_package.envs:Env': ModuleNotFoundError" in stdout
    assert "Dangling-v0: registered, but the entry point does not load" in one_error_line(err)


# ----- the family commands ------------------------------------------------------------------------
def test_kernel_and_swe_commands_are_one_line(tmp_path: Path, capsys: Any) -> None:
    binary = tmp_path / "candidate.py"
    binary.write_bytes(b"\xff\xfe\x00model")
    code, _, err = run(capsys, "kernels", "eval", "softmax", str(binary), "--backend", "compile-only")
    assert code == 2 and "is not UTF-8 text" in one_error_line(err)
    code, _, err = run(capsys, "kernels", "eval", "softmax", str(binary), "--threads", "0")
    assert code == 2 and "argument --threads: must be at least 1" in one_error_line(err)
    code, _, err = run(capsys, "swe", "mine", "textkit-1.0", "--out", str(tmp_path / "t.jsonl"))
    assert code == 2 and "a source is 'NAME==VERSION'" in one_error_line(err)
    code, _, err = run(capsys, "swe", "mine", "embedded:textkit", "--out", "/proc/version/t.jsonl")
    assert code == 2 and "cannot write --out /proc/version/t.jsonl" in one_error_line(err)
    code, _, err = run(capsys, "swe", "mine", "embedded:textkit", "--out", str(tmp_path / "t.jsonl"), "--workers", "0")
    assert code == 2 and "argument --workers: must be at least 1, got 0" in one_error_line(err)
    code, _, err = run(capsys, "swe", "mine", "embedded:nope", "--out", str(tmp_path / "t.jsonl"))
    assert code == 2 and "no embedded library 'nope'" in one_error_line(err)
    bad = tmp_path / "tasks.jsonl"
    bad.write_text('{"instance_id": "x"}\n')
    code, _, err = run(capsys, "rollout", "SWE-v0", "--tasks", str(bad), "--out", str(tmp_path / "e.jsonl"))
    line = one_error_line(err)
    assert code == 2 and f"{bad}:1: not a valid SWE instance: repo: Field required" in line and "(and " in line


# ----- the real command ----------------------------------------------------------------------------
def test_rollout_of_an_unbuildable_env_exits_2_with_the_constructors_message(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "horizongym", "rollout", "KeyChain-v0", "-n", "3", "--out", str(out),
         "--env-kwargs", '{"bogus": 1}'],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "cannot build KeyChain-v0" in result.stderr and "unexpected keyword argument 'bogus'" in result.stderr
    assert not out.exists()


def test_a_rollout_server_without_lora_is_one_line_naming_both_flags(tmp_path: Path, capsys: Any) -> None:
    code, _, err = run(
        capsys, "train", "KeyChain-v0", "--out", str(tmp_path / "run"), "--rollout-server", "http://h/v1"
    )
    line = one_error_line(err)
    assert code == 2 and "--rollout-server:" in line and "--lora-rank" in line
    assert not (tmp_path / "run").exists()
