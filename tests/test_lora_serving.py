"""Serving LoRA adapters and training through the server: vLLM's dynamic LoRA API on ``horizongym serve``,
token ids in replies, truncated importance sampling, and a training run that hot-reloads its adapter."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

import horizongym as hg
from horizongym import Task, TextEnv
from horizongym.agents.serving import ServerThread, create_app
from horizongym.training.config import TrainConfig
from horizongym.training.ppo import completion_logprobs, ppo_loss
from horizongym.training.rollouts import read_episodes
from horizongym.training.samples import TurnSample
from horizongym.training.trainer import Trainer
from horizongym.training.truncated_is import refuse_stale, truncated_is_weights

BASE = "tiny-base"
MESSAGES = [{"role": "user", "content": "Say hi."}]


class ServedToyEnv(TextEnv):
    """Two turns of free text; the reward depends on the text, so the samples of a group differ."""

    blocking = False
    max_turns = 2

    def new_task(self, options: dict[str, Any]) -> Task:
        return Task(id=f"served-{int(self.np_random.integers(100))}", prompt="Say hi.")

    def on_text(self, text: str) -> str:
        self.add_reward("variety", (len(set(text)) % 4) / 3)
        if self.state.turn >= 2:
            self.end_episode(success=len(set(text)) % 2 == 0)
        return "Again."


hg.register("ServedToy-v0", ServedToyEnv)


def load(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), AutoTokenizer.from_pretrained(path)


def save_adapter(model_dir: Path, out: Path, *, seed: int) -> Path:
    """A LoRA adapter of the model in ``model_dir`` whose B matrices are random (so it changes the outputs)."""
    from peft import LoraConfig, get_peft_model

    model, _ = load(model_dir)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    generator = torch.Generator().manual_seed(seed)
    for name, parameter in peft_model.named_parameters():
        if "lora_B" in name:
            parameter.data = torch.randn(parameter.shape, generator=generator) * 0.5
    peft_model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from horizongym.agents.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("lora")
    model = build_tiny_model(root / "tiny", seed=3, hidden_size=32, num_heads=2)
    wider = build_tiny_model(root / "wider", seed=3, hidden_size=48, num_heads=2)
    return {
        "model": model,
        "a": save_adapter(model, root / "adapter-a", seed=1),
        "b": save_adapter(model, root / "adapter-b", seed=2),
        "wider": save_adapter(wider, root / "adapter-wider", seed=1),
    }


@pytest.fixture()
def server(folders: dict[str, Path]) -> Iterator[ServerThread]:
    with ServerThread(create_app(folders["model"], BASE, max_new_tokens=8)) as running:
        yield running


def post(server: ServerThread, endpoint: str, body: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}/{endpoint}", json=body, timeout=60)


def complete(server: ServerThread, model: str, **extra: Any) -> dict[str, Any]:
    body = {"model": model, "messages": MESSAGES, "temperature": 0, "max_tokens": 6, "logprobs": True, **extra}
    response = post(server, "chat/completions", {**body, "return_token_ids": True})
    assert response.status_code == 200, response.text
    return dict(response.json())


def logprobs_of(reply: dict[str, Any]) -> list[float]:
    return [entry["logprob"] for entry in reply["choices"][0]["logprobs"]["content"]]


# ----- the dynamic LoRA API ----------------------------------------------------------------
def test_load_serve_and_unload_adapters(server: ServerThread, folders: dict[str, Path]) -> None:
    before = complete(server, BASE)
    loaded = post(server, "load_lora_adapter", {"lora_name": "a", "lora_path": str(folders["a"])})
    assert loaded.status_code == 200 and loaded.text == "Success: LoRA adapter 'a' added successfully."
    assert post(server, "load_lora_adapter", {"lora_name": "b", "lora_path": str(folders["b"])}).status_code == 200

    cards = {card["id"]: card for card in httpx.get(f"{server.base_url}/models").json()["data"]}
    assert set(cards) == {BASE, "a", "b"}
    assert cards["a"]["root"] == str(folders["a"]) and cards["a"]["parent"] == BASE
    assert httpx.get(f"{server.base_url}/models/b").json()["root"] == str(folders["b"])

    # the base model still answers with its own weights; each adapter with its own
    base_after, with_a, with_b = complete(server, BASE), complete(server, "a"), complete(server, "b")
    assert base_after["model"] == BASE and with_a["model"] == "a" and with_b["model"] == "b"
    assert logprobs_of(base_after) == pytest.approx(logprobs_of(before), abs=1e-5)
    first = [logprobs_of(reply)[0] for reply in (base_after, with_a, with_b)]
    assert len({round(value, 4) for value in first}) == 3

    # the served adapter gives what peft gives for the same tokens
    from peft import PeftModel

    model, _ = load(folders["model"])
    reference = PeftModel.from_pretrained(model, folders["a"]).eval()
    expected, _ = completion_logprobs(
        reference, [with_a["prompt_token_ids"]], [with_a["choices"][0]["token_ids"]], pad_token_id=0
    )
    assert logprobs_of(with_a) == pytest.approx(expected[0].tolist(), abs=1e-4)

    unloaded = post(server, "unload_lora_adapter", {"lora_name": "a"})
    assert unloaded.status_code == 200 and unloaded.text == "Success: LoRA adapter 'a' removed successfully."
    assert logprobs_of(complete(server, "b")) == pytest.approx(logprobs_of(with_b), abs=1e-5)
    assert post(server, "unload_lora_adapter", {"lora_name": "b"}).status_code == 200
    assert [card["id"] for card in httpx.get(f"{server.base_url}/models").json()["data"]] == [BASE]
    assert logprobs_of(complete(server, BASE)) == pytest.approx(logprobs_of(before), abs=1e-5)
    # a name can be loaded again once unloaded
    assert post(server, "load_lora_adapter", {"lora_name": "a", "lora_path": str(folders["a"])}).status_code == 200
    assert logprobs_of(complete(server, "a")) == pytest.approx(logprobs_of(with_a), abs=1e-5)


def error_of(response: httpx.Response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == kind and error["code"] == status
    return str(error["message"])


def test_lora_endpoint_errors_as_vllm_answers_them(server: ServerThread, folders: dict[str, Path]) -> None:
    missing = post(server, "load_lora_adapter", {"lora_name": "a"})
    assert error_of(missing, 400, "InvalidUserInput") == "Both 'lora_name' and 'lora_path' must be provided."
    nowhere = str(folders["a"].parent / "no-such-adapter")
    bad_path = post(server, "load_lora_adapter", {"lora_name": "x", "lora_path": nowhere})
    assert error_of(bad_path, 404, "NotFoundError") == f"Loading lora x failed: No adapter found for {nowhere}"
    unknown = post(server, "unload_lora_adapter", {"lora_name": "nobody"})
    assert error_of(unknown, 404, "NotFoundError") == "The lora adapter 'nobody' cannot be found."
    no_name = post(server, "unload_lora_adapter", {})
    assert "'lora_name' needs to be provided" in error_of(no_name, 400, "InvalidUserInput")

    assert post(server, "load_lora_adapter", {"lora_name": "a", "lora_path": str(folders["a"])}).status_code == 200
    with_a = complete(server, "a")
    twice = post(server, "load_lora_adapter", {"lora_name": "a", "lora_path": str(folders["b"])})
    assert "The lora adapter 'a' has already been loaded" in error_of(twice, 400, "InvalidUserInput")
    wider = post(server, "load_lora_adapter", {"lora_name": "w", "lora_path": str(folders["wider"])})
    assert "does not fit" in error_of(wider, 400, "BadRequestError")
    # neither refusal changed what is served
    assert [card["id"] for card in httpx.get(f"{server.base_url}/models").json()["data"]] == [BASE, "a"]
    assert logprobs_of(complete(server, "a")) == pytest.approx(logprobs_of(with_a), abs=1e-5)

    assert post(server, "unload_lora_adapter", {"lora_name": "a"}).status_code == 200
    gone = post(server, "chat/completions", {"model": "a", "messages": MESSAGES})
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "model_not_found"
    # a wider adapter refused on the plain model leaves the plain model as it was
    refused = post(server, "load_lora_adapter", {"lora_name": "w", "lora_path": str(folders["wider"])})
    assert refused.status_code == 400
    assert not any("lora" in name for name, _ in server.app.state.server.policy.model.named_modules())


def test_replies_carry_token_ids_and_logprobs(server: ServerThread) -> None:
    reply = complete(server, BASE, return_tokens_as_token_ids=True)
    policy = server.app.state.server.policy
    assert reply["prompt_token_ids"] == policy.encode(MESSAGES, None)
    token_ids = reply["choices"][0]["token_ids"]
    entries = reply["choices"][0]["logprobs"]["content"]
    assert len(token_ids) == len(entries) == reply["usage"]["completion_tokens"]
    assert [entry["token"] for entry in entries] == [f"token_id:{t}" for t in token_ids]
    assert policy.tokenizer.decode(token_ids, skip_special_tokens=True) == reply["choices"][0]["message"]["content"]

    body = {"model": BASE, "messages": MESSAGES, "temperature": 0, "max_tokens": 6, "stream": True}
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json={**body, "return_token_ids": True}) as r:
        lines = [line[6:] for line in r.iter_lines() if line.startswith("data: ") and line != "data: [DONE]"]
    chunks = [json.loads(line) for line in lines]
    assert chunks[0]["prompt_token_ids"] == reply["prompt_token_ids"]
    assert [t for chunk in chunks for c in chunk["choices"] for t in c.get("token_ids", [])] == token_ids


# ----- truncated importance sampling ------------------------------------------------------------
def test_truncated_is_weights_match_hand_computation() -> None:
    old = torch.log(torch.tensor([[0.5, 0.2, 0.9], [0.3, 0.6, 0.0]]))
    behaviour = torch.log(torch.tensor([[0.25, 0.4, 0.3], [0.3, 0.1, 0.5]]))
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    old = torch.where(mask > 0, old, torch.zeros_like(old))
    tokens = truncated_is_weights(old, behaviour, mask, cap=2.5)
    # ratios 0.5/0.25 = 2, 0.2/0.4 = 0.5, 0.9/0.3 = 3 → capped at 2.5; 0.3/0.3 = 1, 0.6/0.1 = 6 → 2.5; padding 0
    assert tokens.flatten().tolist() == pytest.approx([2.0, 0.5, 2.5, 1.0, 2.5, 0.0])
    sequences = truncated_is_weights(old, behaviour, mask, cap=2.5, level="sequence")
    # geometric means: (2 · 0.5 · 3)^(1/3) = 3^(1/3) ≈ 1.442; (1 · 6)^(1/2) = √6 ≈ 2.449 (under the cap)
    assert sequences.tolist() == pytest.approx([3 ** (1 / 3), math.sqrt(6)], rel=1e-5)
    assert truncated_is_weights(old, behaviour, mask, cap=1.2, level="sequence").tolist() == pytest.approx([1.2, 1.2])


def test_ppo_loss_scales_each_token_by_its_weight() -> None:
    # ratios r = (1.5, 0.5) with A = +1 → clipped terms (1.2, 0.5); weights (2, 0.5) → −(2.4 + 0.25)/2
    logprobs = torch.log(torch.tensor([[0.6, 0.2]]))
    old = torch.log(torch.tensor([[0.4, 0.4]]))
    mask = torch.ones(1, 2)
    weights = torch.tensor([[2.0, 0.5]])
    loss, stats = ppo_loss(logprobs, old, torch.tensor([1.0]), mask, is_weights=weights)
    assert float(loss) == pytest.approx(-(2.0 * 1.2 + 0.5 * 0.5) / 2) and stats.is_weight_mean == 1.25
    unweighted, stats = ppo_loss(logprobs, old, torch.tensor([1.0]), mask)
    assert float(unweighted) == pytest.approx(-(1.2 + 0.5) / 2) and stats.is_weight_mean == 1.0


def sample(version: int | None, turn: int = 0) -> TurnSample:
    return TurnSample([1], [2], [-0.1], 1.0, (0, 0), turn, policy_version=version)


def test_samples_older_than_the_bound_are_refused() -> None:
    samples = [sample(5, 0), sample(4, 1), sample(2, 2), sample(None, 3)]
    split = refuse_stale(samples, current_version=5, max_staleness=1)
    assert [s.turn for s in split.fresh] == [0, 1, 3] and split.refused == 1
    assert refuse_stale(samples, current_version=5, max_staleness=3).refused == 0
    with pytest.raises(ValueError, match="after the trainer's version 3"):
        refuse_stale(samples, current_version=3, max_staleness=1)


# ----- training through the server ------------------------------------------------------------
def served_config(server: ServerThread, tmp_path: Path, **settings: Any) -> TrainConfig:
    """A run of ServedToy-v0 that rolls out through ``server`` with LoRA adapters named ``toy-vN``."""
    return TrainConfig(
        env_id="ServedToy-v0",
        group_size=2,
        tasks_per_step=2,
        lr=5e-2,
        lora_rank=4,
        out_dir=str(tmp_path / "run"),
        rollout_server=server.base_url,
        rollout_adapter="toy",
        **settings,
    )


def test_training_through_the_server_hot_reloads_each_adapter_version(folders: dict[str, Path], tmp_path: Path) -> None:
    app = create_app(folders["model"], BASE, max_new_tokens=10)
    server_state = app.state.server
    with ServerThread(app) as server:
        cfg = served_config(server, tmp_path, steps=3, max_new_tokens=10)
        model, tokenizer = load(folders["model"])
        trainer = Trainer(cfg, model, tokenizer, progress=False)
        records = trainer.train()

        # the step k rollouts named adapter toy-v(k-1); the last update is served as toy-v3
        assert [r["rollout_version"] for r in records] == [0, 1, 2]
        assert all(r["stale_samples"] == 0 and r["samples"] > 0 for r in records)
        assert [r["tis_weight_mean"] for r in records] == pytest.approx([1.0] * 3, abs=1e-3)  # the same weights
        served = [card["id"] for card in httpx.get(f"{server.base_url}/models").json()["data"]]
        assert served == [BASE, "toy-v3"]
        assert sorted(p.name for p in (tmp_path / "run" / "adapters").iterdir()) == ["v00000003"]

        # the versions the episodes record are the adapters the server answered with
        episodes = read_episodes(tmp_path / "run" / "episodes.jsonl")
        assert len(episodes) == 12
        recorded = Counter(f"toy-v{s.policy_version}" for e in episodes for s in e.steps)
        assert recorded == Counter({name: n for name, n in server_state.completions.items() if n})
        assert set(recorded) == {"toy-v0", "toy-v1", "toy-v2"}
        for episode in episodes:
            assert episode.policy_versions == [(episode.seed - cfg.task_seed_start) // cfg.tasks_per_step]
            assert all(s.token_ids and s.prompt_token_ids and s.logprobs for s in episode.steps)

        # the served toy-v3 is the trained adapter: its log-probs are the trainer's
        reply = complete(server, "toy-v3", temperature=1.0)
        ids = reply["choices"][0]["token_ids"]
        mine, _ = completion_logprobs(trainer.model, [reply["prompt_token_ids"]], [ids], pad_token_id=0)
        assert logprobs_of(reply) == pytest.approx(mine[0].tolist(), abs=1e-4)
        trained = [p for n, p in trainer.model.named_parameters() if "lora_B" in n]
        assert trained and any(bool(p.abs().sum() > 0) for p in trained)  # the adapter moved away from the base


class LowerLogprobs:
    """ASGI middleware: every log-prob in a chat completion's answer is lowered by ``shift``.

    The server then reports μ = π · e^−shift for the tokens it sampled from π, so a trainer that
    recomputes π_old (the same weights) sees π_old / μ = e^shift on every token.
    """

    def __init__(self, app: Any, shift: float) -> None:
        self.app, self.shift = app, shift

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/chat/completions"):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        body = bytearray()

        async def rewrite(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            payload = self.lowered(bytes(body)) if start["status"] == 200 else bytes(body)
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})

        await self.app(scope, receive, rewrite)

    def lowered(self, body: bytes) -> bytes:
        reply = json.loads(body)
        for choice in reply["choices"]:
            for entry in (choice.get("logprobs") or {}).get("content") or []:
                entry["logprob"] -= self.shift
        return json.dumps(reply).encode()


@pytest.mark.parametrize(
    ("shift", "expected"),
    [(0.2, math.exp(0.2)), (0.7, 1.5)],  # e^0.2 ≈ 1.22 under the cap of 1.5; e^0.7 ≈ 2.01 truncated to it
    ids=["under-the-cap", "truncated"],
)
def test_truncated_is_weights_the_server_mismatch(
    folders: dict[str, Path], tmp_path: Path, shift: float, expected: float
) -> None:
    """A server whose log-probs are all ``shift`` too low: each token's weight is min(e^shift, C),
    and PPO's ratio is taken against the trainer's recomputed π_old, so it starts at 1."""
    with ServerThread(LowerLogprobs(create_app(folders["model"], BASE, max_new_tokens=6), shift)) as server:
        cfg = served_config(server, tmp_path, steps=2, max_new_tokens=6, tis_cap=1.5)
        model, tokenizer = load(folders["model"])
        records = Trainer(cfg, model, tokenizer, progress=False).train()
    # the second step samples from the adapter the first one trained: the weights still match
    assert [r["rollout_version"] for r in records] == [0, 1] and all(r["samples"] > 0 for r in records)
    assert [r["tis_weight_mean"] for r in records] == pytest.approx([expected] * 2, rel=1e-4)
    # one optimizer step per training step: π_θ = π_old for every micro-batch, as recomputed (not μ)
    assert [r["mean_ratio"] for r in records] == pytest.approx([1.0] * 2, abs=1e-4)
