"""The page of ``horizongym view`` in headless Chromium (Selenium), against the real app on a real port:
a run filtered and an episode opened turn by turn; a KeyChain game played to the end in the browser
and found in the play-out file; "play from here" on a stored turn, stored as a branch; the first
render of a 10,000-episode run (timed in the log, with ``-s``); a trainer's curves as SVG.

One server and one browser for the module. ``HORIZONGYM_SCREENSHOTS=DIR`` also puts the
screenshots in DIR (the README's is made so)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from horizongym.agents.experts.keychain import KeyChainExpert
from horizongym.envs import full_id, register
from horizongym.envs.keychain import KeyChainEnv
from horizongym.serverthread import ServerThread
from horizongym.training.rollouts import EnvRecipe, Episode, EpisodeStore, RolloutEngine, read_episodes
from horizongym.view.app import create_app
from horizongym.view.catalog import RunCatalog
from horizongym.view.play import BrowserPlay

BIG_RUN = 10_000


class CrashingKeyChain(KeyChainEnv):
    """KeyChain-v0 whose third step raises."""

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        if self.state.turn == 2:
            raise RuntimeError("disk on fire")
        return super().step(action)


WAIT_S = 20
TRAIN_ARGS = [
    "KeyChain-v0",
    "--policy",
    "tiny",
    "--steps",
    "3",
    "--group",
    "2",
    "--tasks-per-step",
    "1",
    "--max-new-tokens",
    "6",
    "--env-kwargs",
    '{"max_turns": 2}',
    "--eval-every",
    "3",
    "--eval-tasks",
    "2",
    "--quiet",
]


def horizongym(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "horizongym", *args], capture_output=True, text=True, timeout=300)


@dataclass
class Served:
    """The app on its port, with the files behind its runs."""

    url: str
    catalog: RunCatalog
    mixed: Path
    """r0: KeyChain episodes of the expert (all succeed) and of the random policy."""
    forkable: Path
    """r1: the expert's KeyChain episodes, for "play from here"."""
    big: Path
    """r2: 10,000 episodes."""
    play_out: Path
    training: subprocess.Popen[str]
    train_out: Path


