"""Property tests of the episode store's reader: a file torn, truncated, with lines duplicated or
edited by hand gives a warning naming FILE:LINE for each bad line, loses no other episode, and a
resumed run appends to it without storing any episode twice."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from horizongym.training.rollouts import Episode, EpisodeStore, Step, read_episodes
from horizongym.training.rollouts.store import MAX_LINE_WARNINGS, EpisodeFileWarning, NotAnEpisodeFile

TEXT = st.text(max_size=40)  # any unicode, newlines and quotes included: JSON escapes them


@st.composite
def episodes(draw: st.DrawFn) -> Episode:
    turns = draw(st.integers(0, 3))
    steps = [
        Step(
            turn=t + 1,
            action=draw(TEXT),
            observation=draw(TEXT),
            reward=draw(st.floats(-1, 1)),
            tool_calls=({"name": draw(TEXT), "arguments": {draw(TEXT): draw(TEXT)}, "id": None},),
        )
        for t in range(turns)
    ]
    return Episode(
        env_id=draw(st.sampled_from(["KeyChain-v0", "LongChain-v0"])),
        env_kwargs=draw(st.sampled_from([{}, {"max_depth": 2}])),
        seed=draw(st.integers(0, 2**40)),
        sample=draw(st.integers(0, 3)),
        policy=draw(st.sampled_from(["expert", "random"])),
        task_id=draw(TEXT),
        messages=[{"role": "user", "content": draw(TEXT)}],
        steps=steps,
        total_reward=sum(s.reward for s in steps),
        termination_reason=draw(st.sampled_from(["terminated", "max_turns", "env_error", None])),
    )


def identity(episode: Episode) -> tuple[Any, ...]:
    return (
        episode.env_id,
        json.dumps(episode.env_kwargs, sort_keys=True),
        episode.policy,
        episode.seed,
        episode.sample,
    )


def line_of(episode: Episode) -> bytes:
    return episode.model_dump_json().encode() + b"\n"


def hand_edits(line: bytes, kind: int, text: str) -> bytes:
    """``line`` edited so that it is no longer an episode (one of several ways), still one line."""
    record = json.loads(line)
    if kind == 0:
        record["seed"] = "forty-two"  # a value of the wrong type
    elif kind == 1:
        del record["env_id"]  # a field removed
    elif kind == 2:
        record["termination_reason"] = "exploded"  # a value outside the allowed ones
    elif kind == 3:
        return line.rstrip(b"\n")[:-1] + b"\n"  # the closing brace deleted: not JSON
    elif kind == 4:
        return b"\xff\xfe" + text.replace("\n", " ").encode() + b"\n"  # not UTF-8
    elif kind == 5:
        return b"#" + text.replace("\n", " ").encode() + b"\n"  # free text
    else:
        return b"[" * 5000 + b"\n"  # nested deeper than a parser goes
    return json.dumps(record).encode() + b"\n"


@st.composite
def damaged_files(draw: st.DrawFn) -> tuple[list[Episode], list[bytes]]:
    """Some episodes' lines, then damage: edits, duplicates, blank lines, a torn or truncated end."""
    stored = draw(st.lists(episodes(), min_size=1, max_size=6, unique_by=identity))
    lines = [line_of(e) for e in stored]
    for _ in range(draw(st.integers(0, 3))):  # hand-edited lines
        index = draw(st.integers(0, len(lines) - 1))
        if lines[index] == line_of(stored[index]):
            lines[index] = hand_edits(lines[index], draw(st.integers(0, 6)), draw(TEXT))
    for _ in range(draw(st.integers(0, 3))):  # a line copied further down (the same episode twice)
        source = draw(st.integers(0, len(lines) - 1))
        lines.insert(draw(st.integers(source + 1, len(lines))), lines[source])
    for _ in range(draw(st.integers(0, 2))):  # blank lines
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from([b"\n", b"   \n", b"\r\n"])))
    data = b"".join(lines)
    end = draw(st.one_of(st.just(len(data)), st.integers(0, len(data))))  # a torn write or a truncated copy
    return stored, split_lines(data[:end])


