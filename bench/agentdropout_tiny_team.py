"""The AgentDropout bench's team with tiny transformers members: a generated item-code task and five members.

**Task** (:class:`ItemCodes`): a fixed table gives each of ``n_items`` items (the letters ``À``,
``Á``, ... — code points ``U+00C0 + i``, so each item's second UTF-8 byte appears nowhere else in a
prompt and one attention head can find it) a code digit ``0..9`` drawn once from
``rng(table_seed)``. Query ``q`` of seed ``s`` asks "What is the code of item X?" for the item
``rng([s, q])`` draws; exactly one digit is right. The team answers with the tag tool
``<answer>DIGIT</answer>``; the utility is 1 iff the team's action names the right digit.

**Members** (each a real :class:`~horizongym.agents.hf.TransformersPolicy` over a tiny
``LlamaForCausalLM`` with the byte tokenizer, :func:`~horizongym.agents.tiny.build_tiny_model`,
trained here from random weights): each reads its whole team prompt (role prompt, the env
conversation, its inbox; :func:`~horizongym.agents.team.prompts.member_messages`) and decodes
greedily. The tool list is left out of the members' own prompts (they were trained to answer in
the tag without it); the decision node still reads the tag through the team's tools.

============  ===============================================================================
role          model
============  ===============================================================================
expert        trained longest on the right codes (``expert_steps``)
aggregator    scripted: plurality of its inbox's answers (ties: first in inbox order); with no
              answer in its inbox it asks the noisy model (a model that reads its inbox and
              votes did not fit the CPU budget); charged the byte tokens of its prompt and reply
noisy         the same training, stopped early (``noisy_steps``)
redundant     the expert's weights under its own role prompt (trained on both role prompts)
adversary     trained as long as the expert on the wrong code ``(code + 1) mod 10``, with a
              longer, insistent message; worth 2 votes in the decision
============  ===============================================================================

Training (:func:`train_member`): minibatch AdamW on ``(member prompt, reply)`` pairs drawn from
the member's roles, both rounds and random inboxes of teammates' messages (random senders,
random digits), loss the cross-entropy of the reply and the eos token with the code digit's
term weighted ``DIGIT_WEIGHT``×. A trained model is cached under the cache root
(:func:`horizongym.cache.cached`) by the content hash of its :class:`ModelSpec` and
``TRAINING_VERSION`` (raised whenever the training data or loop changes), so a second run and
the tests load it instead of training.

Greedy decoding is a function of the prompt ids, so :class:`TinyMember` keeps every reply by its
prompt ids and answers an identical prompt from that memo (the reply, token ids included, is the
one the model gave); only distinct prompts reach the model. Tokens are the byte tokenizer's ids:
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
TRAINING_VERSION = "1"
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
    question = f"What is the code of item {ItemCodes.item_name(item)}? Reply with <answer>DIGIT</answer>."
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


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
    adversary: bool = False
    n_items: int = 20
    table_seed: int = 0
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    batch: int = 16
    lr: float = 1e-2
    seed: int = 0

    def key(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return f"agentdropout-tiny-{content_key(text, TRAINING_VERSION)}"


@dataclass(frozen=True)
class MemberSizes:
    """The training lengths of the three models and the task's size."""

    expert_steps: int = 200
    noisy_steps: int = 40
    n_items: int = 8
    hidden: int = 64
    layers: int = 2

    def specs(self) -> dict[str, ModelSpec]:
        base = ModelSpec(roles=(), steps=0, n_items=self.n_items, hidden=self.hidden, layers=self.layers)
        return {
            "expert": replace(base, roles=("expert", "redundant"), steps=self.expert_steps),
            "noisy": replace(base, roles=("noisy", "aggregator"), steps=self.noisy_steps, seed=1),
            "adversary": replace(base, roles=("adversary",), steps=self.expert_steps, shift=1, adversary=True, seed=2),
        }


def training_example(spec: ModelSpec, rng: random.Random) -> tuple[list[Message], str, int]:
    """One (member prompt, reply, code digit) of ``spec``'s training data: a random role, round, item and inbox."""
    name = rng.choice(spec.roles)
    role = next(r for r in ROLES if r.name == name)
    item = rng.randrange(spec.n_items)
    codes = ItemCodes(0, spec.n_items, spec.table_seed).codes
    digit = (codes[item] + spec.shift) % 10
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

    build_tiny_model(folder, seed=spec.seed, hidden_size=spec.hidden, num_layers=spec.layers, num_heads=spec.heads)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
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
            rows.append((encode_prompt(tokenizer, messages, None), [*target, int(tokenizer.eos_token_id)]))
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
    (folder / "member_spec.json").write_text(json.dumps(asdict(spec), indent=1))


# ----- the members -------------------------------------------------------------------------------


class TinyMember(Policy):
    """A trained tiny model as a team member: greedy decoding of its team prompt, replies kept by prompt ids."""

    def __init__(self, model: TransformersPolicy, role: str) -> None:
        self.model = model
        self.name = f"tiny-{role}"
        self.memo: dict[tuple[int, ...], list[int]] = {}
        self.decoded = 0
        """Prompts the model actually decoded (the rest came from the memo)."""

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        prompt_ids = encode_prompt(self.model.tokenizer, messages, None)
        key = tuple(prompt_ids)
        token_ids = self.memo.get(key)
        if token_ids is None:
            generation = await self.model.generate(prompt_ids, temperature=0.0, max_new_tokens=64, seed=0)
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

    @classmethod
    def load(cls, sizes: MemberSizes) -> Models:
        folders = {name: train_member(spec) for name, spec in sizes.specs().items()}
        policies = {
            name: TransformersPolicy(folder, temperature=0.0, max_new_tokens=64, max_batch_size=16, device="cpu")
            for name, folder in folders.items()
        }
        return cls(policies["expert"], policies["noisy"], policies["adversary"], folders)

    def members(self) -> list[Policy]:
        """The five members in :data:`ROLES` order (fresh memos)."""
        noisy = TinyMember(self.noisy, "noisy")
        return [
            TinyMember(self.expert, "expert"),
            PluralityAggregator(TinyMember(self.noisy, "aggregator")),
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
        action = await member.act(member_messages(role.name, role.prompt, task.messages(q), 0, 2, []), [DIGIT_TOOL])
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
