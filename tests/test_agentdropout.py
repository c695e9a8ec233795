"""AgentDropout training against hand-computed values, then end to end on synthetic teams with known optima."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from horizongym.agents.team.graph import EdgeChoice, GraphParameters, TeamGraph
from horizongym.training.agentdropout import (
    AgentDropoutConfig,
    PlayResult,
    evaluate,
    graph_log_prob,
    train_agentdropout,
    train_edge_dropout,
    train_node_dropout,
)
from horizongym.training.agentdropout.edge_dropout import (
    frobenius_hinge,
    mean_nuclear,
    nuclear_norm,
    prune,
    prune_count,
    prune_lowest,
    regulariser,
    surviving_edges,
)
from horizongym.training.agentdropout.node_dropout import (
    drop_agents,
    drop_count,
    faithful_drop_weights,
    faithful_pseudo_log_likelihood,
    lowest_k,
    node_scores,
    plackett_luce_log_prob,
    sample_drop,
)
from horizongym.training.agentdropout.trainer import batch_queries, play_all


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def logits(values: dict[tuple[int, int], float], n: int, *, fill: float = 0.0) -> np.ndarray:
    out = np.full((1, n, n), fill)
    for (i, j), v in values.items():
        out[0, i, j] = v
    return out


# --- DAG sampling and log p(G) ---------------------------------------------------------------------


def test_sampling_skips_cycle_closing_edges_and_records_only_visited_ones() -> None:
    # 3 agents, 1 round, every edge p ≈ 1: visited row by row 0→1 kept, 0→2 kept, 1→0 closes 0→1→0
    # (skipped), 1→2 kept, 2→0 and 2→1 close cycles (skipped): the DAG 0→1, 0→2, 1→2, three choices.
    params = GraphParameters.full(3, 1)
    params.spatial_logits[:] = 30.0
    graph = params.realise("sampled", np.random.default_rng(0))
    assert graph.spatial[0].astype(int).tolist() == [[0, 1, 1], [0, 0, 1], [0, 0, 0]]
    assert [(c.source, c.target, c.kept) for c in graph.choices] == [(0, 1, True), (0, 2, True), (1, 2, True)]

    # 0→1 forced out: then 1→0 no longer closes a cycle and is visited and kept; 2→0 (0→2 kept) and
    # 2→1 (1→0→2) are skipped. The recorded choices are exactly the four visited edges.
    params.spatial_logits[0, 0, 1] = -30.0
    graph = params.realise("sampled", np.random.default_rng(0))
    assert graph.spatial[0].astype(int).tolist() == [[0, 0, 1], [1, 0, 1], [0, 0, 0]]
    assert [(c.source, c.target, c.kept) for c in graph.choices] == [
        (0, 1, False),
        (0, 2, True),
        (1, 0, True),
        (1, 2, True),
    ]


def test_graph_log_prob_hand_computed_and_gradient_is_kept_minus_p_over_tau() -> None:
    # The four visited edges above with θ01 = −1, θ02 = 0.5, θ10 = 2, θ12 = 1, τ = 2:
    # log p = log(1 − σ(−0.5)) + log σ(0.25) + log σ(1) + log σ(0.5); ∂/∂θ_e = (kept − σ(θ_e/2)) / 2.
    choices = (
        EdgeChoice(0, "spatial", 0, 1, False),
        EdgeChoice(0, "spatial", 0, 2, True),
        EdgeChoice(0, "spatial", 1, 0, True),
        EdgeChoice(0, "spatial", 1, 2, True),
    )
    spatial = np.zeros((1, 3, 3), dtype=bool)
    spatial[0, 0, 2] = spatial[0, 1, 0] = spatial[0, 1, 2] = True
    graph = TeamGraph(
        active=np.ones((1, 3), bool), spatial=spatial, temporal=np.zeros((0, 3, 3), bool), choices=choices
    )
    theta = torch.tensor(
        logits({(0, 1): -1.0, (0, 2): 0.5, (1, 0): 2.0, (1, 2): 1.0, (2, 0): 7.0}, 3), requires_grad=True
    )
    value = graph_log_prob(graph, theta, torch.zeros((0, 3, 3), dtype=torch.float64), temperature=2.0)
    expected = math.log(1 - sigmoid(-0.5)) + math.log(sigmoid(0.25)) + math.log(sigmoid(1.0)) + math.log(sigmoid(0.5))
    assert value.item() == pytest.approx(expected, abs=1e-12)
    value.backward()
    assert theta.grad is not None
    want = np.zeros((3, 3))
    want[0, 1] = (0 - sigmoid(-0.5)) / 2
    want[0, 2] = (1 - sigmoid(0.25)) / 2
    want[1, 0] = (1 - sigmoid(1.0)) / 2
    want[1, 2] = (1 - sigmoid(0.5)) / 2  # 2→0 was never visited: no gradient although its logit is 7
    np.testing.assert_allclose(theta.grad[0].numpy(), want, atol=1e-12)


def test_torch_log_prob_equals_numpy_log_prob_and_its_gradient_on_sampled_graphs() -> None:
    rng = np.random.default_rng(7)
    params = GraphParameters.full(4, 3)
    params.spatial_logits = rng.normal(size=params.spatial_logits.shape)
    params.temporal_logits = rng.normal(size=params.temporal_logits.shape)
    params.temperature = 0.7
    params.spatial_mask[1, 0, 3] = False
    for _ in range(5):
        graph = params.realise("sampled", rng)
        assert any(c.kind == "temporal" for c in graph.choices) and any(not c.kept for c in graph.choices)
        spatial = torch.tensor(params.spatial_logits, requires_grad=True)
        temporal = torch.tensor(params.temporal_logits, requires_grad=True)
        value = graph_log_prob(graph, spatial, temporal, params.temperature)
        assert value.item() == pytest.approx(params.log_prob(graph), abs=1e-10)
        value.backward()
        assert spatial.grad is not None and temporal.grad is not None
        want_s, want_t = np.zeros(spatial.shape), np.zeros(temporal.shape)
        for c in graph.choices:
            table, r, grads = (
                (params.spatial_logits, c.round, want_s)
                if c.kind == "spatial"
                else (params.temporal_logits, c.round - 1, want_t)
            )
            grads[r, c.source, c.target] += (c.kept - sigmoid(table[r, c.source, c.target] / 0.7)) / 0.7
        np.testing.assert_allclose(spatial.grad.numpy(), want_s, atol=1e-10)
        np.testing.assert_allclose(temporal.grad.numpy(), want_t, atol=1e-10)


def test_graph_log_prob_rejects_logits_of_another_shape() -> None:
    graph = GraphParameters.full(3, 2).realise("sampled", np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"do not fit a graph of 2 rounds and 3 agents"):
        graph_log_prob(graph, torch.zeros((2, 4, 4)), torch.zeros((1, 4, 4)))


# --- node dropout ----------------------------------------------------------------------------------


def test_node_score_on_a_hand_made_four_agent_graph() -> None:
    # Mask edges 0→1 (1), 0→2 (−2), 1→2 (0.5), 2→3 (3), 3→1 (−1); θ10 = 100 lies outside the mask.
    # s0 = (1 − 2)/2 = −0.5; s1 = (0.5 + 1 − 1)/3 = 1/6; s2 = (3 − 2 + 0.5)/3 = 0.5; s3 = (−1 + 3)/2 = 1.
    mask = np.zeros((4, 4), dtype=bool)
    theta = torch.zeros((4, 4), dtype=torch.float64)
    for (i, j), v in {(0, 1): 1.0, (0, 2): -2.0, (1, 2): 0.5, (2, 3): 3.0, (3, 1): -1.0}.items():
        mask[i, j], theta[i, j] = True, v
    theta[1, 0] = 100.0
    scores = node_scores(theta, mask)
    np.testing.assert_allclose(scores.numpy(), [-0.5, 1 / 6, 0.5, 1.0], atol=1e-12)
    everyone = np.ones(4, dtype=bool)
    assert lowest_k(scores, everyone, 1) == [0]
    assert lowest_k(scores, everyone, 2) == [0, 1]
    assert lowest_k(scores, np.array([False, True, True, True]), 2) == [1, 2]
    # The authors' sampling weights: the plain (unnormalised) sums over the realised edges.
    np.testing.assert_allclose(faithful_drop_weights(theta, mask).numpy(), [-1.0, 0.5, 1.5, 2.0], atol=1e-12)


def test_drop_count_is_max_one_round_alpha_n_and_keeps_an_agent() -> None:
    assert [drop_count(n, 0.2) for n in (1, 2, 3, 4, 5, 8, 10)] == [0, 1, 1, 1, 1, 2, 2]
    assert drop_count(5, 0.5) == 2  # round(2.5) = 2 (half to even)
    assert drop_count(2, 0.9) == 1  # round(1.8) = 2, but one agent stays
    with pytest.raises(ValueError, match=r"rate α must be in \(0, 1\)"):
        drop_count(5, 1.0)


def test_faithful_pseudo_likelihood_value_and_hand_derived_gradient() -> None:
    # Realised DAG 0→1 (a), 0→2 (b), 1→2 (c); agent 2 dropped, N = 3 so its weight is N − 1 = 2:
    # L = [log σ(a) + log σ(b)] + [log σ(a) + log σ(c)] + 2 [log(1 − σ(b)) + log(1 − σ(c))]
    # ∂L/∂a = 2(1 − σ(a)), ∂L/∂b = (1 − σ(b)) − 2σ(b), ∂L/∂c = (1 − σ(c)) − 2σ(c).
    a, b, c = 0.3, -0.4, 1.2
    edges = np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=bool)
    theta = torch.tensor([[0.0, a, b], [9.0, 0.0, c], [0.0, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    value = faithful_pseudo_log_likelihood(theta, edges, np.ones(3, dtype=bool), [2])
    ls, l1s = math.log, lambda x: math.log(1 - sigmoid(x))
    want = ls(sigmoid(a)) + ls(sigmoid(b)) + ls(sigmoid(a)) + ls(sigmoid(c)) + 2 * (l1s(b) + l1s(c))
    assert value.item() == pytest.approx(want, abs=1e-12)
    value.backward()
    assert theta.grad is not None
    want_grad = np.zeros((3, 3))
    want_grad[0, 1] = 2 * (1 - sigmoid(a))
    want_grad[0, 2] = (1 - sigmoid(b)) - 2 * sigmoid(b)
    want_grad[1, 2] = (1 - sigmoid(c)) - 2 * sigmoid(c)
    np.testing.assert_allclose(theta.grad.numpy(), want_grad, atol=1e-12)
    # At θ = 0: L = 8 log ½, gradients 1, −½, −½.
    zero = torch.zeros((3, 3), dtype=torch.float64, requires_grad=True)
    value = faithful_pseudo_log_likelihood(zero, edges, np.ones(3, dtype=bool), [2])
    assert value.item() == pytest.approx(8 * math.log(0.5), abs=1e-12)
    value.backward()
    assert zero.grad is not None
    assert (zero.grad[0, 1].item(), zero.grad[0, 2].item(), zero.grad[1, 2].item()) == (1.0, -0.5, -0.5)


def test_plackett_luce_log_prob_of_a_drop_and_its_gradient() -> None:
    # scores (0, ln 2, 0): dropping 1 has probability 2/4; then 0 has 1/2 of the rest.
    scores = torch.tensor([0.0, math.log(2.0), 0.0], dtype=torch.float64, requires_grad=True)
    everyone = np.ones(3, dtype=bool)
    value = plackett_luce_log_prob(scores, everyone, [1])
    assert value.item() == pytest.approx(math.log(0.5))
    value.backward()
    assert scores.grad is not None
    np.testing.assert_allclose(scores.grad.numpy(), [-0.25, 0.5, -0.25])  # one-hot − softmax
    assert plackett_luce_log_prob(scores, everyone, [1, 0]).item() == pytest.approx(math.log(0.5) + math.log(0.5))
    assert plackett_luce_log_prob(scores, np.array([True, True, False]), [1]).item() == pytest.approx(math.log(2 / 3))
    with pytest.raises(ValueError, match="agent 2 cannot be dropped"):
        plackett_luce_log_prob(scores, np.array([True, True, False]), [2])


def test_sample_drop_follows_softmax_of_the_weights_over_active_agents() -> None:
    rng = np.random.default_rng(0)
    weights = torch.tensor([0.0, math.log(3.0), 50.0])
    counts = np.zeros(3)
    for _ in range(2000):
        (d,) = sample_drop(weights, np.array([True, True, False]), 1, rng)
        counts[d] += 1
    assert counts[2] == 0 and counts[1] / 2000 == pytest.approx(0.75, abs=0.03)
    assert sorted(sample_drop(weights, np.ones(3, dtype=bool), 3, rng)) == [0, 1, 2]


def test_drop_agents_deactivates_and_masks_every_edge_touching_the_dropped() -> None:
    params = GraphParameters.full(3, 3)
    drop_agents(params, [[1], [], [0]])
    assert params.active.astype(int).tolist() == [[1, 0, 1], [1, 1, 1], [0, 1, 1]]
    assert not params.spatial_mask[0, 1].any() and not params.spatial_mask[0, :, 1].any()
    assert not params.temporal_mask[0, 1].any()  # round 0 → 1 edges out of agent 1
    assert not params.temporal_mask[1, :, 0].any()  # round 1 → 2 edges into agent 0
    assert params.temporal_mask[0, [0, 2], 1].all() and params.temporal_mask[1, 0, 1:].all()
    graph = params.realise("fixed")
    assert all(1 not in (i, j) for r, _, i, j in graph.edges() if r == 0)
    with pytest.raises(ValueError, match="a drop list per round"):
        drop_agents(params, [[1]])


# --- edge dropout: the regulariser and pruning -----------------------------------------------------


def test_nuclear_norm_and_its_gradient_u_v_transpose_on_2x2() -> None:
    # [[0, 2], [−1, 0]]: singular values 2 and 1; U = diag(1, −1), V = [[0, 1], [1, 0]], U Vᵀ = [[0, 1], [−1, 0]].
    x = torch.tensor([[0.0, 2.0], [-1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    value = nuclear_norm(x)
    assert value.item() == pytest.approx(3.0)
    value.backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [[0.0, 1.0], [-1.0, 0.0]], atol=1e-12)
    # [[2, 1], [1, 2]] is positive definite (eigenvalues 3, 1): ‖X‖_* = 4, U = V, so the gradient is I.
    y = torch.tensor([[[2.0, 1.0], [1.0, 2.0]]], dtype=torch.float64, requires_grad=True)
    value = mean_nuclear(y)
    assert value.item() == pytest.approx(4.0)
    value.backward()
    assert y.grad is not None
    np.testing.assert_allclose(y.grad.numpy()[0], np.eye(2), atol=1e-12)
    assert mean_nuclear(torch.zeros((0, 2, 2))).item() == 0.0


def test_frobenius_hinge_value_gradient_and_dead_zone() -> None:
    # A = [[0, 1], [1, 0]], S = 0: ‖A − S‖_F = √2 > δ = 0.1, term √2 − 0.1, gradient (S − A)/√2.
    anchors = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]], dtype=torch.float64)
    s = torch.zeros((1, 2, 2), dtype=torch.float64, requires_grad=True)
    value = frobenius_hinge(anchors, s, 0.1)
    assert value.item() == pytest.approx(math.sqrt(2) - 0.1)
    value.backward()
    assert s.grad is not None
    np.testing.assert_allclose(s.grad.numpy()[0], [[0.0, -1 / math.sqrt(2)], [-1 / math.sqrt(2), 0.0]], atol=1e-12)
    # Two rounds: the mean of the distances, so each round's gradient halves.
    two = torch.zeros((2, 2, 2), dtype=torch.float64, requires_grad=True)
    frobenius_hinge(anchors.repeat(2, 1, 1), two, 0.1).backward()
    assert two.grad is not None
    np.testing.assert_allclose(two.grad.numpy()[1], [[0.0, -0.5 / math.sqrt(2)], [-0.5 / math.sqrt(2), 0.0]])
    # Within δ of the anchor: no term, no gradient.
    near = (anchors + 0.03).clone().requires_grad_(True)
    value = frobenius_hinge(anchors, near, 0.1)  # ‖A − S‖_F = √(4 · 0.03²) = 0.06 < 0.1
    assert value.item() == 0.0
    value.backward()
    assert near.grad is not None and not near.grad.any()


def test_regulariser_weighs_its_terms_and_ignores_missing_temporal_rounds() -> None:
    s = torch.tensor([[[0.0, 2.0], [-1.0, 0.0]]], dtype=torch.float64)
    anchors = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]], dtype=torch.float64)
    empty = torch.zeros((0, 2, 2), dtype=torch.float64)
    # ‖S‖_* = 3; ‖A − S‖_F = √(1 + 4) = √5.
    value = regulariser(s, empty, anchors, empty, delta=0.1, nuclear_coef=0.5, frobenius_coef=2.0)
    assert value.item() == pytest.approx(0.5 * 3 + 2.0 * (math.sqrt(5) - 0.1))


def test_prune_counts_and_masks_only_shrink() -> None:
    assert [prune_count(e, 0.1) for e in (0, 1, 3, 12, 20)] == [0, 1, 1, 1, 2]
    assert prune_count(6, 0.25) == 2 and prune_count(9, 0.25) == 2  # round(1.5) = 2, round(2.25) = 2
    with pytest.raises(ValueError, match=r"rate β must be in \(0, 1\)"):
        prune_count(5, 0.0)
    # An already-masked edge with the lowest logit is not counted: the lowest surviving one goes.
    mask = np.array([[False, True, True], [True, False, True], [True, True, False]])
    mask[2, 0] = False
    theta = np.array([[0.0, 0.5, -1.0], [2.0, 0.0, 0.3], [-9.0, 1.0, 0.0]])
    pruned = prune_lowest(theta, mask, 0.1)
    assert (mask & ~pruned).astype(int).tolist() == [[0, 0, 1], [0, 0, 0], [0, 0, 0]]
    # A full 3-agent, 2-round graph: 6 spatial edges per round and 9 temporal; β = 0.25 prunes 2 + 2 + 2.
    params = GraphParameters.full(3, 2)
    params.spatial_logits = np.random.default_rng(0).normal(size=params.spatial_logits.shape)
    assert surviving_edges(params) == 21
    previous = (params.spatial_mask.copy(), params.temporal_mask.copy())
    assert prune(params, 0.25) == 6 and surviving_edges(params) == 15
    for _ in range(10):
        prune(params, 0.25)
        assert not (params.spatial_mask & ~previous[0]).any() and not (params.temporal_mask & ~previous[1]).any()
        previous = (params.spatial_mask.copy(), params.temporal_mask.copy())
    assert surviving_edges(params) == 0


# --- the trainer on synthetic teams ----------------------------------------------------------------


def live_edges(graph: TeamGraph) -> int:
    return sum(1 for _ in graph.edges())


async def harmful_agent_2(graph: TeamGraph, query: int) -> PlayResult:
    """Utility: the share of rounds in which agent 2 does not speak; tokens: live edges and speakers."""
    utility = float(np.mean([not graph.active[r, 2] for r in range(graph.rounds)]))
    return PlayResult(utility, live_edges(graph), int(graph.active.sum()))


async def needs_0_to_2_hurt_by_0_to_1(graph: TeamGraph, query: int) -> PlayResult:
    """Utility 1 iff in round 0 agent 2 reads agent 0 and agent 1 does not; tokens: live edges."""
    live = graph.live_spatial(0)
    return PlayResult(float(live[0, 2] and not live[0, 1]), live_edges(graph), int(graph.active.sum()))


@pytest.mark.parametrize("estimator", ["faithful", "principled"])
def test_node_dropout_drops_the_harmful_agent(estimator: str) -> None:
    played: list[TeamGraph] = []

    async def play(graph: TeamGraph, query: int) -> PlayResult:
        played.append(graph)
        return await harmful_agent_2(graph, query)

    for seed in (0, 1, 2):
        config = AgentDropoutConfig(estimator=estimator, seed=seed)  # type: ignore[arg-type]
        trained = asyncio.run(train_node_dropout(GraphParameters.full(4, 2), play, range(40), config))
        assert trained.log.dropped == [[2], [2]], (seed, trained.log.node_scores)
        assert trained.params.active.astype(int).tolist() == [[1, 1, 0, 1], [1, 1, 0, 1]]
        assert all(min(scores) == scores[2] for scores in trained.log.node_scores)
        assert trained.log.cost.plays == 40 and len(trained.log.batches) == 2
    # Every training graph dropped exactly k = max(1, round(0.2 · 4)) = 1 agent per round.
    assert all((g.active.sum(axis=1) == 3).all() for g in played)


def test_edge_dropout_lowers_the_harmful_edge_and_prunes_it() -> None:
    for seed in (0, 1, 2):
        trained = asyncio.run(
            train_edge_dropout(
                GraphParameters.full(3, 2), needs_0_to_2_hurt_by_0_to_1, range(40), AgentDropoutConfig(seed=seed)
            )
        )
        theta, mask = trained.params.spatial_logits[0], trained.params.spatial_mask[0]
        assert theta[0, 1] < theta[0, 2], (seed, theta)
        assert not mask[0, 1] and mask[0, 2], (seed, mask)
        # Two prunes (after batches 2 and 4) of max(1, round(0.1 · E)) edges in each round and kind.
        assert [b.surviving_edges for b in trained.log.batches] == [21, 18, 18, 15]
        assert trained.log.cost.plays == 40


def test_agentdropout_cuts_tokens_keeps_utility_and_saves_with_its_settings(tmp_path: Path) -> None:
    async def play(graph: TeamGraph, query: int) -> PlayResult:
        # Round 0: half the utility for silencing agent 3, half for agent 1 speaking without reading
        # agent 0 while agent 2 reads agent 0.
        live = graph.live_spatial(0)
        utility = 0.5 * (not graph.active[0, 3]) + 0.5 * (bool(live[0, 2]) and graph.active[0, 1] and not live[0, 1])
        return PlayResult(utility, 10 * live_edges(graph) + 5 * int(graph.active.sum()), int(graph.active.sum()))

    full = GraphParameters.full(4, 2)
    baseline = asyncio.run(evaluate(full, play, range(20), ("fixed",)))["fixed"]
    assert baseline.accuracy == 0.0
    for seed in (0, 1, 2):
        config = AgentDropoutConfig(seed=seed, baseline="mean")  # the authors' schedule: 2 × 20 node, 4 × 10 edge
        trained = asyncio.run(train_agentdropout(full, play, range(40), config))
        assert full.active.all() and not full.spatial_logits.any()  # the input is left as it was
        params, log = trained.params, trained.log
        assert log.dropped[0] == [3], (seed, log.node_scores)
        assert [b.phase for b in log.batches] == ["node"] * 2 + ["edge"] * 4
        assert log.cost.plays == 2 * 20 + 4 * 10
        assert log.cost.prompt_tokens == sum(b.prompt_tokens for b in log.batches)
        report = asyncio.run(evaluate(params, play, range(20), ("sampled", "deterministic"), seed=1))
        assert report["deterministic"].accuracy == 1.0 and report["sampled"].accuracy > 0.5, (seed, report)
        assert report["sampled"].prompt_tokens < 0.8 * baseline.prompt_tokens
        assert report["deterministic"].prompt_tokens < 0.8 * baseline.prompt_tokens
    path = tmp_path / "team_graph.json"
    params.save(path)
    loaded = GraphParameters.load(path)
    np.testing.assert_array_equal(loaded.spatial_mask, params.spatial_mask)
    np.testing.assert_allclose(loaded.spatial_logits, params.spatial_logits)
    meta = loaded.metadata["agentdropout"]
    assert meta["config"] == config.model_dump() and meta["dropped"] == log.dropped
    assert meta["training_cost"]["plays"] == 80
    assert loaded.realise("deterministic").to_dict() == params.realise("deterministic").to_dict()
    assert AgentDropoutConfig(**meta["config"]) == config


def test_training_is_reproducible_for_a_seed() -> None:
    def run() -> GraphParameters:
        config = AgentDropoutConfig(seed=5, node_batch_size=5, edge_batch_size=5)
        return asyncio.run(train_agentdropout(GraphParameters.full(3, 2), harmful_agent_2, range(10), config)).params

    first, second = run(), run()
    np.testing.assert_array_equal(first.spatial_logits, second.spatial_logits)
    np.testing.assert_array_equal(first.temporal_mask, second.temporal_mask)


def test_mean_baseline_leaves_a_constant_utility_without_policy_gradient() -> None:
    async def constant(graph: TeamGraph, query: int) -> PlayResult:
        return PlayResult(0.7, 1, 1)

    def config(baseline: str) -> AgentDropoutConfig:
        return AgentDropoutConfig.model_validate(
            {"baseline": baseline, "nuclear_coef": 0.0, "frobenius_coef": 0.0, "edge_batches": 1, "node_batches": 0}
        )

    flat = asyncio.run(train_edge_dropout(GraphParameters.full(3, 1), constant, range(4), config("mean")))
    assert not flat.params.spatial_logits.any()
    moved = asyncio.run(train_edge_dropout(GraphParameters.full(3, 1), constant, range(4), config("none")))
    assert moved.params.spatial_logits.any()


def test_evaluate_deterministic_keeps_edges_with_p_over_half() -> None:
    params = GraphParameters.full(3, 1)
    params.spatial_logits[0, 0, 2] = 1.0  # only 0 → 2 has σ(θ) > 0.5
    report = asyncio.run(evaluate(params, needs_0_to_2_hurt_by_0_to_1, range(6), ("deterministic", "fixed")))
    assert report["deterministic"].accuracy == 1.0 and report["deterministic"].edges == 1.0
    assert report["fixed"].accuracy == 0.0 and report["fixed"].edges == 3.0  # the DAG 0→1, 0→2, 1→2
    assert report["deterministic"].prompt_tokens == 1.0 and report["deterministic"].queries == 6


def test_bad_inputs_fail_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="at least one training query"):
        batch_queries([], 0, 4)
    assert batch_queries([5, 6, 7], 1, 2) == [7, 5]
    with pytest.raises(ValueError, match="at least one query"):
        asyncio.run(evaluate(GraphParameters.full(2, 1), harmful_agent_2, []))
    with pytest.raises(ValueError, match="inference mode must be"):
        asyncio.run(evaluate(GraphParameters.full(2, 1), harmful_agent_2, [0], ("greedy",)))  # type: ignore[arg-type]

    async def wrong(graph: TeamGraph, query: int) -> float:
        return 1.0

    with pytest.raises(TypeError, match="play must return a PlayResult, not float"):
        asyncio.run(play_all(wrong, [GraphParameters.full(2, 1).realise("fixed")], [0], 1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="estimator"):
        AgentDropoutConfig(estimator="bogus")  # type: ignore[arg-type]