def rollout(out: Path, policy: str, n: int) -> list[Episode]:
    made = horizongym("rollout", "KeyChain-v0", "--policy", policy, "-n", str(n), "--out", str(out), "--quiet")
    assert made.returncode == 0, made.stderr
    return read_episodes(out)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("view")
    train_out = root / "train"
    # a real trainer run (a tiny model, three steps) meanwhile: the curves test, last, waits for it
    training = subprocess.Popen(
        [sys.executable, "-m", "horizongym", "train", *TRAIN_ARGS, "--out", str(train_out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        expert = rollout(root / "expert.jsonl", "expert", 4)
        random = rollout(root / "random.jsonl", "random", 4)
        mixed = root / "mixed.jsonl"
        mixed.write_text((root / "expert.jsonl").read_text() + (root / "random.jsonl").read_text())
        assert len(read_episodes(mixed)) == len(expert) + len(random)
        forkable = root / "forkable.jsonl"
        forkable.write_text((root / "expert.jsonl").read_text())
        big = root / "big.jsonl"
        with big.open("w") as out:
            for i in range(BIG_RUN):  # the expert's and random's episodes again, each under its own seed
                out.write((expert + random)[i % 8].model_copy(update={"seed": i}).model_dump_json() + "\n")
        play_out = root / "play" / "play.jsonl"
        catalog = RunCatalog([mixed, forkable, big])
        app = create_app(catalog, play=BrowserPlay(catalog, play_out))
        with ServerThread(app) as server:
            yield Served(server.url, catalog, mixed, forkable, big, play_out, training, train_out)
    finally:
        if training.poll() is None:
            training.kill()
        training.wait()


def wait(driver: Any, until: Any, what: str) -> Any:
    """``until(driver)`` once it is true (the page re-renders meanwhile: a stale element is tried again)."""
    waiting = WebDriverWait(driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))
    return waiting.until(lambda d: until(d), message=f"waited {WAIT_S} s for {what}")


def rows(driver: Any, column: str = "n") -> list[Any]:
    """The episode table's rows, as their numbers or the text of one column (read at once, in the page)."""
    script = (
        "return [...document.querySelectorAll('tr.episode-row')]"
        ".map(r => r.querySelector('.col-' + arguments[0]).textContent)"
    )
    cells = driver.execute_script(script, column)
    return [int(cell) for cell in cells] if column == "n" else cells


def go(driver: Any, url: str) -> None:
    """A fresh page load (a change of the hash alone would not reload the page)."""
    driver.get("about:blank")
    driver.get(url)


@pytest.fixture
def browser(chromium: Any) -> Iterator[Any]:
    """The module's browser; the test fails on an uncaught error of the page's script."""
    chromium.get_log("browser")
    yield chromium
    uncaught = [entry["message"] for entry in chromium.get_log("browser") if "Uncaught" in entry["message"]]
    assert not uncaught, uncaught


def test_filter_a_run_and_open_an_episode(served: Served, browser: Any, screenshot: Any) -> None:
    episodes = read_episodes(served.mixed)
    failed = [n for n, e in enumerate(episodes) if e.success is False]
    assert failed and len(failed) < len(episodes)
    go(browser, f"{served.url}/#/run/r0")
    wait(browser, lambda d: len(rows(d)) == len(episodes), "the run's rows")
    assert browser.find_element(By.ID, "episode-total").text == str(len(episodes))

    Select(browser.find_element(By.ID, "filter-success")).select_by_value("false")
    wait(browser, lambda d: rows(d) == failed, f"the failed episodes {failed}")
    assert browser.find_element(By.ID, "episode-total").text == str(len(failed))
    assert set(rows(browser, "policy")) == {"random"}

    n = failed[0]
    browser.find_element(By.CSS_SELECTOR, f'tr.episode-row[data-n="{n}"]').click()
    episode = episodes[n]
    turns = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".turn"), f"the turns of episode {n}")
    assert [t.get_attribute("data-turn") for t in turns] == [str(s.turn) for s in episode.steps]
    components = browser.find_elements(By.CSS_SELECTOR, ".turn .reward-components")
    assert len(components) == len(episode.steps)
    for block, step in zip(components, episode.steps, strict=True):
        assert block.text.startswith("reward") and all(name in block.text for name in step.reward_components)
    assert episode.termination_reason in browser.find_element(By.CSS_SELECTOR, ".termination").text
    assert screenshot("episode").stat().st_size > 10_000


def expert_move(observations: list[str]) -> tuple[str, dict[str, Any]]:
    action = KeyChainExpert().decide([{"role": "user", "content": o} for o in observations], [], None)
    call = action.tool_calls[0]
    return call.name, call.arguments


def send_and_wait(driver: Any, turn: int) -> str:
    driver.find_element(By.ID, "play-send").click()
    wait(
        driver,
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#play-transcript .play-turn:not(.replayed)")) >= turn,
        f"turn {turn}",
    )
    return driver.find_element(By.ID, "play-observation").text


def test_play_a_keychain_game_to_the_end(served: Served, browser: Any, screenshot: Any) -> None:
    go(browser, f"{served.url}/#/play")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#play-env option[value="KeyChain-v0"]'), "the env list")
    Select(browser.find_element(By.ID, "play-env")).select_by_value("KeyChain-v0")
    seed = browser.find_element(By.ID, "play-seed")
    seed.clear()
    seed.send_keys("11")
    browser.find_element(By.ID, "play-start").click()
    observation = browser.find_element(By.ID, "play-observation")
    wait(browser, lambda d: "Start key" in observation.text, "the first observation")
    seen = [observation.text]
    turn = 0
    while "done" not in browser.find_element(By.ID, "play-status").text:
        name, arguments = expert_move(seen)
        turn += 1
        if turn == 1:  # typed, as a model writes it
            browser.find_element(By.ID, "play-action").send_keys(f"<{name}>{next(iter(arguments.values()))}</{name}>")
        else:  # the tool form, its fields made from the tool's schema
            Select(browser.find_element(By.ID, "play-tool")).select_by_value(name)
            for field, value in arguments.items():
                browser.find_element(By.CSS_SELECTOR, f'.play-arg[data-name="{field}"]').send_keys(value)
        seen.append(send_and_wait(browser, turn))
        assert turn < 20, "the expert's game did not end"
    status = browser.find_element(By.ID, "play-status").text
    assert str(served.play_out) in status
    assert "+1" in browser.find_element(By.ID, "play-reward").text
    screenshot("play")

    (stored,) = read_episodes(served.play_out)
    assert (stored.env_id, stored.seed, stored.policy, stored.success) == ("KeyChain-v0", 11, "human", True)
    assert [s.observation for s in stored.steps] == seen[1:] and stored.steps[-1].observation == "Correct."


