"""GEM builds horizongym envs through gem.make / gem.make_vec and plays them to the env's own reward."""

from __future__ import annotations

import gem
import pytest
from gem.wrappers.episode_tracking_wrapper import EpisodeTrackingWrapper

import horizongym
from horizongym.adapters.gem import HorizonGemEnv, register_gem_envs
from horizongym.agents import expert_for
from horizongym.envs import UnknownEnvironment, registry


def test_register_then_make_plays_keychain_to_its_reward() -> None:
    assert set(register_gem_envs()) == set(registry)
    assert register_gem_envs(["KeyChain-v0"]) == ["horizongym/KeyChain-v0"]  # a second call changes nothing

    env = EpisodeTrackingWrapper(gem.make("horizongym/KeyChain-v0", seed=11, max_depth=3))
    assert isinstance(env.unwrapped, HorizonGemEnv)
    observation, info = env.reset()
    reference = horizongym.make("KeyChain-v0", max_depth=3)
    reference_observation, reference_info = reference.reset(seed=11)
    assert (observation, info["task_id"]) == (reference_observation, reference_info["task_id"])

    expert, messages, done = expert_for("KeyChain-v0"), [{"role": "user", "content": observation}], False
    rewards = []
    while not done:
        action = expert.decide(messages, info["tools"], None).env_action()
        observation, reward, terminated, truncated, info = env.step(action)
        ref_observation, ref_reward, *_ = reference.step(action)
        assert (observation, reward) == (ref_observation, float(ref_reward)) and isinstance(reward, float)
        messages += [{"role": "assistant", "content": action}, {"role": "user", "content": observation}]
        rewards.append(reward)
        done = terminated or truncated
    assert terminated and info["success"] is True and info["reward_components"] == {"answer": 1.0}
    assert info["cumulative_rewards"] == sum(rewards) == 1.0  # GEM's own wrapper saw the env's rewards


def test_make_vec_seeds_each_env_and_auto_resets_reproducibly() -> None:
    register_gem_envs(["KeyChain-v0"])
    first = gem.make_vec(["horizongym/KeyChain-v0"] * 2, seed=3)
    second = gem.make_vec(["horizongym/KeyChain-v0"] * 2, seed=3)
    observations, _ = first.reset()
    assert list(observations) == list(second.reset()[0])
    assert list(observations) == [horizongym.make("KeyChain-v0").reset(seed=s)[0] for s in (3, 4)]
    actions = ['<tool_call>{"name": "answer", "arguments": {"value": "0"}}</tool_call>'] * 2
    after_first = first.step(actions)
    after_second = second.step(actions)
    assert list(after_first[0]) == list(after_second[0])  # the auto-reset tasks, the same in both runs
    assert list(after_first[2]) == [True, True]


def test_random_actions_and_spawn() -> None:
    env = HorizonGemEnv("KeyChain-v0", seed=2)
    env.reset()
    for _ in range(5):
        action = env.sample_random_action()
        assert isinstance(action, str)
        *_, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    twin = env.spawn()
    assert twin.reset() == HorizonGemEnv("KeyChain-v0", seed=2).reset()
    assert env.spawn(seed=9).reset()[0] == horizongym.make("KeyChain-v0").reset(seed=9)[0]
    with pytest.raises(ValueError, match="same_state"):
        env.spawn(same_state=True)


def test_unknown_ids_are_refused() -> None:
    with pytest.raises(UnknownEnvironment, match="KeyChian-v0"):
        register_gem_envs(["KeyChian-v0"])
