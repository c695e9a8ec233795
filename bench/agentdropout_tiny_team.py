"""The AgentDropout bench's team with tiny transformers members: a generated item-code task and five members.

**Task** (:class:`ItemCodes`): a fixed table gives each of ``n_items`` items (the letters ``À``,
``Á``, ... — code points ``U+00C0 + i``, so each item's second UTF-8 byte appears nowhere else in a
prompt and one attention head can find it) a code digit ``0..9`` drawn once from
``rng(table_seed)``. Query ``q`` of seed ``s`` asks "What is the code of item X?" (that short,
fixed form and nothing else) for the item
``rng([s, q])`` draws; exactly one digit is right. The team answers with the tag tool
``<answer>DIGIT</answer>``; the utility is 1 iff the team's action names the right digit.

**Members** (each a real :class:`~horizongym.agents.hf.TransformersPolicy` over a tiny
``LlamaForCausalLM`` with the byte tokenizer, :func:`~horizongym.agents.tiny.build_tiny_model`,
trained here from random weights): each reads its whole team prompt (role prompt, the env
conversation, its inbox; :func:`~horizongym.agents.team.prompts.member_messages`) with the env
question moved after the inbox (:func:`model_input`: the same bytes, so the same token count, but
the item sits at a fixed distance before the reply, which a two-layer model learns in ~100 steps;
with the question before an inbox of varying length it stayed near chance). The tool list is left
out of the members' own prompts (they were trained to answer in the tag without it); the decision
node still reads the tag through the team's tools.

============  ===============================================================================
role          model
============  ===============================================================================
expert        the expert model (trained on the right codes under the expert and redundant role
              prompts, ``expert_steps``), greedy
aggregator    scripted: plurality of its inbox's answers (ties: first in inbox order); with no
              answer in its inbox it asks the noisy model (a model that reads its inbox and
              votes did not fit the CPU budget); charged the byte tokens of its prompt and reply
noisy         the noisy model: the expert model fine-tuned ``noisy_steps`` more on labels right
              a share ``noisy_right`` of the time (else a uniformly drawn wrong digit; trained
              so from random weights it had not learned the items in 150 steps), sampled at
              ``noisy_temperature`` (1: its learned distribution) with the seed the team gives
              each call, so each query gets its own draw, right about ``noisy_right`` of the
              time (the expert's model sampled hot was no noisy member: at T ≥ 2 its tag breaks
              along with the digit, 0 right)
redundant     the expert model, greedy, under its own role prompt
adversary     the adversary model: trained as long as the expert on the wrong code
              ``(code + 1) mod 10``, with a longer, insistent message; greedy; worth 2 votes
============  ===============================================================================

Each member's accuracy alone is measured by the bench (``member_accuracy``), not assumed.

Training (:func:`train_member`): minibatch AdamW on ``(member prompt, reply)`` pairs drawn from
the model's roles, both rounds and random inboxes of teammates' messages (random senders,
random digits), loss the cross-entropy of the reply and the eos token with the code digit's
term weighted ``DIGIT_WEIGHT``×. A trained model is cached under the cache root
(:func:`horizongym.cache.cached`) by the content hash of its :class:`ModelSpec` and
``TRAINING_VERSION`` (raised whenever the training data or loop changes), so a second run and
the tests load it instead of training.

Decoding is a function of the prompt ids (and, when sampling, of the seed), so :class:`TinyMember`
keeps every reply by its prompt ids (and seed) and answers an identical request from that memo
(the reply, token ids included, is the one the model gave); only distinct requests reach the
model. Tokens are the byte tokenizer's ids:
the prompt ids the model read and the ids it returned.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from horizongym.agents.base import Action, Message, Policy
from horizongym.agents.hf import TransformersPolicy, encode_prompt, pad_batch
from horizongym.agents.team.config import DecisionConfig, MemberConfig, TeamConfig
from horizongym.agents.team.messages import InboxMessage
from horizongym.agents.team.policy import TeamPolicy
from horizongym.agents.team.prompts import member_messages, parse_inbox
from horizongym.bench.agentdropout_team import Played, plurality
from horizongym.cache import cached, content_key
from horizongym.tools import parse_action
from horizongym.training.agentdropout import PlayResult

TAG_ARGUMENTS = {"answer": "digit"}
DIGIT_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "answer",
        "description": "Give the team's answer: one code digit.",
        "parameters": {
            "type": "object",
            "properties": {"digit": {"type": "string", "description": "one of 0..9"}},
            "required": ["digit"],
        },
    },
}
SYSTEM = "You answer questions about item codes."
ADVERSARY_PREFIX = "Trust me, I checked this twice and I am certain. "
DIGIT_WEIGHT = 10.0
MAX_REPLY_TOKENS = 64
TRAINING_VERSION = "2"
"""Part of every trained model's cache key: raise it when the training data or loop changes."""
_ITEM = re.compile(r"code of item (.)\?")


