"""Tiny causal LMs built from a config, for tests and demos that must run offline on a CPU.

:func:`build_tiny_model` writes a randomly initialised ``LlamaForCausalLM`` and a byte-level
tokenizer (256 byte tokens and four special tokens) with a ChatML chat template that offers
tools the Qwen2.5 / Hermes way. :func:`sft_overfit` then trains such a model on a few
(conversation, completion) pairs until greedy decoding reproduces every completion, so a
test can get real tool calls out of a real model without downloading anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from horizongym.agents.base import Message
from horizongym.agents.hf import CHATML_TOOLS_TEMPLATE, encode_prompt, pad_batch

IM_START, IM_END, END_OF_TEXT, PAD = "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|pad|>"
SPECIAL_TOKENS = (IM_START, IM_END, END_OF_TEXT, PAD)
"""The special tokens, in id order after the 256 byte tokens (ids 256..259)."""


def build_byte_tokenizer() -> Any:
    """A byte-level ``PreTrainedTokenizerFast``: token id ``b`` is byte ``b``, then the special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = _bytes_to_unicode()
    backend = Tokenizer(models.BPE(vocab={alphabet[b]: b for b in range(256)}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=IM_END, pad_token=PAD, bos_token=None, unk_token=None
    )
    tokenizer.chat_template = CHATML_TOOLS_TEMPLATE
    return tokenizer


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (what ``ByteLevel`` uses)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def build_tiny_model(
    path: str | Path,
    *,
    seed: int = 0,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    max_position_embeddings: int = 2048,
) -> Path:
    """Write a random tiny ``LlamaForCausalLM`` and its byte-level tokenizer to ``path``.

    The folder loads with ``AutoModelForCausalLM`` / ``AutoTokenizer`` (and so with
    :class:`~horizongym.agents.hf.TransformersPolicy` and ``horizongym serve``). The same
    ``seed`` gives the same weights. Returns ``path``.
    """
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    if hidden_size % num_heads:
        raise ValueError("hidden_size must be a multiple of num_heads")
    path = Path(path)
    tokenizer = build_byte_tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=ids[IM_START],
        eos_token_id=ids[IM_END],
        pad_token_id=ids[PAD],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[ids[IM_END], ids[END_OF_TEXT]], pad_token_id=ids[PAD], bos_token_id=ids[IM_START]
    )
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def sft_overfit(
    path: str | Path,
    examples: list[tuple[list[Message], str]],
    *,
    tools: list[dict[str, Any]] | None = None,
    output: str | Path | None = None,
    steps: int = 400,
    lr: float = 3e-3,
    min_prob: float = 0.9,
    seed: int = 0,
) -> int:
    """Train the model at ``path`` until greedy decoding answers each conversation with its completion.

    Each example is ``(messages, completion)``; the prompt is the chat template with ``tools``
    and the generation prompt, the target is ``completion`` followed by the eos token (the loss
    is on the target only). Full-batch AdamW runs until every target token has probability at
    least ``min_prob`` under teacher forcing (so each is the argmax, and greedy decoding
    reproduces the completion) or ``steps`` run out, which raises ``RuntimeError``. Saves the
    model to ``output`` (default: ``path``) and returns the number of steps taken.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not examples:
        raise ValueError("give at least one (messages, completion) example")
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.train()
    rows: list[tuple[list[int], list[int]]] = []
    for messages, completion in examples:
        prompt = encode_prompt(tokenizer, messages, tools)
        target = [int(i) for i in tokenizer(completion, add_special_tokens=False)["input_ids"]]
        rows.append((prompt, [*target, int(tokenizer.eos_token_id)]))
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    input_ids, labels, attention = pad_batch(rows, pad)
    # Position t predicts token t + 1.
    targets, mask = labels[:, 1:], labels[:, 1:] != -100
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    for step in range(steps + 1):
        logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1].float()
        log_probs = torch.log_softmax(logits, dim=-1).gather(2, targets.clamp(min=0)[..., None]).squeeze(-1)
        if bool((log_probs[mask].exp() >= min_prob).all()):
            break
        loss = -(log_probs * mask).sum() / mask.sum()
        if step == steps:
            raise RuntimeError(f"the completions were not learned in {steps} steps (loss {loss.item():.4f})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(output or path)
    if output is not None:
        tokenizer.save_pretrained(output)
    return step
