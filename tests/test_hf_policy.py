"""TransformersPolicy on real tiny models: templates, token-in/token-out, batching, determinism."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import horizongym
from horizongym.agents.base import Action
from horizongym.agents.hf import ContextLengthExceeded, TransformersPolicy, render_prompt
from horizongym.agents.tiny import build_tiny_model


def teacher_forced_logprobs(
    model_dir: Path, prompt_ids: list[int], token_ids: list[int], temperature: float = 1.0
) -> list[float]:
    """Log-probs of ``token_ids`` after ``prompt_ids``: one full forward pass of a freshly loaded model."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + token_ids])).logits[0, len(prompt_ids) - 1 : -1].float()
    log_probs = torch.log_softmax(logits / temperature, dim=-1)
    return log_probs.gather(1, torch.tensor(token_ids)[:, None]).squeeze(1).tolist()


def keychain_start(seed: int = 0) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    env = horizongym.make("KeyChain-v0")
    observation, info = env.reset(seed=seed)
    return env, [{"role": "user", "content": observation}], info["tools"]


def check_tokens(policy: TransformersPolicy, action: Action, max_new_tokens: int) -> None:
    """The returned ids are exactly the generated ones, and they decode to the prompt and the text."""
    tokenizer = policy.tokenizer
    assert not action.tool_calls
    assert action.prompt_token_ids and action.token_ids and action.logprobs is not None
    assert len(action.logprobs) == len(action.token_ids) <= max_new_tokens
    assert policy.pad_token_id not in action.token_ids[:-1]
    eos_positions = [i for i, t in enumerate(action.token_ids) if t in policy.eos_token_ids]
    if action.finish_reason == "stop":
        assert eos_positions == [len(action.token_ids) - 1]
    else:
        assert action.finish_reason == "length" and not eos_positions
        assert len(action.token_ids) == max_new_tokens
    prompt_text = tokenizer.decode(action.prompt_token_ids)
    both = tokenizer.decode(action.prompt_token_ids + action.token_ids)
    assert both == prompt_text + tokenizer.decode(action.token_ids)
    assert action.text == tokenizer.decode(action.token_ids, skip_special_tokens=True)


def test_chat_template_renders_tools_and_tool_messages(tiny_model_dir: Path, keychain_dialogue: dict[str, Any]) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token_id is not None
    assert tokenizer("é", add_special_tokens=False)["input_ids"] == list("é".encode())
    d = keychain_dialogue
    text = render_prompt(tokenizer, d["second"], d["tools"])
    assert text.startswith("<|im_start|>system\nYou play KeyChain. Use the tools.")
    start = text.index("<tools>\n") + len("<tools>\n")
    tools_block = text[start : text.index("</tools>", start)]
    assert [json.loads(line) for line in tools_block.splitlines()] == d["tools"]
    assert '<tool_call>{"name": <function-name>' in text[start:]  # the instruction shows the call format
    assert (
        '<|im_start|>assistant\n<tool_call>{"name": "lookup", "arguments": {"key": "amber"}}</tool_call>'
        "<|im_end|>\n" in text
    )
    assert "<|im_start|>user\n<tool_response>\namber = 4821\n</tool_response><|im_end|>\n" in text
    assert text.endswith("<|im_start|>assistant\n")
    assert text.count("<|im_start|>system") == 1
    plain = render_prompt(tokenizer, [{"role": "user", "content": "hi"}], None)
    assert plain == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_act_tokens_and_logprobs_match_teacher_forcing(tiny_model_dir: Path, temperature: float) -> None:
    env, messages, tools = keychain_start(seed=3)
    policy = TransformersPolicy(tiny_model_dir, max_new_tokens=24, temperature=temperature, device="cpu")
    action = asyncio.run(policy.act(messages, tools, seed=7))
    assert action.prompt_token_ids == policy.encode(messages, tools)
    assert "<tools>" in policy.tokenizer.decode(action.prompt_token_ids)
    check_tokens(policy, action, 24)
    assert action.token_ids is not None and action.logprobs is not None
    expected = teacher_forced_logprobs(tiny_model_dir, action.prompt_token_ids, action.token_ids)
    assert max(abs(a - b) for a, b in zip(action.logprobs, expected, strict=True)) < 1e-4
    # The env reads the raw text itself: a random model's text is a malformed action, not an exception.
    _, reward, terminated, truncated, info = env.step(action.env_action())
    assert info["turn"] == 1 and not terminated and not truncated and float(reward) <= 0