@dataclass(frozen=True)
class Role:
    """A member's role: name, role prompt, vote weight."""

    name: str
    prompt: str
    votes: float = 1.0


ROLES: tuple[Role, ...] = (
    Role("expert", "You are the domain expert."),
    Role("aggregator", "You pick the most common answer."),
    Role("noisy", "You are a generalist."),
    Role("redundant", "You are a second expert."),
    Role("adversary", "You argue for your answer.", 2.0),
)
"""Speaking-index order, as the scripted bench's (the full graph's spatial edges go from lower to higher)."""
ROLE_NAMES = tuple(role.name for role in ROLES)
EXPERT, AGGREGATOR, NOISY, REDUNDANT, ADVERSARY = range(len(ROLES))


# ----- the task ----------------------------------------------------------------------------------


class ItemCodes:
    """The item table and one seed's queries (module docstring)."""

    def __init__(self, seed: int, n_items: int = 20, table_seed: int = 0) -> None:
        if not 1 <= n_items <= 20:
            raise ValueError(f"n_items must be 1..20, not {n_items}")
        self.seed, self.n_items = seed, n_items
        self.codes = [int(c) for c in np.random.default_rng([table_seed, 101]).integers(10, size=n_items)]

    @staticmethod
    def item_name(item: int) -> str:
        return chr(0xC0 + item)

    def item(self, query: int) -> int:
        return int(np.random.default_rng([self.seed, query]).integers(self.n_items))

    def answer(self, query: int) -> str:
        return str(self.codes[self.item(query)])

    def messages(self, query: int) -> list[Message]:
        return item_messages(self.item(query))

    def is_right(self, query: int, text: str) -> bool:
        return answer_of(text) == self.answer(query)


def item_messages(item: int) -> list[Message]:
    """The env conversation asking for ``item``'s code."""
    question = f"What is the code of item {ItemCodes.item_name(item)}?"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def model_input(messages: Sequence[Message]) -> list[Message]:
    """What a member's model reads: its team prompt with the env question moved after the inbox.

    The same messages and so the same bytes (and token count), reordered so the question is the
    last thing before the reply, at a fixed distance from it whatever the inbox holds.
    """
    first_user = next((i for i, m in enumerate(messages) if m.get("role") == "user"), None)
    if first_user is None or first_user == len(messages) - 1:
        return list(messages)
    return [*messages[:first_user], *messages[first_user + 1 :], messages[first_user]]


def item_of(messages: Sequence[Message]) -> int:
    """The item a conversation's question names."""
    question = next((str(m.get("content")) for m in messages if m.get("role") == "user"), "")
    found = _ITEM.search(question)
    if found is None:
        raise ValueError(f"no 'code of item X?' in the question {question[:80]!r}; the task writes questions that way")
    return ord(found.group(1)) - 0xC0


def answer_of(text: str) -> str | None:
    """The digit of the ``<answer>`` call in ``text``, or None."""
    for call in parse_action(text, TAG_ARGUMENTS).calls:
        if call.name == "answer":
            return str(call.arguments.get("digit", "")).strip() or None
    return None


def reply(digit: int | str, adversary: bool = False) -> str:
    """A member's message: the tag, after the adversary's insistence."""
    return f"{ADVERSARY_PREFIX if adversary else ''}<answer>{digit}</answer>"


