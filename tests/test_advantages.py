"""Per-turn advantage estimators against hand-computed numbers."""

from __future__ import annotations

import math
import random

import pytest
import torch

from horizongym.training.advantages import (
    ESTIMATORS,
    EpisodeCredit,
    HindsightHead,
    downsample_to_multiple,
    eapo,
    eapo_hcapo,
    estimate,
    grpo,
    hca,
    hcapo,
)
from horizongym.training.advantages.hcapo import hindsight_ratios

LN = math.log


def _flat(rows: list[list[float]]) -> list[float]:
    return [x for row in rows for x in row]


# --- GRPO -----------------------------------------------------------------------------------------


def test_grpo_hand_computed() -> None:
    # R = [3, 1, 2]: mean 2, deviations [1, -1, 0], population var 2/3, std √(2/3) = 0.816497
    # A = [1/0.816497, -1/0.816497, 0] = [1.224745, -1.224745, 0], repeated on T = [2, 1, 3] turns
    group = [EpisodeCredit(3.0, 2), EpisodeCredit(1.0, 1), EpisodeCredit(2.0, 3)]
    adv = grpo(group)
    assert adv == [
        [pytest.approx(1.224745, abs=1e-5)] * 2,
        [pytest.approx(-1.224745, abs=1e-5)],
        [pytest.approx(0.0, abs=1e-12)] * 3,
    ]
    # Dr. GRPO (no std division): A = R - mean = [1, -1, 0]
    assert grpo(group, normalize_std=False) == [[1.0, 1.0], [-1.0], [0.0, 0.0, 0.0]]


def test_grpo_two_episodes_and_same_value_on_every_turn() -> None:
    # R = [1, 0], T = [2, 3]: mean 0.5, std 0.5, A = ±0.5 / (0.5 + 1e-6) = ±0.999998
    adv = grpo([EpisodeCredit(1.0, 2), EpisodeCredit(0.0, 3)])
    assert [len(row) for row in adv] == [2, 3]
    assert adv[0] == pytest.approx([0.999998, 0.999998], abs=1e-6)
    assert adv[1] == pytest.approx([-0.999998] * 3, abs=1e-6)
    assert all(len(set(row)) == 1 for row in adv)


@pytest.mark.parametrize("normalize_std", [True, False])
def test_grpo_equal_rewards_give_zeros(normalize_std: bool) -> None:
    group = [EpisodeCredit(0.1, 2), EpisodeCredit(0.1, 1), EpisodeCredit(0.1, 4)]
    assert grpo(group, normalize_std=normalize_std) == [[0.0, 0.0], [0.0], [0.0] * 4]


# --- EAPO -----------------------------------------------------------------------------------------


def test_eapo_hand_computed() -> None:
    # R = [1, 0], T = [2, 3], γ = 0.5
    # r_{1,t} = 0.5^(2-t)·1 = [0.5, 1];  r_{2,t} = [0, 0, 0]
    # all 5 rounds: mean 1.5/5 = 0.3, deviations [0.2, 0.7, -0.3, -0.3, -0.3]
    # var = (0.04 + 0.49 + 3·0.09)/5 = 0.16, std 0.4
    # A = [0.5, 1.75, -0.75, -0.75, -0.75]
    adv = eapo([EpisodeCredit(1.0, 2), EpisodeCredit(0.0, 3)], gamma=0.5)
    assert adv[0] == pytest.approx([0.5, 1.75], abs=1e-5)
    assert adv[1] == pytest.approx([-0.75, -0.75, -0.75], abs=1e-5)


def test_eapo_min_std_keeps_an_all_equal_outcome_group_small() -> None:
    # R = 0.3 for both, T = 2, γ = 0.995: r = [0.2985, 0.3, 0.2985, 0.3], mean 0.29925,
    # deviations ±0.00075, population std 0.00075.
    group = [EpisodeCredit(0.3, 2), EpisodeCredit(0.3, 2)]
    plain = eapo(group)
    assert plain[0] == pytest.approx([-1.0, 1.0], abs=2e-3)  # the discount alone, blown up to ±1
    floored = eapo(group, min_std=0.1)
    assert floored[0] == pytest.approx([-0.0075, 0.0075], abs=1e-6)
    assert floored[1] == pytest.approx([-0.0075, 0.0075], abs=1e-6)
    # where the outcomes differ (std above the floor) the floor changes nothing
    mixed = [EpisodeCredit(1.0, 2), EpisodeCredit(0.0, 3)]
    assert eapo(mixed, gamma=0.5, min_std=0.1) == eapo(mixed, gamma=0.5)
    with pytest.raises(ValueError, match="min_std"):
        eapo(group, min_std=-1.0)