def test_play_from_here_stores_a_branch(served: Served, browser: Any) -> None:
    original = read_episodes(served.forkable)[1]
    go(browser, f"{served.url}/#/run/r1/episode/1")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".turn")) == original.num_turns, "the turns")
    browser.find_element(By.CSS_SELECTOR, '.turn[data-turn="3"] .play-from-here').click()  # replays turns 1-2
    wait(browser, lambda d: d.find_element(By.ID, "play-observation").text == original.steps[1].observation, "turn 2")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#play-transcript .play-turn.replayed")) == 2
    browser.find_element(By.ID, "play-action").send_keys(original.steps[-1].action)  # the right answer at once
    assert send_and_wait(browser, 1) == "Correct."
    wait(browser, lambda d: "done" in d.find_element(By.ID, "play-status").text, "done")

    episodes = read_episodes(served.forkable)
    branch = episodes[-1]
    assert (branch.seed, branch.branch, branch.parent_branch, branch.fork_turn) == (original.seed, 1, 0, 2)
    assert branch.steps[:2] == original.steps[:2] and branch.num_turns == 3 and branch.success is True


def test_first_render_of_a_10000_episode_run(served: Served, browser: Any) -> None:
    go(browser, f"{served.url}/#/run/r2")
    wait(browser, lambda d: len(rows(d)) == 50, "the first page of rows")
    ms = browser.execute_script("return performance.now()")
    print(f"\nfirst rows of a {BIG_RUN}-episode run rendered {ms:.0f} ms after navigation (Chromium, headless)")
    assert rows(browser) == list(range(50)) and browser.find_element(By.ID, "episode-total").text == str(BIG_RUN)
    browser.find_element(By.ID, "pager-next").click()
    wait(browser, lambda d: rows(d) == list(range(50, 100)), "the second page")


def test_training_curves_of_a_trainer_run(served: Served, browser: Any) -> None:
    assert served.training.wait(timeout=240) == 0, served.training.stderr.read() if served.training.stderr else ""
    run = served.catalog.add(served.train_out)
    records = [json.loads(line) for line in (served.train_out / "metrics.jsonl").read_text().splitlines()]
    metrics = ["reward_mean", "loss", "tokens_per_s"]
    go(browser, f"{served.url}/#/curves?runs={run.id}&metrics={','.join(metrics)}")
    charts = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#curves svg"), "the charts")
    assert len(charts) == len(metrics)
    for chart, metric in zip(charts, metrics, strict=True):
        assert metric in chart.get_attribute("aria-label")
        (line,) = chart.find_elements(By.CSS_SELECTOR, ".series polyline")
        assert len(line.get_attribute("points").split()) == len(records)


def test_the_curves_show_the_held_out_evaluation(served: Served, browser: Any) -> None:
    """The trainer logs the evaluation nested (``"eval": {"success_rate": ...}``): its curves are drawn,
    and shown without asking, one point per evaluated step."""
    assert served.training.wait(timeout=240) == 0
    run = served.catalog.add(served.train_out)
    records = [json.loads(line) for line in (served.train_out / "metrics.jsonl").read_text().splitlines()]
    evaluated = [r["eval"] for r in records if "eval" in r]
    assert evaluated, "the trainer run evaluates (--eval-every)"
    go(browser, f"{served.url}/#/curves?runs={run.id}")
    rows = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#curves .chart-row"), "the charts")
    shown = {row.get_attribute("data-metric"): row for row in rows}
    assert {"eval.success_rate", "eval.reward_mean", "reward_mean"} <= set(shown)
    for key in ("success_rate", "reward_mean"):
        (line,) = shown[f"eval.{key}"].find_elements(By.CSS_SELECTOR, ".series polyline")
        assert len(line.get_attribute("points").split()) == len(evaluated)