def test_trained_model_stops_at_eos_and_env_reads_the_call(
    trained_model_dir: Path, keychain_dialogue: dict[str, Any]
) -> None:
    d = keychain_dialogue
    policy = TransformersPolicy(trained_model_dir, max_new_tokens=120, temperature=0.0)
    action = asyncio.run(policy.act(d["first"], d["tools"]))
    assert action.text == d["first_completion"] and action.finish_reason == "stop"
    assert action.token_ids is not None and action.token_ids[-1] == policy.tokenizer.eos_token_id
    check_tokens(policy, action, 120)
    assert action.env_action() == d["first_completion"]  # no duplicated calls
    env, _, _ = keychain_start()
    observation, reward, _, _, _ = env.step(action.env_action())
    assert "amber" in observation and float(reward) == 0.0  # a well-formed call: no format penalty


def test_concurrent_acts_are_batched(tiny_model_dir: Path) -> None:
    policy = TransformersPolicy(tiny_model_dir, max_new_tokens=12, temperature=0.0, max_batch_size=4)
    conversations = [[{"role": "user", "content": "key " * (i + 1)}] for i in range(4)]

    async def together() -> list[Action]:
        actions = await asyncio.gather(*(policy.act(m, []) for m in conversations))
        await policy.aclose()
        return list(actions)

    async def one_by_one() -> list[Action]:
        return [await policy.act(m, []) for m in conversations]

    batched = asyncio.run(together())
    assert policy.batch_size_counts == {4: 1}
    alone = asyncio.run(one_by_one())
    assert policy.batch_size_counts == {4: 1, 1: 4}
    assert len({len(a.prompt_token_ids or []) for a in batched}) == 4  # left padding was needed
    for b, a in zip(batched, alone, strict=True):
        assert b.token_ids == a.token_ids and b.prompt_token_ids == a.prompt_token_ids
        assert b.logprobs is not None and a.logprobs is not None
        assert max(abs(x - y) for x, y in zip(b.logprobs, a.logprobs, strict=True)) < 1e-4
        check_tokens(policy, b, 12)


def test_greedy_is_deterministic_and_seeds_reproduce_samples(tiny_model_dir: Path) -> None:
    _, messages, tools = keychain_start(seed=1)
    policy = TransformersPolicy(tiny_model_dir, max_new_tokens=16)

    async def run() -> tuple[list[Action], list[Action]]:
        greedy = [await policy.act(messages, tools, temperature=0.0) for _ in range(2)]
        sampled = await asyncio.gather(
            policy.act(messages, tools, seed=11, top_p=0.9),
            policy.act(messages, tools, seed=11, top_p=0.9),
            policy.act(messages, tools, seed=12, top_p=0.9),
        )
        return greedy, list(sampled)

    greedy, sampled = asyncio.run(run())
    assert greedy[0].token_ids == greedy[1].token_ids and greedy[0].text == greedy[1].text
    assert sampled[0].token_ids == sampled[1].token_ids
    assert sampled[0].token_ids != sampled[2].token_ids


def test_policy_from_objects_and_limits(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    policy = TransformersPolicy(model, tokenizer, max_new_tokens=3, temperature=0.0)
    action = asyncio.run(policy.act([{"role": "user", "content": [{"type": "text", "text": "hi"}]}], []))
    assert action.finish_reason == "length" and len(action.token_ids or []) == 3
    assert policy.tokenizer.decode(action.prompt_token_ids or []).startswith("<|im_start|>user\nhi<|im_end|>")
    asyncio.run(policy.aclose())
    asyncio.run(policy.aclose())

    short = TransformersPolicy(build_tiny_model(tmp_path / "short", max_position_embeddings=64), temperature=0)
    with pytest.raises(ContextLengthExceeded):
        asyncio.run(short.act([{"role": "user", "content": "x" * 100}], []))
    clipped = asyncio.run(short.act([{"role": "user", "content": "x" * 20}], [], max_new_tokens=500))
    assert len(clipped.prompt_token_ids or []) + len(clipped.token_ids or []) <= 64
    with pytest.raises(ValueError):
        TransformersPolicy(model, tokenizer, temperature=-1)
