"""SFT warm start: teach a model the actions of expert episodes before RL.

Each step of each episode is one example: the conversation the policy saw before that step,
rendered with the chat template (tools included), and the step's action text followed by the
eos token. The loss is the cross-entropy on the action and eos tokens only,

    L = − (1/N) Σ_examples Σ_{j ∈ action ⊕ eos} log π(y_j | prompt, y_<j)

with N the number of target tokens in the batch. The conversation is rebuilt by replaying the
episode through the rollout engine's own context builder as a text policy's turns (an action
is an assistant turn holding its text, tool calls included as Hermes blocks), so the prompts
are the ones a :class:`~horizongym.agents.hf.TransformersPolicy` sees during RL. SFT data is text, so
it is tokenized here; the RL samples never are.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from horizongym.agents.base import Message
from horizongym.agents.hf import encode_prompt, pad_batch
from horizongym.training.rollouts.context import PolicyContext
from horizongym.training.rollouts.engine import EnvRecipe
from horizongym.training.rollouts.store import read_episodes
from horizongym.training.rollouts.trajectory import Episode


@dataclass(frozen=True)
class SFTExample:
    """One (context, action) pair, and the tools offered in that context."""

    messages: list[Message]
    action: str
    tools: list[dict[str, Any]]


def step_contexts(episode: Episode) -> list[tuple[list[Message], str]]:
    """(the messages a text policy saw before each step, that step's action), in turn order.

    The episode's turns are replayed through :class:`~horizongym.training.rollouts.context.PolicyContext`,
    the builder the rollout engine uses, with each action as the assistant's text (a text
    policy's tool calls are Hermes blocks in its text, as ``Step.action`` holds them).
    """
    opening = episode.messages[:2]
    system = opening[0]["content"] if opening and opening[0].get("role") == "system" else None
    first = next((m for m in opening if m.get("role") == "user"), None)
    if first is None:
        raise ValueError(f"episode (seed {episode.seed}) of {episode.env_id} has no first observation")
    context = PolicyContext(first["content"], system)
    pairs: list[tuple[list[Message], str]] = []
    for step in episode.steps:
        pairs.append(([dict(m) for m in context.messages], step.action))
        context.add_turn({"role": "assistant", "content": step.action}, step.observation, step.info)
    return pairs


def _env_tools(episode: Episode, cache: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The tool schemas the env offers (read once per env id and kwargs)."""
    key = json.dumps([episode.env_id, episode.env_kwargs], sort_keys=True, default=str)
    if key not in cache:
        env = EnvRecipe(episode.env_id, dict(episode.env_kwargs)).build()
        try:
            cache[key] = list(env.reset(seed=episode.seed)[1].get("tools", []))
        finally:
            env.close()
    return cache[key]


def sft_examples(
    episodes: Sequence[Episode] | str | os.PathLike[str],
    *,
    tools: list[dict[str, Any]] | None = None,
    successful_only: bool = False,
) -> list[SFTExample]:
    """Every step of ``episodes`` (a list or a JSONL path) as an example.

    ``tools`` are the schemas rendered into each prompt; by default each episode's env is
    built once to read them. ``successful_only`` keeps episodes with ``success=True`` only.
    """
    items = read_episodes(episodes) if isinstance(episodes, str | os.PathLike) else list(episodes)
    cache: dict[str, list[dict[str, Any]]] = {}
    examples: list[SFTExample] = []
    for episode in items:
        if successful_only and not episode.success:
            continue
        offered = tools if tools is not None else _env_tools(episode, cache)
        examples.extend(SFTExample(messages, action, offered) for messages, action in step_contexts(episode))
    return examples


def sft_warm_start(
    model: Any,
    tokenizer: Any,
    episodes: Sequence[Episode] | str | os.PathLike[str],
    *,
    epochs: int = 1,
    batch_size: int = 8,
    lr: float = 1e-4,
    weight_decay: float = 0.0,
    seed: int = 0,
    tools: list[dict[str, Any]] | None = None,
    successful_only: bool = False,
    max_length: int | None = None,
) -> list[float]:
    """Fine-tune ``model`` in place on the expert actions of ``episodes``; return each epoch's mean loss.

    AdamW on the parameters that require gradients (so a LoRA-wrapped model trains its
    adapters only), gradient norm clipped to 1.0. Examples are shuffled each epoch with
    ``random.Random(seed)``, and torch's generator is seeded with ``seed``, so two runs from
    the same weights give the same result. Examples longer than ``max_length`` tokens are
    dropped. An epoch's loss is the token-weighted mean of its batches' losses.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be at least 1")
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no eos token to end the actions with")
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos)
    rows: list[tuple[list[int], list[int]]] = []
    for example in sft_examples(episodes, tools=tools, successful_only=successful_only):
        prompt = encode_prompt(tokenizer, example.messages, example.tools or None)
        target = [int(i) for i in tokenizer(example.action, add_special_tokens=False)["input_ids"]] + [int(eos)]
        if max_length is None or len(prompt) + len(target) <= max_length:
            rows.append((prompt, target))
    if not rows:
        raise ValueError("no SFT examples: the episodes have no steps (or every one is longer than max_length)")
    torch.manual_seed(seed)
    order_rng = random.Random(seed)
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    was_training = model.training
    model.train()
    losses: list[float] = []
    try:
        for _ in range(epochs):
            order = list(range(len(rows)))
            order_rng.shuffle(order)
            total, tokens = 0.0, 0
            for start in range(0, len(order), batch_size):
                batch = [rows[i] for i in order[start : start + batch_size]]
                input_ids, labels, attention = pad_batch(batch, pad)
                logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
                targets = labels[:, 1:].to(device)
                mask = targets != -100
                log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
                picked = log_probs.gather(2, targets.clamp(min=0)[..., None]).squeeze(-1)
                count = int(mask.sum().item())
                loss = -(picked * mask).sum() / count
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                total += float(loss.item()) * count
                tokens += count
            losses.append(total / tokens)
    finally:
        model.train(was_training)
    return losses