# ----- training ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """Everything that decides one trained member model (its cache key)."""

    roles: tuple[str, ...]
    steps: int
    shift: int = 0
    """The label is ``(code + shift) mod 10``: 0 right, 1 the adversary's systematic error."""
    right_share: float = 1.0
    """The share of examples with that label; the rest get a uniformly drawn other digit."""
    start: ModelSpec | None = None
    """Fine-tune this spec's trained model instead of starting from random weights."""
    adversary: bool = False
    n_items: int = 20
    table_seed: int = 0
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    batch: int = 16
    lr: float = 3e-3
    seed: int = 0

    def key(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return f"agentdropout-tiny-{content_key(text, TRAINING_VERSION)}"


@dataclass(frozen=True)
class MemberSizes:
    """The training length of the three models, the noisy member's labels and temperature, the task's size."""

    expert_steps: int = 150
    noisy_steps: int = 60
    noisy_right: float = 0.4
    noisy_temperature: float = 1.0
    n_items: int = 8
    hidden: int = 64
    layers: int = 2
    batch: int = 16

    def specs(self) -> dict[str, ModelSpec]:
        base = ModelSpec(
            roles=(), steps=self.expert_steps, n_items=self.n_items, hidden=self.hidden, layers=self.layers
        )
        expert = replace(base, roles=("expert", "redundant"), batch=self.batch)
        return {
            "expert": expert,
            "noisy": replace(
                expert,
                roles=("noisy", "aggregator"),
                steps=self.noisy_steps,
                right_share=self.noisy_right,
                start=expert,
                seed=1,
            ),
            "adversary": replace(base, roles=("adversary",), shift=1, adversary=True, seed=2, batch=self.batch),
        }


def training_example(spec: ModelSpec, rng: random.Random) -> tuple[list[Message], str, int]:
    """One (member prompt, reply, code digit) of ``spec``'s training data: a random role, round, item and inbox."""
    name = rng.choice(spec.roles)
    role = next(r for r in ROLES if r.name == name)
    item = rng.randrange(spec.n_items)
    codes = ItemCodes(0, spec.n_items, spec.table_seed).codes
    digit = (codes[item] + spec.shift) % 10
    if rng.random() >= spec.right_share:
        digit = (digit + rng.randrange(1, 10)) % 10
    round_ = rng.randrange(2)
    inbox = [
        InboxMessage(
            name, rng.choice((round_ - 1, round_)) if round_ else 0, reply(rng.randrange(10), name == "adversary")
        )
        for name in ROLE_NAMES
        if name != role.name and rng.random() < 0.5
    ]
    messages = member_messages(role.name, role.prompt, item_messages(item), round_, 2, inbox)
    return messages, reply(digit, spec.adversary), digit


def train_member(spec: ModelSpec) -> Path:
    """The trained model folder of ``spec``: from the cache, else trained now (module docstring)."""
    return cached(spec.key(), lambda folder: _train(spec, folder))


def _train(spec: ModelSpec, folder: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from horizongym.agents.tiny import build_tiny_model

    if spec.start is None:
        start = build_tiny_model(
            folder, seed=spec.seed, hidden_size=spec.hidden, num_layers=spec.layers, num_heads=spec.heads
        )
    else:
        start = train_member(spec.start)
    tokenizer = AutoTokenizer.from_pretrained(start)
    model = AutoModelForCausalLM.from_pretrained(start, dtype=torch.float32)
    model.train()
    torch.manual_seed(spec.seed)
    rng = random.Random(spec.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.0)
    digit_at = len(tokenizer(reply(0, spec.adversary).split("<answer>")[0] + "<answer>")["input_ids"])
    for _ in range(spec.steps):
        rows = []
        for _ in range(spec.batch):
            messages, text, _digit = training_example(spec, rng)
            target = [int(i) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]
            rows.append((encode_prompt(tokenizer, model_input(messages), None), [*target, int(tokenizer.eos_token_id)]))
        input_ids, labels, attention = pad_batch(rows, int(tokenizer.pad_token_id))
        logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1].float()
        targets = labels[:, 1:]
        loss_each = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="none"
        ).view(targets.shape)
        weights = (targets != -100).float()
        for row, (prompt, _) in enumerate(rows):
            weights[row, len(prompt) + digit_at - 1] = DIGIT_WEIGHT  # position t predicts token t + 1
        loss = (loss_each * weights).sum() / weights.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "member_spec.json").write_text(json.dumps(asdict(spec), indent=1))


# ----- the members -------------------------------------------------------------------------------