def test_a_turn_that_raised_is_shown_after_the_turns(
    served: Served, browser: Any, tmp_path: Path, screenshot: Any
) -> None:
    """An env whose third step raised: the record keeps two steps and the action that raised (its
    assistant message and ``unfinished_action``); the page shows both turns by their messages and the
    third, unfinished, with the error."""
    path = tmp_path / "raised.jsonl"
    register("CrashingKeyChain-v0", CrashingKeyChain)
    try:  # registered for this test only (other modules list every env)
        with (
            EpisodeStore(path) as store,
            RolloutEngine(
                EnvRecipe("CrashingKeyChain-v0", {}), KeyChainExpert(), store=store, progress=False
            ) as engine,
        ):
            engine.run_sync(1, 1)
    finally:
        del gym.registry[full_id("CrashingKeyChain-v0")]
    (episode,) = read_episodes(path)
    assert episode.outcome == "env_error" and episode.num_turns == 2 and episode.unfinished_action
    run = served.catalog.add(path)
    go(browser, f"{served.url}/#/run/{run.id}/episode/0")
    turns = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".turn"), "the turns")
    assert [t.get_attribute("data-turn") for t in turns] == ["1", "2", "3"]
    assert "unfinished" in (turns[2].get_attribute("class") or "")
    assert "disk on fire" in turns[2].text and '"key"' in turns[2].text
    for turn, step in zip(turns[:2], episode.steps, strict=True):  # by their messages: the tool's answer
        assert turn.find_elements(By.CSS_SELECTOR, ".msg.role-tool") and step.observation in turn.text
    screenshot("raised")


def test_a_trained_episode_shows_token_log_probs_and_advantages(served: Served, browser: Any, screenshot: Any) -> None:
    """The curves test has waited for the trainer run: an episode of it shows each generated token
    coloured by its log-prob and each turn's advantage, as the trainer stored them."""
    assert served.training.wait(timeout=240) == 0
    run = served.catalog.add(served.train_out)
    episodes = read_episodes(served.train_out / "episodes.jsonl")
    n, episode = next((i, e) for i, e in enumerate(episodes) if e.num_turns >= 2 and e.trainable)
    go(browser, f"{served.url}/#/run/{run.id}/episode/{n}")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".turn")) == episode.num_turns, "the turns")
    tokens = browser.find_elements(By.CSS_SELECTOR, ".turn .token")
    assert len(tokens) == sum(len(step.token_ids or ()) for step in episode.steps)
    shown = [float(t.get_attribute("data-logprob")) for t in tokens]
    stored = [lp for step in episode.steps for lp in (step.logprobs or ())]
    assert shown == pytest.approx(stored, abs=1e-3)
    cells = browser.find_elements(By.CSS_SELECTOR, ".turn .advantage")
    assert [float(c.get_attribute("data-advantage")) for c in cells] == pytest.approx(
        [step.advantage for step in episode.steps], abs=1e-3
    )
    screenshot("credit")


def test_a_team_turn_shows_its_graph(served: Served, browser: Any, tmp_path: Path, screenshot: Any) -> None:
    """A team's episode: each turn has a collapsed "team" block whose SVG draws the turn's agents
    (one titled circle per agent and round) from the step's policy trace."""
    team = Path(__file__).resolve().parent.parent / "agents" / "team" / "examples" / "search_vote.json"
    path = tmp_path / "team.jsonl"
    made = horizongym("rollout", "SearchJudge-v0", "--policy", f"team:{team}", "-n", "1", "--out", str(path), "--quiet")
    assert made.returncode == 0, made.stderr
    (episode,) = read_episodes(path)
    run = served.catalog.add(path)
    go(browser, f"{served.url}/#/run/{run.id}/episode/0")
    blocks = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".turn details.team-graph"), "the team blocks")
    assert len(blocks) == episode.num_turns >= 2
    first = blocks[0]
    assert first.get_attribute("open") is None and "team search-vote" in first.text
    first.find_element(By.TAG_NAME, "summary").click()
    svg = wait(browser, lambda d: first.find_element(By.TAG_NAME, "svg"), "the team picture")
    assert svg.is_displayed() and svg.size["width"] > 100
    titles = [t.get_attribute("textContent") for t in svg.find_elements(By.CSS_SELECTOR, "circle > title")]
    assert sorted(titles) == sorted(
        f"{agent}, round {r}: spoke" for agent in ("researcher", "checker", "guesser") for r in (1, 2)
    )
    screenshot("team-graph")