def test_eapo_default_gamma_last_round_largest_and_shorter_episode_wins() -> None:
    # γ = 0.995: r = 0.995^(T-t)·R, so the last round carries |R| itself and earlier rounds less.
    group = [EpisodeCredit(1.0, 3), EpisodeCredit(1.0, 6), EpisodeCredit(-1.0, 4)]
    rewards = [[0.995 ** (ep.num_turns - t) * ep.reward for t in range(1, ep.num_turns + 1)] for ep in group]
    for row in rewards:
        assert abs(row[-1]) == max(abs(x) for x in row)
    adv = eapo(group)
    flat_r, flat_a = _flat(rewards), _flat(adv)
    mean = sum(flat_r) / len(flat_r)
    std = math.sqrt(sum((x - mean) ** 2 for x in flat_r) / len(flat_r))
    assert flat_a == pytest.approx([(x - mean) / (std + 1e-6) for x in flat_r])
    # success in 3 rounds: every round's advantage beats the earliest rounds of the 6-round success
    assert min(adv[0]) > adv[1][0]
    assert adv[0][-1] == pytest.approx(adv[1][-1])


def test_eapo_all_zero_rewards_give_zeros() -> None:
    assert eapo([EpisodeCredit(0.0, 2), EpisodeCredit(0.0, 3)]) == [[0.0, 0.0], [0.0, 0.0, 0.0]]


# --- adaptive downsampling ------------------------------------------------------------------------


@pytest.mark.parametrize("n,k", [(10, 4), (7, 7), (5, 8), (12, 5), (0, 3)])
def test_downsample_to_multiple(n: int, k: int) -> None:
    samples = [f"s{i}" for i in range(n)]
    kept = downsample_to_multiple(samples, k, random.Random(0))
    assert len(kept) == n - n % k
    assert len(kept) % k == 0
    assert kept == sorted(kept, key=samples.index)  # order preserved
    assert len(set(kept)) == len(kept)
    assert kept == downsample_to_multiple(samples, k, random.Random(0))  # deterministic for a seed


def test_downsample_k1_keeps_all_and_drops_vary_with_seed() -> None:
    samples = list(range(11))
    assert downsample_to_multiple(samples, 1, random.Random(3)) == samples
    draws = {tuple(downsample_to_multiple(samples, 4, random.Random(seed))) for seed in range(20)}
    assert len(draws) > 1


def test_downsample_rejects_bad_multiple() -> None:
    with pytest.raises(ValueError, match="multiple"):
        downsample_to_multiple([1, 2, 3], 0, random.Random(0))


# --- HCAPO ----------------------------------------------------------------------------------------


def test_hindsight_ratios_clip_at_0_8_and_1_2() -> None:
    # τ = 5, ℓ = [0, 5·ln 3]: π_hind = [e^0, e^(ln 3)] = [1, 3], mean 2, ratio [0.5, 1.5] -> clip [0.8, 1.2]
    assert hindsight_ratios([0.0, 5 * LN(3)]) == pytest.approx([0.8, 1.2])
    # ℓ = [0, 5·ln 1.2]: π_hind = [1, 1.2], mean 1.1, ratio [1/1.1, 1.2/1.1] = [0.909091, 1.090909] (no clip)
    assert hindsight_ratios([0.0, 5 * LN(1.2)]) == pytest.approx([0.909091, 1.090909], abs=1e-6)
    # shift invariance: very negative log-probs do not underflow
    assert hindsight_ratios([-4000.0, -4000.0 + 5 * LN(1.2)]) == pytest.approx([0.909091, 1.090909], abs=1e-6)


def test_hcapo_hand_computed() -> None:
    # R = [1, 0], T = [2, 2], γ = 0.5, τ = 1, ω = 1, no success flags
    # ep 1: ℓ = [ln 1, ln 3] -> π_hind = [1, 3], mean 2, ratio [0.5, 1.5] -> ρ = [0.8, 1.2]
    #       Q = [0.8·0.5·1, 1.2·1·1] = [0.4, 1.2];  ep 2: R = 0 -> Q = [0, 0]
    # Q over 4 turns: mean 0.4, deviations [0, 0.8, -0.4, -0.4], var 0.96/4 = 0.24, std 0.489898
    # A_micro = [0, 1.632993, -0.816497, -0.816497];  A_GRPO = [+1, -1] (±0.999998)
    # A = [[0.999998, 2.632991], [-1.816495, -1.816495]]
    group = [
        EpisodeCredit(1.0, 2, hindsight_logprobs=[LN(1), LN(3)]),
        EpisodeCredit(0.0, 2, hindsight_logprobs=[0.0, 0.0]),
    ]
    adv = hcapo(group, gamma=0.5, temperature=1.0)
    assert adv[0] == pytest.approx([0.999998, 2.632991], abs=1e-5)
    assert adv[1] == pytest.approx([-1.816495, -1.816495], abs=1e-5)


