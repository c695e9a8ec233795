"""The TRL adapter: a real ``GRPOTrainer`` step on CPU through ``environment_factory`` and through ``rollout_func``.

The model is a real ``LlamaForCausalLM`` whose weights are set so that it writes KeyChain tool
calls: every layer's output projection is zero, so a token's next-token distribution depends on
that token alone, and the output layer gives each token of a small script its successors. After
the generation prompt it writes ``<tool_call>``, then with even odds a lookup of the start key or
an answer, the right number or a wrong one with even odds. So a group of rollouts plays KeyChain
with real rewards that differ, and one GRPO step moves the weights.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
from pathlib import Path
from typing import Any, cast

import pytest
import torch
import trl
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM
from transformers.utils import get_json_schema

from horizongym.adapters.token_chain import TokenChainPolicy
from horizongym.adapters.trl import (
    TASK_SEED,
    EpisodeEnded,
    TRLEnvironment,
    env_reward,
    environment_class,
    environment_factory,
    episode_sequence,
    make_rollout_func,
    task_dataset,
    task_seed,
    with_tool_parsing,
)
from horizongym.agents.base import ContextLengthExceeded
from horizongym.agents.hf import TransformersPolicy
from horizongym.agents.tiny import END_OF_TEXT, IM_END, IM_START, PAD, build_byte_tokenizer
from horizongym.tools import ToolSet, tool
from horizongym.training.rollouts import Episode, RolloutError, Step

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRL_EXPERIMENTAL_SILENCE"] = "1"

SEED = 5
"""The KeyChain task every rollout plays."""
ENV_KWARGS = {"tool_instructions": False, "max_depth": 2}


def _keychain_task() -> tuple[str, str]:
    """The start key and the answer of task ``SEED``."""
    env = environment_factory("KeyChain-v0", **ENV_KWARGS)()
    env.reset(seed=SEED)
    chain: Any = env.env.unwrapped
    return chain.chain[0], chain.answer_value


def build_script_model(path: Path, script: dict[str, list[str]]) -> Path:
    """A Llama whose next token after token ``a`` is drawn evenly from ``script[a]`` (and nothing else).

    The script's keys and successors are tokens: new words are added to the byte-level tokenizer;
    ``"\\n"`` is the byte token that ends the generation prompt. Other tokens have uniform successors.
    """
    tokenizer = build_byte_tokenizer()
    words = sorted({w for successors in script.values() for w in successors} | set(script))
    tokenizer.add_tokens([w for w in words if w != "\n" and w not in (IM_END, IM_START, END_OF_TEXT, PAD)])

    def token_id(word: str) -> int:
        ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, (word, ids)
        return int(ids[0])

    special = {token: tokenizer.convert_tokens_to_ids(token) for token in (IM_START, IM_END, END_OF_TEXT, PAD)}
    hidden = 64
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        bos_token_id=special[IM_START],
        eos_token_id=special[IM_END],
        pad_token_id=special[PAD],
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    states = sorted(script)
    assert len(states) <= hidden
    with torch.no_grad():
        for layer in model.model.layers:  # the residual stream stays the token's embedding
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embedding, output = model.model.embed_tokens.weight, model.lm_head.weight
        embedding[:, : len(states)] = 0.0
        output.zero_()
        for i, state in enumerate(states):  # state i: the i-th basis vector, RMS 1
            embedding[token_id(state)] = 0.0
            embedding[token_id(state), i] = math.sqrt(hidden)
            for successor in script[state]:
                output[token_id(successor), i] = 20.0
    model.generation_config = GenerationConfig(
        eos_token_id=[special[IM_END], special[END_OF_TEXT]], pad_token_id=special[PAD], bos_token_id=special[IM_START]
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def keychain_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    start, answer = _keychain_task()
    head, lookup, give = '{"name": "', 'lookup", "arguments": {"key": "', 'answer", "arguments": {"value": "'
    wrong = "1000" if answer != "1000" else "1001"
    script = {
        "\n": ["<tool_call>"],
        "<tool_call>": [head],
        head: [lookup, give],
        lookup: [start],
        start: ['"}}'],
        give: [answer, wrong],
        answer: ['"}}'],
        wrong: ['"}}'],
        '"}}': ["</tool_call>"],
        "</tool_call>": [IM_END],
    }
    return build_script_model(tmp_path_factory.mktemp("trl") / "keychain-script", script)


def _parameters(model: Any) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _changed(before: dict[str, torch.Tensor], model: Any) -> bool:
    return any(not torch.equal(before[name], p.detach()) for name, p in model.named_parameters())


def _config(tmp_path: Path, **overrides: Any) -> trl.GRPOConfig:
    options: dict[str, Any] = {
        "output_dir": str(tmp_path / "out"),
        "max_steps": 1,
        "per_device_train_batch_size": 4,
        "num_generations": 4,
        "max_completion_length": 384,
        "learning_rate": 1e-2,
        "report_to": [],
        "logging_steps": 1,
        "save_strategy": "no",
        "use_cpu": True,
        "gradient_checkpointing": False,
        "seed": 0,
        **overrides,
    }
    return trl.GRPOConfig(**options)


# ----- environment_factory: the class ---------------------------------------------------------------
def test_tool_methods_give_trl_the_schemas_the_env_declares() -> None:
    for env_id in ("KeyChain-v0", "EmailInbox-v0"):
        environment: Any = environment_factory(env_id)()
        tools = environment.env.unwrapped.tools
        for declared in tools.schemas():
            function = declared["function"]
            derived = get_json_schema(getattr(environment, function["name"]))["function"]
            assert derived["name"] == function["name"]
            assert derived["description"] == function["description"]
            wanted, got = function["parameters"], derived["parameters"]
            assert set(got["properties"]) == set(wanted["properties"])
            assert set(got.get("required", [])) == set(wanted.get("required", []))
            for name, prop in wanted["properties"].items():
                assert got["properties"][name]["description"] == prop["description"]
                kind = prop.get("type") or next(o["type"] for o in prop["anyOf"] if o["type"] != "null")
                assert got["properties"][name]["type"] == kind
        environment._close()


def test_an_environment_trl_lets_go_closes_its_env() -> None:
    environment: Any = environment_factory("KeyChain-v0", **ENV_KWARGS)()
    closed: list[bool] = []
    environment.env.close = lambda: closed.append(True)  # TRL has no close hook: collection closes the env
    del environment
    gc.collect()
    assert closed == [True]


def test_each_tool_call_steps_the_env_and_the_reward_is_the_episodes() -> None:
    environment: Any = environment_factory("KeyChain-v0", **ENV_KWARGS)()
    assert type(environment).__name__ == "KeyChain_v0"
    with pytest.raises(EpisodeEnded, match="reset"):
        environment.lookup(key="amber")
    observation = environment.reset(seed=SEED, prompt=[{"role": "user", "content": ""}])
    chain: Any = environment.env.unwrapped
    assert f"Start key: {chain.chain[0]}" in observation
    assert environment.lookup(key=chain.chain[0]) == f"{chain.chain[0]} = -> {chain.chain[1]}"
    assert "invalid_arguments" in environment.lookup(kee="x")  # the env's own correction and penalty
    assert environment.get_reward() == pytest.approx(-0.1)
    assert environment.answer(value=chain.answer_value) == "Correct."
    assert environment.done and environment.get_reward() == pytest.approx(0.9)
    assert [step.name for step in environment.steps] == ["lookup", "lookup", "answer"]
    assert environment.steps[-1].terminated and environment.steps[-1].info["success"] is True
    with pytest.raises(EpisodeEnded, match="ended"):
        environment.answer(value="1")
    environment.reset(seed=SEED)
    assert environment.get_reward() == 0.0 and environment.steps == [] and not environment.done


def test_the_turn_limit_ends_the_episode_as_in_the_engine() -> None:
    environment: Any = environment_factory("KeyChain-v0", max_turns=2)()
    environment.reset(seed=1)
    environment.lookup(key="nothing")
    assert "Turn limit reached" in environment.lookup(key="nothing")
    assert environment.done and environment.steps[-1].truncated


def test_bad_rows_and_bad_tools_get_clear_errors() -> None:
    environment: Any = environment_factory("KeyChain-v0")()
    with pytest.raises(ValueError, match="seed must be a whole number"):
        environment.reset(seed="3")
    with pytest.raises(ValueError, match="options must be a mapping"):
        environment.reset(options=[1])

    class Clash:
        @tool
        def reset(self, text: str) -> str:
            """Reset something."""
            return text

    with pytest.raises(ValueError, match="TRL keeps for itself"):
        environment_class("Clash-v0", ToolSet.from_object(Clash()))
    with pytest.raises(Exception, match="NoSuchEnv"):
        environment_factory("NoSuchEnv-v0")


def test_task_dataset_and_task_seeds() -> None:
    dataset = task_dataset(3, seed=7)
    assert dataset["seed"] == [7, 8, 9]
    assert dataset[1]["prompt"] == [{"role": "user", "content": "", TASK_SEED: 8}]
    assert task_seed(dataset[2]["prompt"], 0) == 9
    with pytest.raises(ValueError, match="task_dataset"):
        task_seed([{"role": "user", "content": "hi"}], 4)
    with pytest.raises(ValueError, match="at least 1"):
        task_dataset(0)


# ----- environment_factory: a GRPO step ------------------------------------------------------------------
def test_grpo_trains_a_step_through_the_environment_factory(keychain_model: Path, tmp_path: Path) -> None:
    start, answer = _keychain_task()
    tokenizer = with_tool_parsing(AutoTokenizer.from_pretrained(keychain_model))
    model = AutoModelForCausalLM.from_pretrained(keychain_model, dtype=torch.float32)
    before = _parameters(model)
    trainer = trl.GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        args=_config(tmp_path, max_tool_calling_iterations=3),
        train_dataset=task_dataset(1, seed=SEED),
        environment_factory=environment_factory("KeyChain-v0", **ENV_KWARGS),
    )
    trainer.train()
    logged = trainer.state.log_history[0]
    assert trainer.state.global_step == 1 and "loss" in logged
    assert _changed(before, trainer.model)
    environments = cast("list[TRLEnvironment]", trainer.environments)
    assert len(environments) == 4
    calls = [(step.name, step.arguments) for e in environments for step in e.steps]
    assert ("lookup", {"key": start}) in calls and ("answer", {"value": answer}) in calls
    assert all(arguments == {"key": start} for name, arguments in calls if name == "lookup")
    rewards = [e.get_reward() for e in environments]
    assert set(rewards) == {0.0, 1.0}  # right and wrong answers (and lookups only) in one group
    assert logged["rewards/KeyChain_v0/mean"] == pytest.approx(sum(rewards) / len(rewards))
    assert logged["tools/call_frequency"] > 0


# ----- rollout_func ------------------------------------------------------------------------------------
def test_grpo_trains_a_step_through_the_rollout_func(keychain_model: Path, tmp_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(keychain_model)
    model = AutoModelForCausalLM.from_pretrained(keychain_model, dtype=torch.float32)
    before = _parameters(model)
    rollout = make_rollout_func("KeyChain-v0", ENV_KWARGS, store=tmp_path / "episodes.jsonl")
    seen: list[dict[str, Any]] = []

    def recorded(prompts: list[Any], trainer: Any) -> dict[str, Any]:
        output = rollout(prompts, trainer)
        seen.append(output)
        return output

    trainer = trl.GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        reward_funcs=env_reward,
        args=_config(tmp_path, max_completion_length=256),
        train_dataset=task_dataset(1, seed=SEED),
        rollout_func=recorded,
    )
    trainer.train()
    rollout.close()
    assert trainer.state.global_step == 1 and "loss" in trainer.state.log_history[0]
    assert _changed(before, trainer.model)
    (output,) = seen
    episodes = rollout.last_episodes
    assert [e.seed for e in episodes] == [SEED] * 4 and sorted(e.sample for e in episodes) == list(range(4))
    assert output["env_reward"] == [e.total_reward for e in episodes]
    assert {0.0, 1.0} <= set(output["env_reward"])
    assert any(e.num_turns > 1 for e in episodes)  # lookups, then an answer: env tokens inside a completion
    stored = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert len(stored) == 4
    for i, episode in enumerate(episodes):
        prompt, completion = output["prompt_ids"][i], output["completion_ids"][i]
        logprobs, mask = output["logprobs"][i], output["env_mask"][i]
        assert len(completion) == len(logprobs) == len(mask) <= 256
        assert prompt == episode.steps[0].prompt_token_ids
        assert sum(mask) == sum(len(step.token_ids or []) for step in episode.steps)
        observations = tokenizer.decode([t for t, m in zip(completion, mask, strict=True) if m == 0])
        for step in episode.steps[:-1]:
            assert step.observation in observations
    # the sampled tokens, scored again on the whole sequence by the weights that sampled them: the same log-probs
    sampler = AutoModelForCausalLM.from_pretrained(keychain_model, dtype=torch.float32)
    with torch.no_grad():
        for i in range(4):
            prompt, completion = output["prompt_ids"][i], output["completion_ids"][i]
            ids = prompt + completion
            scores = torch.log_softmax(sampler(torch.tensor([ids])).logits[0].float(), dim=-1)
            for j, (token, logprob, m) in enumerate(
                zip(completion, output["logprobs"][i], output["env_mask"][i], strict=True)
            ):
                if m:
                    assert scores[len(prompt) + j - 1, token].item() == pytest.approx(logprob, abs=1e-4)


def test_rollout_func_refuses_prompts_without_a_task_seed(keychain_model: Path) -> None:
    rollout = make_rollout_func("KeyChain-v0", ENV_KWARGS)
    with pytest.raises(ValueError, match="task_dataset"):
        rollout([[{"role": "user", "content": "hello"}]], trainer=object())
    rollout.close()


def test_env_reward_passes_the_episode_rewards_through() -> None:
    assert env_reward([[{}], [{}]], env_reward=[1.0, None]) == [1.0, None]
    with pytest.raises(ValueError, match="2 env rewards for 1"):
        env_reward([[{}]], env_reward=[1.0, 0.0])


# ----- the token chain ---------------------------------------------------------------------------------
def test_a_turn_continues_from_the_sampled_tokens(tiny_model_dir: Path) -> None:
    asyncio.run(_continues_from_the_sampled_tokens(tiny_model_dir))


async def _continues_from_the_sampled_tokens(tiny_model_dir: Path) -> None:
    policy = TokenChainPolicy(TransformersPolicy(tiny_model_dir, max_new_tokens=5, temperature=1.0, seed=0))
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Start."}]
    first = await policy.act(messages, [], seed=1)
    assert first.finish_reason == "length"  # cut off: the template's closing eos leads the env's tokens
    messages += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "More."}]
    second = await policy.act(messages, [], seed=2)
    assert first.prompt_token_ids is not None and first.token_ids is not None
    assert second.prompt_token_ids is not None
    head = first.prompt_token_ids + first.token_ids
    assert second.prompt_token_ids[: len(head)] == head
    tail = policy.tokenizer.decode(second.prompt_token_ids[len(head) :])
    assert tail == "<|im_end|>\n<|im_start|>user\nMore.<|im_end|>\n<|im_start|>assistant\n"
    other = [{"role": "user", "content": "Start."}]  # a new conversation starts a new chain
    assert (await policy.act(other, [], seed=1)).prompt_token_ids == first.prompt_token_ids
    await policy.aclose()


def test_the_completion_budget_ends_the_episode(tiny_model_dir: Path) -> None:
    asyncio.run(_completion_budget_ends_the_episode(tiny_model_dir))


async def _completion_budget_ends_the_episode(tiny_model_dir: Path) -> None:
    policy = TokenChainPolicy(TransformersPolicy(tiny_model_dir, max_new_tokens=50), completion_budget=6)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Start."}]
    first = await policy.act(messages, [], seed=1)
    assert first.token_ids is not None and len(first.token_ids) <= 6
    messages += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "More."}]
    with pytest.raises(ContextLengthExceeded, match="budget of 6"):
        await policy.act(messages, [], seed=2)
    await policy.aclose()


def test_an_episode_whose_context_was_rewritten_is_refused() -> None:
    steps = [
        Step(turn=1, action="a", observation="o", prompt_token_ids=[1, 2], token_ids=[3], logprobs=[-0.5]),
        Step(turn=2, action="b", observation="p", prompt_token_ids=[9, 9, 9], token_ids=[4], logprobs=[-0.1]),
    ]
    episode = Episode(env_id="KeyChain-v0", seed=0, sample=0, steps=steps)
    with pytest.raises(RolloutError, match="rewrote the context"):
        episode_sequence(episode, eos_token_id=0)
    steps[1] = Step(turn=2, action="b", observation="p", prompt_token_ids=[1, 2, 3, 7], token_ids=[4], logprobs=[-0.1])
    sample = episode_sequence(Episode(env_id="KeyChain-v0", seed=0, sample=0, steps=steps), eos_token_id=0)
    assert sample == ([1, 2], [3, 7, 4], [-0.5, 0.0, -0.1], [1, 0, 1])
    assert episode_sequence(Episode(env_id="KeyChain-v0", seed=0, sample=0), eos_token_id=0).env_mask == [0]
