"""Forkable episodes, env by env (issue 24's first must-show), on the real envs with their default data.

For KeyChain-v0, LongChain-v0, SearchJudge-v0, EmailInbox-v0, KernelGen-v0 and a LongChain-v0 in the
Markovian workspace, each built with ``horizongym.make`` (so Gymnasium's wrappers are on) and played
by the env's expert up to a fork turn t >= 1, after tool calls that changed the episode's state:

* a snapshot at turn t, a continuation to the end, a restore, the same continuation again: the same
  steps (observations, rewards, reward components and events, terminated/truncated, info);
* two restores of one snapshot share nothing: one plays on differently, and the other, and the env
  the snapshot was taken from, still play as an episode that was never forked (a fresh env reset with
  the same seed and given the same actions);
* a pickled snapshot restores in another process, into an env built there from the same id and
  keyword arguments, and plays the same steps;
* a restored episode keeps its turn limits: the env's own (``max_turns``, the workspace's
  ``max_rounds``) and Gymnasium's ``TimeLimit`` (``max_episode_steps``);
* the errors: a snapshot before reset, a snapshot restored into another kind of env, and a served
  env (``horizongym.make("ws://...")``), whose episode lives on its server.

KernelGen-v0 times every submission anew, so its observations and rewards (made of the measured
speedup) differ from run to run: for it the steps are compared on what the env's ``replay_compares``
names (the calls, the error, each evaluation's status, correctness, rule violations and backend), as
``horizongym replay`` does, plus how the episode ended.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import pytest

import horizongym
from horizongym.agents.experts.kernels import solution_for
from horizongym.agents.scripted import ScriptedPolicy, expert_for
from horizongym.envs.base import REPLAY_COMPARES
from horizongym.envs.chain import ChainEnv
from horizongym.envs.longchain import LongChainEnv
from horizongym.envs.remote.server import SERVER_CONFIG, create_app
from horizongym.envs.snapshot import NotForkable, is_forkable, restore, snapshot
from horizongym.envs.workspace import make_workspace
from horizongym.serverthread import ServerThread

STEP_FIELDS = ("observation", "reward", "terminated", "truncated", "info")
MAX_STEPS = 40
"""No episode of these cases is longer; a longer one is a bug of the test or the env."""


def call(name: str, **arguments: Any) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


@dataclass(frozen=True)
class Case:
    """One env as the tests build and play it.

    ``fork_with`` are the actions up to the fork (None: the expert's choice), ``then`` the actions
    played right after it before the expert takes over, ``diverge`` a different way to end the episode
    from the fork, ``idle`` an action that neither ends the episode nor fails it (for the turn limits).
    """

    name: str
    env_id: str
    kwargs: dict[str, Any]
    fork_with: tuple[str | None, ...]
    diverge: tuple[str, ...]
    idle: str
    then: tuple[str, ...] = ()
    seed: int = 0
    options: dict[str, Any] | None = None
    workspace: bool = False
    limits: tuple[str, ...] = ("max_turns", "max_episode_steps")
    """The constructor keywords that set a turn limit a restored episode must keep."""

    def build(self, **extra: Any) -> gym.Env[Any, Any]:
        kwargs = {**self.kwargs, **extra}
        return make_workspace(self.env_id, **kwargs) if self.workspace else horizongym.make(self.env_id, **kwargs)

    @property
    def fork_turn(self) -> int:
        return len(self.fork_with)


KERNEL_SOLUTION = solution_for("softmax", "cpp")
assert KERNEL_SOLUTION is not None

CASES = [
    Case(
        "keychain",
        "KeyChain-v0",
        {"min_depth": 4, "max_depth": 4},
        fork_with=(None, None),
        diverge=("<lookup>amber</lookup>", "<answer>0</answer>"),
        idle="<lookup>amber</lookup>",
        seed=3,
    ),
    Case(
        "longchain",
        "LongChain-v0",
        {"length": 6},
        fork_with=(None, None, None),
        diverge=("<answer>0</answer>",),
        idle="<lookup>k0000</lookup>",
        seed=5,
    ),
    Case(
        "search",
        "SearchJudge-v0",
        {},
        # a search, then a judgment and another search: the episode holds two retrievals, one to judge
        fork_with=(None, None),
        diverge=("<judge>No</judge>", "<search>harbour</search>", "<judge>Yes</judge>", "<answer>nobody</answer>"),
        idle="no command at all",
    ),
    Case(
        "email",
        "EmailInbox-v0",
        {},
        fork_with=(None,),  # a search that found the source email (the evidence says so)
        diverge=(
            call("read_email", message_id="<no-such-id>"),
            call("return_final_answer", answer="I don't know", sources=[]),
        ),
        idle=call("search_emails", keywords=["zzqxv"]),
        seed=2,
    ),
    Case(
        "kernel",
        "KernelGen-v0",
        {"backend": "cpu", "trials": 5, "checks": 2, "split": "all"},
        fork_with=(None,),  # the expert's kernel, built, checked and timed
        then=(f"```python\n{KERNEL_SOLUTION}```",),  # submitted again after the fork, then the expert finishes
        diverge=("```python\nimport os\n```", call("finish")),
        idle="no code here",
        options={"task_id": "L1/softmax"},
    ),
    Case(
        "workspace",
        "LongChain-v0",
        {"length": 6},
        fork_with=(None, None, None),
        diverge=("<report>lost</report><answer>0</answer>",),
        idle="<report>waiting</report><lookup>k0000</lookup>",
        seed=7,
        workspace=True,
        limits=("max_rounds",),  # the workspace raises the inner env's limits to its own
    ),
]
BY_NAME = {case.name: case for case in CASES}


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


# ----- playing ---------------------------------------------------------------------------------
@dataclass
class Agent:
    """The env's expert and the messages it has read, so that it can go on from a copy of an episode."""

    expert: ScriptedPolicy
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    scripted: list[str] = field(default_factory=list)

    def copy(self, scripted: Sequence[str] = ()) -> Agent:
        return Agent(self.expert, list(self.messages), self.tools, list(scripted))

    def act(self) -> str:
        if self.scripted:
            action = self.scripted.pop(0)
            self.messages.append({"role": "assistant", "content": action})
            return action
        decided = self.expert.decide(self.messages, self.tools, None)
        self.messages.append(decided.message())
        return decided.env_action()

    def sees(self, observation: str, info: dict[str, Any]) -> None:
        self.messages.append({"role": "user", "content": observation})
        self.tools = info.get("tools", self.tools)


Played = list[dict[str, Any]]
"""Each step: the action and what ``env.step`` returned (``STEP_FIELDS``)."""


def step(env: gym.Env[Any, Any], action: str) -> dict[str, Any]:
    observation, reward, terminated, truncated, info = env.step(action)
    answer = (observation, float(reward), terminated, truncated, info)
    return {"action": action, **dict(zip(STEP_FIELDS, answer, strict=True))}


def begin(case: Case, env: gym.Env[Any, Any]) -> tuple[Agent, Played]:
    """Reset ``env`` and play ``case.fork_with``: the episode at its fork turn, and the agent that played it."""
    observation, info = env.reset(seed=case.seed, options=case.options)
    agent = Agent(expert_for(case.env_id), [{"role": "user", "content": observation}], info["tools"])
    played = []
    for scripted in case.fork_with:
        if scripted is not None:
            agent.scripted.append(scripted)
        played.append(step(env, agent.act()))
        agent.sees(played[-1]["observation"], played[-1]["info"])
        assert not (played[-1]["terminated"] or played[-1]["truncated"]), f"{case.name} ended before its fork turn"
    return agent, played


def play_out(env: gym.Env[Any, Any], agent: Agent) -> Played:
    """Let ``agent`` play ``env`` to the end of the episode."""
    played: Played = []
    while not played or not (played[-1]["terminated"] or played[-1]["truncated"]):
        assert len(played) < MAX_STEPS, "the episode does not end"
        played.append(step(env, agent.act()))
        agent.sees(played[-1]["observation"], played[-1]["info"])
    return played


def replay(env: gym.Env[Any, Any], actions: Sequence[str]) -> Played:
    return [step(env, action) for action in actions]


def compared(env: gym.Env[Any, Any], played: Played) -> list[dict[str, Any]]:
    """What must be the same in two plays of the same actions: everything, or for an env whose answers hold
    timings (KernelGen-v0) what its ``replay_compares`` names, and how the episode ended."""
    names = getattr(env.unwrapped, "replay_compares", REPLAY_COMPARES)
    if names == REPLAY_COMPARES:
        return played
    views = []
    for record in played:
        info = record["info"]
        view: dict[str, Any] = {"action": record["action"], "terminated": record["terminated"]}
        view["truncated"] = record["truncated"]
        for name in names:
            head, _, key = name.partition(".")
            value = info.get(head)
            view[name] = value.get(key) if key and isinstance(value, dict) else value
        for ending in ("success", "termination_reason"):
            view[ending] = info.get(ending)
        view["turns_credited"] = len(info["turn_returns"]) if "turn_returns" in info else None
        views.append(view)
    return views


def fresh_play(case: Case, actions: Sequence[str]) -> tuple[gym.Env[Any, Any], Played]:
    """A never-forked episode: a fresh env reset with the case's seed and given ``actions``."""
    env = case.build()
    env.reset(seed=case.seed, options=case.options)
    return env, replay(env, actions)


# ----- the must-show ------------------------------------------------------------------------
def test_a_restored_episode_plays_the_same_continuation_again(case: Case) -> None:
    env = case.build()
    agent, before = begin(case, env)
    assert any(record["info"].get("tool_calls") for record in before), "no tool ran before the fork"
    taken = snapshot(env)
    assert taken.turn == case.fork_turn
    first = play_out(env, agent.copy(case.then))
    restore(env, taken)
    again = replay(env, [record["action"] for record in first])
    assert compared(env, again) == compared(env, first)
    restore(env, taken)  # a snapshot serves any number of restores
    assert compared(env, replay(env, [record["action"] for record in first])) == compared(env, first)


def test_two_restores_of_one_snapshot_share_nothing(case: Case) -> None:
    original = case.build()
    agent, before = begin(case, original)
    taken = snapshot(original)
    one, two = case.build(), case.build()
    restore(one, taken)
    restore(two, taken)
    diverged = replay(one, case.diverge)  # changes what the episode holds: its searches, evidence, results
    assert diverged[-1]["terminated"] or diverged[-1]["truncated"]
    continued = play_out(two, agent.copy(case.then))
    actions = [record["action"] for record in continued]
    reference_env, reference = fresh_play(case, [record["action"] for record in before] + actions)
    reference = reference[case.fork_turn :]
    assert compared(two, continued) == compared(reference_env, reference)
    assert compared(original, replay(original, actions)) == compared(reference_env, reference)
    assert compared(one, diverged) != compared(reference_env, reference[: len(diverged)])


def test_unchanging_task_data_is_shared_by_restores_never_copied() -> None:
    """A chain task is drawn once and only read: a snapshot and its restores hold the same one, and the
    rest of the episode's state (turn, rewards) is each restore's own."""
    case = BY_NAME["longchain"]
    original = case.build()
    begin(case, original)
    taken = snapshot(original)
    one, two = case.build(), case.build()
    restore(one, taken)
    restore(two, taken)
    chain_envs = [env.unwrapped for env in (original, one, two)]
    assert all(isinstance(env, ChainEnv) for env in chain_envs)
    first, second, third = (env for env in chain_envs if isinstance(env, ChainEnv))
    assert second.chain_task is first.chain_task is third.chain_task
    assert second.state is not third.state and second.state == third.state


def test_env_level_resources_stay_out_of_snapshots() -> None:
    """The retriever, the mail store and the kernel evaluator belong to the env: a snapshot holds none of
    them (it pickles in a few kilobytes), and a restore keeps the env's own."""
    for name, resource in (("search", "retriever"), ("email", "store"), ("kernel", "evaluator")):
        case = BY_NAME[name]
        env = case.build()
        begin(case, env)
        kept = getattr(env.unwrapped, resource)
        taken = snapshot(env)
        assert len(pickle.dumps(taken)) < 16_000, f"{name}: the snapshot holds more than the episode"
        other = case.build()
        own = getattr(other.unwrapped, resource)
        restore(other, taken)
        assert getattr(other.unwrapped, resource) is own and getattr(env.unwrapped, resource) is kept


CHILD = """
import pickle, sys
import horizongym
from horizongym.envs.snapshot import restore
from horizongym.envs.workspace import make_workspace

env_id, kwargs, workspace, taken, actions = pickle.load(sys.stdin.buffer)
env = make_workspace(env_id, **kwargs) if workspace else horizongym.make(env_id, **kwargs)
restore(env, taken)
played = []
for action in actions:
    observation, reward, terminated, truncated, info = env.step(action)
    played.append({"action": action, "observation": observation, "reward": float(reward), "terminated": terminated,
                   "truncated": truncated, "info": info})
sys.stdout.buffer.write(pickle.dumps(played))
"""


def test_a_pickled_snapshot_restores_in_another_process(case: Case) -> None:
    env = case.build()
    agent, _ = begin(case, env)
    taken = snapshot(env)
    sent = pickle.dumps(taken)  # before the env plays on
    here = play_out(env, agent.copy(case.then))
    actions = [record["action"] for record in here]
    child = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=pickle.dumps((case.env_id, case.kwargs, case.workspace, pickle.loads(sent), actions)),
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == 0, child.stderr.decode()[-2000:]
    there = pickle.loads(child.stdout)
    assert compared(env, there) == compared(env, here)


def limited_cases() -> Iterator[Any]:
    """Each case with each of its turn limits."""
    for each in CASES:
        for limit in each.limits:
            yield pytest.param(each, limit, id=f"{each.name}-{limit}")


@pytest.mark.parametrize(("limited_case", "limit"), list(limited_cases()))
def test_a_restored_episode_keeps_its_turn_limit(limited_case: Case, limit: str) -> None:
    case = limited_case
    turns = case.fork_turn + 2
    env = case.build(**{limit: turns})
    begin(case, env)
    taken = snapshot(env)
    fresh = case.build(**{limit: turns})  # never reset: Gymnasium's wrappers take the snapshot's state too
    restore(fresh, taken)
    for turn in range(case.fork_turn + 1, turns + 1):
        record = step(fresh, case.idle)
        assert not record["terminated"]
        assert record["truncated"] == (turn == turns), f"turn {turn} of at most {turns}"
    if limit != "max_episode_steps":  # Gymnasium's TimeLimit only says truncated; the env's own limit ends it
        with pytest.raises(gym.error.ResetNeeded):
            fresh.step(case.idle)


def test_a_task_that_sets_its_own_turn_limit_keeps_it_when_restored() -> None:
    """LongChain-v0 draws each task's length and gives it ``length + turn_slack`` turns: a restore into an
    env built with other turn limits (its constructor's, for the longest chain) keeps the task's."""
    env = horizongym.make("LongChain-v0", min_length=3, max_length=8)
    env.reset(seed=1, options={"length": 4})
    env.step("<lookup>k0000</lookup>")
    taken = snapshot(env)
    fresh = horizongym.make("LongChain-v0", min_length=3, max_length=8)
    assert isinstance(fresh.unwrapped, LongChainEnv) and fresh.unwrapped.max_turns == 8 + 2
    restore(fresh, taken)
    ends = [fresh.step("<lookup>k0000</lookup>")[3] for _ in range(4 + 2 - 1)]
    assert ends == [False] * 4 + [True]


# ----- errors --------------------------------------------------------------------------------
def test_every_case_is_forkable_and_none_before_its_first_reset(case: Case) -> None:
    env = case.build()
    assert is_forkable(env)
    with pytest.raises(NotForkable, match="no running episode to snapshot; call reset"):
        snapshot(env)


def test_a_snapshot_restores_only_into_its_own_kind_of_env() -> None:
    keychain = BY_NAME["keychain"]
    env = keychain.build()
    begin(keychain, env)
    taken = snapshot(env)
    search = BY_NAME["search"].build()
    search.reset(seed=0)
    before = snapshot(search)
    with pytest.raises(ValueError, match=r"KeyChainEnv cannot be restored into .*SearchJudgeEnv"):
        restore(search, taken)
    assert snapshot(search) == before  # the env is left as it was
    with pytest.raises(ValueError, match="wrappers"):
        restore(make_workspace("KeyChain-v0"), taken)  # the same env in a workspace is wrapped otherwise


def test_a_served_env_cannot_be_forked_and_says_why() -> None:
    with ServerThread(create_app("KeyChain-v0", max_sessions=2, idle_timeout_s=60), **SERVER_CONFIG) as server:
        url = f"ws://{server.host}:{server.port}"
        env = horizongym.make(url)
        try:
            env.reset(seed=1)
            env.step("<lookup>amber</lookup>")
            assert not is_forkable(env)
            with pytest.raises(NotForkable) as refused:
                snapshot(env)
            message = str(refused.value)
            assert "\n" not in message and url in message and "lives on the env server" in message
            assert "play the env locally" in message
            local = horizongym.make("KeyChain-v0")
            local.reset(seed=1)
            with pytest.raises(NotForkable, match="lives on the env server"):
                restore(env, snapshot(local))
            assert env.step("<lookup>birch</lookup>")[4]["turn"] == 2  # the served episode plays on
        finally:
            env.close()