def test_hcapo_success_zeroes_negative_micro_terms() -> None:
    # R = [1, 0], T = [3, 1], γ = 0.5, uniform hindsight -> ρ = 1 everywhere
    # Q: ep 1 = [0.25, 0.5, 1], ep 2 = [0]; mean 1.75/4 = 0.4375
    # deviations [-0.1875, 0.0625, 0.5625, -0.4375] = [-3, 1, 9, -7]/16, var 140/256/4 = 35/256, std √35/16
    # A_micro = [-3, 1, 9, -7]/√35 = [-0.507093, 0.169031, 1.521278, -1.183216]
    # A_GRPO = [1, -1] (±0.999998)
    # success=True on ep 1: its -0.507093 becomes 0 -> ep 1 = [1, 1.169031, 2.521278]; ep 2 = [-2.183216]
    # success=False: ep 1 = [0.492907, 1.169031, 2.521278]
    def group(success: bool) -> list[EpisodeCredit]:
        return [
            EpisodeCredit(1.0, 3, success=success, hindsight_logprobs=[-1.0, -1.0, -1.0]),
            EpisodeCredit(0.0, 1, hindsight_logprobs=[-2.0]),
        ]

    won = hcapo(group(True), gamma=0.5)
    assert won[0] == pytest.approx([0.999998, 1.169029, 2.521276], abs=1e-5)
    assert won[1] == pytest.approx([-2.183214], abs=1e-5)
    plain = hcapo(group(False), gamma=0.5)
    assert plain[0] == pytest.approx([0.492905, 1.169029, 2.521276], abs=1e-5)
    assert plain[1] == won[1]
    # ω scales the micro term: ω = 0 leaves GRPO
    assert hcapo(group(False), gamma=0.5, omega=0.0) == grpo(group(False))


def test_eapo_hcapo_hand_computed() -> None:
    # Same group as test_hcapo_hand_computed, EAPO macro with γ_EAPO = 0.5:
    # r = [0.5, 1, 0, 0], mean 0.375, deviations [0.125, 0.625, -0.375, -0.375] = [1, 5, -3, -3]/8
    # var = 44/64/4 = 11/64, std √11/8 -> A_EAPO = [1, 5, -3, -3]/√11 = [0.301511, 1.507557, -0.904534, -0.904534]
    # A_micro = [0, 1.632993, -0.816497, -0.816497]
    # A = [0.301511, 3.140550, -1.721031, -1.721031]
    group = [
        EpisodeCredit(1.0, 2, hindsight_logprobs=[LN(1), LN(3)]),
        EpisodeCredit(0.0, 2, hindsight_logprobs=[0.0, 0.0]),
    ]
    adv = eapo_hcapo(group, gamma=0.5, eapo_gamma=0.5, temperature=1.0)
    assert adv[0] == pytest.approx([0.301511, 3.140550], abs=1e-5)
    assert adv[1] == pytest.approx([-1.721031, -1.721031], abs=1e-5)
    assert estimate("eapo+hcapo", group, gamma=0.5, eapo_gamma=0.5, temperature=1.0) == adv


def test_hcapo_equal_rewards_give_zeros_without_discount_spread() -> None:
    # R = 0 everywhere: A_GRPO = 0 and Q = 0 -> all zeros
    group = [EpisodeCredit(0.0, 2, hindsight_logprobs=[-1.0, -3.0]), EpisodeCredit(0.0, 1, hindsight_logprobs=[0.0])]
    assert hcapo(group) == [[0.0, 0.0], [0.0]]


def test_hcapo_requires_hindsight_logprobs() -> None:
    with pytest.raises(ValueError, match=r"episode 1 has no hindsight_logprobs"):
        hcapo([EpisodeCredit(1.0, 1, hindsight_logprobs=[0.0]), EpisodeCredit(0.0, 2)])
    with pytest.raises(ValueError, match="hindsight_logprobs has 1 entries but num_turns is 2"):
        EpisodeCredit(0.0, 2, hindsight_logprobs=[0.0])


# --- HCA ------------------------------------------------------------------------------------------


