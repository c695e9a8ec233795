"""``horizongym play --from RUN.jsonl#EPISODE:TURN``, run as a person would run it: a real run made by
``rollout``, replayed to the turn, played on from standard input, the branch stored in the same file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from horizongym.training.rollouts import Episode, read_episodes
from horizongym.training.rollouts.fork_play import next_branch, prefix_messages


def horizongym(*args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "horizongym", *args], input=stdin, capture_output=True, text=True, timeout=120, cwd=cwd
    )


@pytest.fixture
def run(keychain_run_copy: Path) -> Path:
    return keychain_run_copy


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_play_on_from_turn_2_saves_a_branch_of_the_episode(run: Path) -> None:
    recorded = read_episodes(run)
    original = recorded[0]
    answer = original.steps[-1].action  # the expert's right answer
    played = horizongym("play", "KeyChain-v0", "--from", f"{run}#0:2", stdin=answer + "\n")
    assert played.returncode == 0, played.stderr
    assert original.steps[1].observation in played.stdout  # the observation of turn 2, shown before the keyboard
    assert "Correct." in played.stdout and "saved: branch 1 of episode 0" in played.stdout

    episodes = read_episodes(run)
    assert len(episodes) == 3 and episodes[:2] == recorded
    branch = episodes[2]
    assert (branch.branch, branch.parent_branch, branch.fork_turn) == (1, 0, 2)
    assert (branch.env_id, branch.env_kwargs, branch.seed, branch.sample, branch.task_id) == (
        original.env_id,
        original.env_kwargs,
        original.seed,
        original.sample,
        original.task_id,
    )
    assert branch.policy == "human"
    assert branch.steps[:2] == original.steps[:2]  # the shared prefix, copied as recorded
    assert len(branch.steps) == 3
    new = branch.steps[2]
    assert (new.turn, new.action, new.observation, new.reward, new.terminated) == (3, answer, "Correct.", 1.0, True)
    assert (branch.total_reward, branch.success, branch.termination_reason, branch.outcome) == (
        1.0,
        True,
        "terminated",
        "completed",
    )
    assert branch.messages[: len(prefix_messages(original.messages, 2))] == prefix_messages(original.messages, 2)
    assert branch.messages[-2:] == [{"role": "assistant", "content": answer}, {"role": "user", "content": "Correct."}]
    # the stored branch is a complete episode: replay runs it again from the reset, to the same end
    replayed = horizongym("replay", str(run), "--quiet")
    assert replayed.returncode == 0 and "all 3 replayed episodes match" in replayed.stdout, replayed.stdout


def test_a_branch_of_a_branch_and_a_quit_that_truncates_it(run: Path) -> None:
    original = read_episodes(run)[0]
    first = horizongym("play", "--from", f"{run}#0:2", stdin=original.steps[-1].action + "\n")
    assert first.returncode == 0, first.stderr
    # fork the branch (episode 2 of the file) at its turn 1: one lookup, then /quit
    second = horizongym("play", "--from", f"{run}#2:1", stdin="<lookup>nowhere</lookup>\n/quit\n")
    assert second.returncode == 0, second.stderr
    assert "saved: branch 2 of episode 2" in second.stdout
    branch = read_episodes(run)[3]
    assert (branch.branch, branch.parent_branch, branch.fork_turn, len(branch.steps)) == (2, 1, 1, 2)
    assert branch.steps[0] == original.steps[0]
    assert (branch.termination_reason, branch.outcome, branch.truncated, branch.terminated) == (
        "max_turns",
        "truncated",
        True,
        False,
    )
    assert branch.success is None and "stopped at the keyboard after turn 2" in (branch.termination_detail or "")


def test_from_the_reset_and_what_is_not_saved(run: Path) -> None:
    before = run.read_text()
    at_once = horizongym("play", "--from", f"{run}#1:0", stdin="/quit\n")
    assert at_once.returncode == 0 and "nothing saved" in at_once.stdout
    assert read_episodes(run)[1].messages[0]["content"] in at_once.stdout  # the first observation
    unsaved = horizongym("play", "--from", f"{run}#1:0", "--no-save", stdin="<lookup>x</lookup>\n/quit\n")
    assert unsaved.returncode == 0 and "not saved (--no-save)" in unsaved.stdout
    assert run.read_text() == before


def test_an_env_that_no_longer_reproduces_the_episode_stops_at_that_turn(run: Path) -> None:
    records = lines(run)
    records[0]["steps"][1]["observation"] = "maple = -> somewhere else"
    run.write_text("".join(json.dumps(r) + "\n" for r in records))
    before = run.read_text()
    result = horizongym("play", "--from", f"{run}#0:3", stdin="/quit\n")
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert "no longer reproduces this episode at turn 2: observation differs" in result.stderr
    assert "somewhere else" in result.stderr
    assert run.read_text() == before
    # the turns after the fork are not replayed: forking before the edited turn works
    assert horizongym("play", "--from", f"{run}#0:1", stdin="/quit\n").returncode == 0


def test_a_step_that_raises_is_saved_as_an_env_error_and_ends_play_with_one_line(run: Path, tmp_path: Path) -> None:
    (tmp_path / "boom_envs.py").write_text(
        "import horizongym\nfrom horizongym.envs.keychain import KeyChainEnv\n\n\n"
        "class BoomChain(KeyChainEnv):\n"
        "    def on_text(self, text):\n"
        "        if text == 'boom':\n"
        "            raise RuntimeError('the boom button')\n"
        "        return super().on_text(text)\n\n\n"
        "horizongym.register('BoomChain-v0', BoomChain)\n"
    )
    out = tmp_path / "boom.jsonl"  # the KeyChain run, as if played on BoomChain (the same env but for 'boom')
    out.write_text(json.dumps({**lines(run)[0], "env_id": "BoomChain-v0"}) + "\n")
    args = ("--import", "boom_envs")
    result = horizongym("play", "--from", f"{out}#0:1", *args, stdin="boom\n", cwd=tmp_path)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1
    assert "BoomChain-v0 raised in step 2" in result.stderr and "the boom button" in result.stderr
    branch = read_episodes(out)[1]
    assert (branch.branch, branch.fork_turn, branch.outcome, branch.unfinished_action) == (1, 1, "env_error", "boom")
    assert "RuntimeError: the boom button" in (branch.error or "") and len(branch.steps) == 1


def _edit_first(run: Path, **fields: object) -> None:
    records = lines(run)
    records[0].update(fields)
    run.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.mark.parametrize(
    ("args", "edit", "fragment"),
    [
        (("--from", "{tmp}/none.jsonl#0:1"), None, "no episode file at"),
        (("--from", "{run}"), None, "is not RUN.jsonl#EPISODE:TURN"),
        (("--from", "{run}#0"), None, "is not RUN.jsonl#EPISODE:TURN"),
        (("--from", "{run}#a:1"), None, "is not RUN.jsonl#EPISODE:TURN"),
        (("--from", "{run}#0:-1"), None, "is not RUN.jsonl#EPISODE:TURN"),
        (("--from", "{run}#2:0"), None, "holds 2 episodes: no episode 2 (pick 0..1)"),
        (("--from", "{run}#0:99"), None, "turns: no turn 99 (pick 0..{highest})"),
        (("--from", "{run}#0:{last}"), None, "ended at turn"),
        (("LongChain-v0", "--from", "{run}#0:1"), None, "was played on KeyChain-v0, not LongChain-v0"),
        (("Nope-v0", "--from", "{run}#0:1"), None, "unknown environment 'Nope-v0'"),
        (("--from", "{run}#0:1"), {"env_id": "Gone-v0"}, "was played on Gone-v0, which is not registered here"),
        (("--from", "{run}#0:1"), {"env_id": "ws://127.0.0.1:9"}, "a served env cannot be reproduced here"),
        (("--from", "{run}#0:1", "--seed", "3"), None, "drop --seed"),
        (("--from", "{run}#0:1", "--env-kwargs", "{}"), None, "drop --env-kwargs"),
        (("KeyChain-v0", "--no-save"), None, "--no-save goes with --from"),
        ((), None, "play needs ENV_ID, or --from RUN.jsonl#EPISODE:TURN"),
    ],
)
def test_bad_input_gets_one_clear_line_and_status_2(
    args: tuple[str, ...], edit: dict[str, object] | None, fragment: str, run: Path, tmp_path: Path
) -> None:
    if edit:
        _edit_first(run, **edit)
    turns = Episode.model_validate(
        lines(run)[0]
    ).num_turns  # its last turn ended it: turns - 1 is the highest to fork at
    filled = {"{tmp}": str(tmp_path), "{run}": str(run), "{last}": str(turns), "{highest}": str(turns - 1)}

    def fill(text: str) -> str:
        for name, value in filled.items():
            text = text.replace(name, value)
        return text

    before = run.read_text()
    given = [fill(a) for a in args]
    result = horizongym("play", *given, stdin="/quit\n")
    assert result.returncode == 2, result.stderr
    assert fill(fragment) in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert run.read_text() == before


def test_prefix_messages_keep_the_opening_and_whole_turns() -> None:
    opening: list[dict[str, Any]] = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "start"}]
    turn_1: list[dict[str, Any]] = [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "a"}, {"id": "b"}]},
        {"role": "tool", "tool_call_id": "a", "content": "A"},
        {"role": "tool", "tool_call_id": "b", "content": "B"},
    ]
    turn_2: list[dict[str, Any]] = [{"role": "assistant", "content": "text"}, {"role": "user", "content": "answer 2"}]
    unfinished: list[dict[str, Any]] = [{"role": "assistant", "content": "the step of this one raised"}]
    messages: list[dict[str, Any]] = [*opening, *turn_1, *turn_2, *unfinished]
    assert prefix_messages(messages, 0) == opening
    assert prefix_messages(messages, 1) == [*opening, *turn_1]
    assert prefix_messages(messages, 2) == [*opening, *turn_1, *turn_2]


def test_next_branch_counts_the_whole_tree_of_a_seed_and_sample() -> None:
    def episode(seed: int, sample: int, branch: int) -> Episode:
        return Episode(env_id="KeyChain-v0", seed=seed, sample=sample, branch=branch)

    episodes = [episode(0, 0, 0), episode(0, 0, 3), episode(0, 1, 5), episode(1, 0, 7)]
    assert next_branch(episodes, 0, 0) == 4
    assert next_branch(episodes, 0, 1) == 6
    assert next_branch(episodes, 2, 0) == 1