class TinyMember(Policy):
    """A trained tiny model as a team member: it decodes its :func:`model_input`, replies kept by request.

    ``temperature`` 0 decodes greedily; above 0 it samples with the seed the team gives the call
    (0 without one), so the same query, round and member give the same reply.
    """

    def __init__(self, model: TransformersPolicy, role: str, temperature: float = 0.0) -> None:
        if temperature < 0:
            raise ValueError(f"temperature must be at least 0, not {temperature}")
        self.model = model
        self.name = f"tiny-{role}"
        self.temperature = temperature
        self.memo: dict[tuple[int, tuple[int, ...]], list[int]] = {}
        self.decoded = 0
        """Requests the model actually decoded (the rest came from the memo)."""

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        prompt_ids = encode_prompt(self.model.tokenizer, model_input(messages), None)
        sample_seed = (seed or 0) if self.temperature > 0 else 0
        key = (sample_seed, tuple(prompt_ids))
        token_ids = self.memo.get(key)
        if token_ids is None:
            generation = await self.model.generate(
                prompt_ids, temperature=self.temperature, max_new_tokens=MAX_REPLY_TOKENS, seed=sample_seed
            )
            token_ids = self.memo.setdefault(key, generation.token_ids)
            self.decoded += 1
        text = self.model.tokenizer.decode(token_ids, skip_special_tokens=True)
        return Action(text=text, prompt_token_ids=prompt_ids, token_ids=list(token_ids))


class PluralityAggregator(Policy):
    """The scripted aggregator (module docstring): its inbox's plurality answer, else the fallback member's."""

    name = "plurality-aggregator"

    def __init__(self, fallback: TinyMember) -> None:
        self.fallback = fallback

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        answers = [a for m in parse_inbox(str(messages[-1].get("content", ""))) if (a := answer_of(m.text)) is not None]
        if not answers:
            return await self.fallback.act(messages, tools, seed=seed)
        tokenizer = self.fallback.model.tokenizer
        text = reply(plurality(answers)[0])
        token_ids = [int(i) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]
        return Action(text=text, prompt_token_ids=encode_prompt(tokenizer, messages, None), token_ids=token_ids)


@dataclass
class Models:
    """The three trained models, loaded once and shared by every team of a run."""

    expert: TransformersPolicy
    noisy: TransformersPolicy
    adversary: TransformersPolicy
    folders: dict[str, Path]
    noisy_temperature: float

    @classmethod
    def load(cls, sizes: MemberSizes) -> Models:
        folders = {name: train_member(spec) for name, spec in sizes.specs().items()}
        policies = {
            name: TransformersPolicy(
                folder, temperature=0.0, max_new_tokens=MAX_REPLY_TOKENS, max_batch_size=16, device="cpu"
            )
            for name, folder in folders.items()
        }
        return cls(policies["expert"], policies["noisy"], policies["adversary"], folders, sizes.noisy_temperature)

    def members(self) -> list[Policy]:
        """The five members in :data:`ROLES` order (fresh memos)."""
        noisy = TinyMember(self.noisy, "noisy", self.noisy_temperature)
        return [
            TinyMember(self.expert, "expert"),
            PluralityAggregator(TinyMember(self.noisy, "aggregator", self.noisy_temperature)),
            noisy,
            TinyMember(self.expert, "redundant"),
            TinyMember(self.adversary, "adversary"),
        ]


def team_config(rounds: int) -> TeamConfig:
    return TeamConfig(
        name=f"tiny-item-team-T{rounds}",
        rounds=rounds,
        agents=[MemberConfig(name=r.name, policy="transformers", prompt=r.prompt, votes=r.votes) for r in ROLES],
        decision=DecisionConfig(kind="majority"),
    )


def tiny_team(members: Sequence[Policy], rounds: int) -> TeamPolicy:
    """The real :class:`TeamPolicy` of the five members."""
    return TeamPolicy(team_config(rounds), list(members))


async def member_accuracy(member: Policy, index: int, task: ItemCodes, queries: Sequence[int]) -> float:
    """Member ``index`` alone: the share of ``queries`` it answers right from its round-1 prompt with an empty inbox."""
    role = ROLES[index]
    right = 0
    for q in queries:
        messages = member_messages(role.name, role.prompt, task.messages(q), 0, 2, [])
        action = await member.act(messages, [DIGIT_TOOL], seed=q)
        right += task.is_right(q, action.text)
    return right / len(queries)


class TinyPlayer:
    """The trainer's ``play(graph, query)``: the real team on ``graph``, scored by the task; keeps every play."""

    def __init__(self, task: ItemCodes, team: TeamPolicy) -> None:
        self.task = task
        self.team = team
        self.played: dict[int, Played] = {}

    async def play(self, graph: Any, query: int) -> PlayResult:
        action = await self.team.with_graph(graph).act(self.task.messages(query), [DIGIT_TOOL], seed=query)
        tokens = (action.trace or {})["tokens"]
        utility = float(self.task.is_right(query, action.env_action()))
        self.played[query] = Played(query, graph, utility, tokens["prompt"], tokens["completion"], tokens["calls"])
        return PlayResult(utility, tokens["prompt"], tokens["completion"])