def split_lines(data: bytes) -> list[bytes]:
    """``data``'s lines as the store reads them: split at each newline only, kept on each line."""
    parts = data.split(b"\n")
    return [part + b"\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def expected_reading(lines: list[bytes], stored: list[Episode]) -> tuple[list[Episode], set[int]]:
    """What a reader must give for ``lines``: the stored episodes whose line is intact, each once, in
    file order (a whole last line that lacks only its newline is intact); and the numbers of the
    lines it must warn about."""
    intact = {line_of(e): e for e in stored}
    read, seen, bad = [], set(), set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        episode = intact.get(line if line.endswith(b"\n") else line + b"\n")
        if episode is not None and identity(episode) not in seen:
            seen.add(identity(episode))
            read.append(episode)
        else:
            bad.add(number)
    return read, bad


def read_with_warnings(path: Path) -> tuple[list[Episode] | NotAnEpisodeFile, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: list[Episode] | NotAnEpisodeFile = read_episodes(path)
        except NotAnEpisodeFile as exc:
            result = exc
    assert all(issubclass(w.category, EpisodeFileWarning) for w in caught)
    return result, [str(w.message) for w in caught]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=damaged_files())
def test_damaged_files_warn_per_bad_line_and_lose_no_other_episode(
    case: tuple[list[Episode], list[bytes]], tmp_path: Path
) -> None:
    stored, lines = case
    path = tmp_path / "episodes.jsonl"
    path.write_bytes(b"".join(lines))
    read, bad = expected_reading(lines, stored)
    result, messages = read_with_warnings(path)

    whole_bad_lines = any(lines[n - 1].endswith(b"\n") for n in bad)
    if not read and whole_bad_lines:
        assert isinstance(result, NotAnEpisodeFile) and str(path) in str(result)
    else:
        assert result == read
    warned = {int(m.split(": skipped ")[0].rsplit(":", 1)[1]) for m in messages if ": skipped " in m}
    if len(bad) <= MAX_LINE_WARNINGS:
        assert warned == bad
    else:
        assert len(warned) == MAX_LINE_WARNINGS and warned <= bad
        assert f"skipped {len(bad) - MAX_LINE_WARNINGS} more bad lines" in messages[-1]
    assert all(m.startswith(f"{path}:") for m in messages)

    if isinstance(result, NotAnEpisodeFile):
        return
    # a resumed run: the finished keys are those read, and appending keeps every episode once
    new = Episode(env_id="KeyChain-v0", seed=2**41, sample=0, termination_reason="terminated")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with EpisodeStore(path) as store:
            assert store.finished_keys() == {e.key for e in read}
            store.append(new)
        again = read_episodes(path)
    assert again == [*read, new]
    assert path.read_bytes().endswith(b"\n")


def test_a_duplicate_keeps_the_first_and_is_not_run_again(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    first = Episode(env_id="KeyChain-v0", seed=3, total_reward=1.0, termination_reason="terminated")
    second = first.model_copy(update={"total_reward": 0.0})
    other_policy = first.model_copy(update={"policy": "random"})
    path.write_bytes(line_of(first) + line_of(second) + line_of(other_policy))
    with pytest.warns(EpisodeFileWarning, match=r"e\.jsonl:2: skipped a duplicate of line 1 .*the first is kept"):
        assert read_episodes(path) == [first, other_policy]  # another policy's episode is another episode
    with pytest.warns(EpisodeFileWarning), EpisodeStore(path) as store:
        assert store.finished_keys("KeyChain-v0", {}) == {(3, 0)}


def test_a_whole_last_episode_without_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    episodes = [Episode(env_id="KeyChain-v0", seed=seed, termination_reason="terminated") for seed in range(3)]
    path.write_bytes(line_of(episodes[0]) + line_of(episodes[1]).rstrip(b"\n"))
    assert read_episodes(path) == episodes[:2]
    with EpisodeStore(path) as store:
        assert store.finished_keys() == {(0, 0), (1, 0)}
        store.append(episodes[2])
    assert read_episodes(path) == episodes


def test_warnings_stop_after_ten_lines_and_count_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    good = line_of(Episode(env_id="KeyChain-v0", seed=0))
    path.write_bytes(good + b"oops\n" * 25)
    result, messages = read_with_warnings(path)
    assert isinstance(result, list) and len(result) == 1
    assert len(messages) == MAX_LINE_WARNINGS + 1 and messages[-1].endswith("skipped 15 more bad lines")


def test_a_file_of_something_else_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "questions.jsonl"
    path.write_text('{"question": "q1"}\n{"question": "q2"}\n')
    with pytest.warns(EpisodeFileWarning), pytest.raises(NotAnEpisodeFile, match="none of its lines is an episode"):
        read_episodes(path)
    with pytest.warns(EpisodeFileWarning), pytest.raises(NotAnEpisodeFile):
        EpisodeStore(path).finished_keys()
    torn_only = tmp_path / "killed.jsonl"  # a run killed in its first write: not refused, just empty
    torn_only.write_bytes(line_of(Episode(env_id="KeyChain-v0", seed=0))[:50])
    with pytest.warns(EpisodeFileWarning, match="a torn last line"):
        assert read_episodes(torn_only) == []