def test_hca_hand_computed_with_ratio_clip() -> None:
    # ep 1: Z = 1, π = [0.5, 0.2], h = [0.25, 0.8] -> π/h = [2, 0.25] -> A = [(1-2)·1, (1-0.25)·1] = [-1, 0.75]
    # ep 2: Z = 2, π = 0.9, h = 0.01 -> π/h = 90, clipped to 10 -> A = (1-10)·2 = -18
    #       with max_ratio = 100 it stays 90 -> A = (1-90)·2 = -178
    group = [
        EpisodeCredit(1.0, 2, policy_logprobs=[LN(0.5), LN(0.2)], hindsight_head_logprobs=[LN(0.25), LN(0.8)]),
        EpisodeCredit(2.0, 1, policy_logprobs=[LN(0.9)], hindsight_head_logprobs=[LN(0.01)]),
    ]
    adv = hca(group)
    assert adv[0] == pytest.approx([-1.0, 0.75])
    assert adv[1] == pytest.approx([-18.0])
    assert hca(group, max_ratio=100.0)[1] == pytest.approx([-178.0])
    # h = 0 (log h = -inf) takes the clip bound instead of overflowing
    zero_h = EpisodeCredit(1.0, 1, policy_logprobs=[LN(0.5)], hindsight_head_logprobs=[-math.inf])
    assert hca([zero_h]) == [[pytest.approx(-9.0)]]


def test_hca_requires_both_logprob_fields() -> None:
    with pytest.raises(ValueError, match="no hindsight_head_logprobs"):
        hca([EpisodeCredit(1.0, 1, policy_logprobs=[0.0])])
    with pytest.raises(ValueError, match="no policy_logprobs"):
        hca([EpisodeCredit(1.0, 1, hindsight_head_logprobs=[0.0])])


def test_hindsight_head_fit_lowers_loss() -> None:
    # Toy problem: the action is determined by the return (Z = 1 -> action 2, Z = 0 -> sign of feature 0).
    torch.manual_seed(0)
    features = torch.randn(64, 3)
    returns = (torch.rand(64) > 0.5).float()
    actions = torch.where(returns > 0, torch.tensor(2), (features[:, 0] > 0).long())
    head = HindsightHead(num_features=3, num_actions=3, hidden=16)
    losses = head.fit(features, returns, actions, steps=60, lr=0.05)
    assert len(losses) == 60
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        log_h = head.log_prob(features, returns, actions)
    assert log_h.shape == (64,)
    assert bool((log_h <= 0).all())
    assert float(log_h.mean()) > -losses[0]


# --- dispatch and validation ----------------------------------------------------------------------


def test_registry_and_dispatch() -> None:
    assert set(ESTIMATORS) == {"grpo", "eapo", "hcapo", "eapo+hcapo", "hca", "tree"}
    group = [EpisodeCredit(1.0, 2), EpisodeCredit(0.0, 3)]
    assert estimate("grpo", group) == grpo(group)
    assert estimate("eapo", group, gamma=0.5) == eapo(group, gamma=0.5)


def test_unknown_estimator_lists_known_names() -> None:
    with pytest.raises(ValueError, match="unknown advantage estimator 'ppo'") as info:
        estimate("ppo", [EpisodeCredit(1.0, 1)])
    for name in ESTIMATORS:
        assert name in str(info.value)


@pytest.mark.parametrize("turns", [0, -1, 1.5, True])
def test_num_turns_must_be_positive_int(turns: object) -> None:
    with pytest.raises(ValueError, match="num_turns must be an integer >= 1"):
        EpisodeCredit(1.0, turns)  # type: ignore[arg-type]


def test_other_validation_errors() -> None:
    with pytest.raises(ValueError, match="at least one episode"):
        grpo([])
    with pytest.raises(ValueError, match="reward must be a finite number"):
        EpisodeCredit(math.nan, 1)
    with pytest.raises(ValueError, match="policy_logprobs has 3 entries but num_turns is 2"):
        EpisodeCredit(1.0, 2, policy_logprobs=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="expected EpisodeCredit"):
        eapo([(1.0, 2)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="gamma"):
        eapo([EpisodeCredit(1.0, 2)], gamma=0.0)
    with pytest.raises(ValueError, match="temperature"):
        hindsight_ratios([0.0], temperature=0.0)
    with pytest.raises(ValueError, match="max_ratio"):
        hca([EpisodeCredit(1.0, 1, policy_logprobs=[0.0], hindsight_head_logprobs=[0.0])], max_ratio=0.0)
