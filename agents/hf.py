"""A local transformers model as a policy, with batched generation and token-in/token-out.

:class:`TransformersPolicy` renders the conversation with the tokenizer's chat template
(tools included), and generates with its own small decoding loop so that the returned
token ids are exactly the sampled ones and each token's log-probability is known:

* Concurrent :meth:`~TransformersPolicy.act` calls are queued; a background asyncio task
  takes up to ``max_batch_size`` of them at a time, left-pads them into one batch and runs
  the decoding loop in a worker thread, so the event loop stays free while the model works.
* ``Action.text`` is the raw completion (special tokens stripped) and ``Action.tool_calls``
  stays empty: the environment reads ``<tool_call>`` blocks from the text itself, so calls
  are never counted twice.
* ``Action.logprobs[i]`` is ``log softmax(logits / T)[token_ids[i]]``: the log-probability of
  the token under the model's distribution at the sampling temperature ``T`` (``T = 1`` for
  greedy decoding), before any top-p truncation, which is what a trainer recomputes.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from horizongym.agents.base import Action, ContextLengthExceeded, Message, Policy, PolicyError
from horizongym.agents.tool_prompt import fold_tools, template_takes_tools, template_tool_style
from horizongym.agents.turn_ids import TurnIds

CHATML_TOOLS_TEMPLATE = """\
{%- macro render_content(content) -%}
{%- if content is none -%}
{%- elif content is string -%}{{ content }}
{%- else -%}
{%- for part in content -%}{%- if part.type == 'text' -%}{{ part.text }}{%- endif -%}{%- endfor -%}
{%- endif -%}
{%- endmacro -%}
{%- set first_is_system = messages and messages[0].role in ['system', 'developer'] -%}
{%- if tools -%}
<|im_start|>system
{% if first_is_system %}{{ render_content(messages[0].content) }}\
{% else %}You are a helpful assistant.{% endif %}


# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}
</tools>

For each function call, return a json object with function name and arguments within \
<tool_call></tool_call> XML tags:
<tool_call>{"name": <function-name>, "arguments": <args-json-object>}</tool_call><|im_end|>
{% elif first_is_system -%}
<|im_start|>system
{{ render_content(messages[0].content) }}<|im_end|>
{% endif -%}
{%- for message in messages -%}
{%- if loop.first and first_is_system -%}
{%- elif message.role == 'tool' -%}
{%- if loop.first or messages[loop.index0 - 1].role != 'tool' -%}<|im_start|>user{%- endif %}

<tool_response>
{{ render_content(message.content) }}
</tool_response>
{%- if loop.last or messages[loop.index0 + 1].role != 'tool' -%}<|im_end|>
{% endif -%}
{%- elif message.role == 'assistant' -%}
<|im_start|>assistant
{{ render_content(message.content) }}
{%- if message.tool_calls -%}
{%- for call in message.tool_calls -%}
{%- set function = call.function if call.function is defined else call -%}
{%- if loop.first and not render_content(message.content) -%}{%- else %}

{% endif -%}
<tool_call>{"name": {{ function.name | tojson }}, "arguments": \
{% if function.arguments is string %}{{ function.arguments }}\
{% else %}{{ function.arguments | tojson }}{% endif %}\
}</tool_call>
{%- endfor -%}
{%- endif -%}
<|im_end|>
{% else -%}
<|im_start|>{{ 'system' if message.role == 'developer' else message.role }}
{{ render_content(message.content) }}<|im_end|>
{% endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% endif -%}
"""
"""A ChatML template that offers tools the way Qwen2.5 / Hermes models expect them.

Tools are listed as JSON inside ``<tools></tools>`` in the system turn; assistant tool calls
are rendered as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks and
``role: tool`` messages as ``<tool_response>`` blocks inside a user turn. Used by the tiny
test models and as the fallback for a tokenizer that has no chat template.
"""


BASE_ADAPTER = "__base__"
"""The adapter name that makes a row of a ``peft`` model's batch use the base weights alone."""


def normalize_messages(messages: list[Message]) -> list[Message]:
    """OpenAI messages made safe for any chat template: text content as one string, never ``None``."""
    normalized: list[Message] = []
    for message in messages:
        item = dict(message)
        content = item.get("content")
        if content is None:
            item["content"] = ""
        elif isinstance(content, list):
            item["content"] = "".join(
                str(part.get("text", "")) for part in content if isinstance(part, dict) and part.get("type") == "text"
            )
        elif not isinstance(content, str):
            item["content"] = str(content)
        normalized.append(item)
    return normalized


def render_prompt(
    tokenizer: Any,
    messages: list[Message],
    tools: list[dict[str, Any]] | None,
    *,
    add_generation_prompt: bool = True,
) -> str:
    """The prompt text for ``messages``: the tokenizer's chat template, or ChatML with tools.

    A chat template that knows no tools (SmolLM2's) gets them folded into the messages
    (:func:`~horizongym.agents.tool_prompt.fold_tools`): the tool list in the system turn, calls as
    ``<tool_call>`` blocks in the assistant's text, results as ``<tool_response>`` user turns, in
    the style the model was trained on (:func:`~horizongym.agents.tool_prompt.template_tool_style`).
    """
    own = getattr(tokenizer, "chat_template", None)
    template = None if own else CHATML_TOOLS_TEMPLATE
    messages = normalize_messages(messages)
    if own and not template_takes_tools(own):
        messages, tools = fold_tools(messages, tools, template_tool_style(own)), None
    text = tokenizer.apply_chat_template(
        messages,
        tools=tools or None,
        add_generation_prompt=add_generation_prompt,
        tokenize=False,
        chat_template=template,
    )
    if not isinstance(text, str):
        raise PolicyError(f"the chat template returned {type(text).__name__}, expected text")
    return text


def pad_batch(rows: list[tuple[list[int], list[int]]], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ``(prompt + target)`` input ids, labels (-100 outside the targets) and attention mask."""
    width = max(len(prompt) + len(target) for prompt, target in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (prompt, target) in enumerate(rows):
        sequence = prompt + target
        input_ids[row, : len(sequence)] = torch.tensor(sequence)
        labels[row, len(prompt) : len(sequence)] = torch.tensor(target)
        attention[row, : len(sequence)] = 1
    return input_ids, labels, attention


def encode_prompt(tokenizer: Any, messages: list[Message], tools: list[dict[str, Any]] | None) -> list[int]:
    """The prompt token ids for ``messages`` (the chat template already holds any special tokens)."""
    ids = tokenizer(render_prompt(tokenizer, messages, tools), add_special_tokens=False)["input_ids"]
    return [int(i) for i in ids]


@dataclass(frozen=True)
class Generation:
    """One completion: the ids sampled, their log-probs, and why decoding stopped."""

    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str


@dataclass
class _Request:
    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int
    future: asyncio.Future[Generation] = field(repr=False)
    adapter: str | None = None


class TransformersPolicy(Policy):
    """A causal LM from transformers that answers with raw text, token ids and log-probs.

    Args:
        model: a model directory (``save_pretrained`` output or a hub-style local folder), or a
            loaded ``PreTrainedModel`` (then ``tokenizer`` is required).
        tokenizer: the tokenizer, when ``model`` is an object; loaded from the folder otherwise.
        max_new_tokens: default completion length limit.
        temperature: default sampling temperature; ``0`` decodes greedily.
        top_p: default nucleus-sampling mass.
        max_batch_size: most requests decoded together.
        batch_wait_s: how long the batcher waits for more requests after the first one arrives.
        device: torch device (default: CUDA when available, else CPU).
        dtype: weights' dtype when loading from a folder (default: float32 on CPU, the
            checkpoint's dtype on CUDA).
        seed: seeds the per-request seeds drawn when ``act`` gets none.
        gguf_file: the name of a GGUF file inside the folder ``model`` (its weights are
            dequantized; the tokenizer and chat template come from the file's metadata).
    """

    name = "transformers"

    def __init__(
        self,
        model: str | Path | Any,
        tokenizer: Any | None = None,
        *,
        max_new_tokens: int = 512,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_batch_size: int = 8,
        batch_wait_s: float = 0.002,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        seed: int | None = None,
        gguf_file: str | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        _check_sampling(max_new_tokens, temperature, top_p)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if isinstance(model, str | Path):
            self.model_path: Path | None = Path(model)
            self.model, self.tokenizer = self._load(self.model_path, tokenizer, dtype, gguf_file)
        else:
            if tokenizer is None:
                raise ValueError("pass the tokenizer together with a model object")
            self.model_path = None
            self.model, self.tokenizer = model, tokenizer
            self.model.to(self.device)
        self.model.eval()
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.max_batch_size, self.batch_wait_s = max_batch_size, batch_wait_s
        self.eos_token_ids = self._eos_ids()
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = int(pad if pad is not None else min(self.eos_token_ids, default=0))
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 0) or 1 << 30)
        self.batch_size_counts: Counter[int] = Counter()
        """How many batches of each size were decoded (for tests and monitoring)."""
        self._seeds = random.Random(seed)
        self._queue: asyncio.Queue[_Request] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._model_lock = threading.Lock()
        self.gguf_file = gguf_file
        self.turns = TurnIds()
        """The ids of the turns sampled so far, so a next prompt extends them instead of re-tokenizing."""

    # ----- loading -------------------------------------------------------------------
    def _load(
        self, path: Path, tokenizer: Any | None, dtype: str | torch.dtype | None, gguf_file: str | None
    ) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not path.is_dir():
            raise PolicyError(f"no model directory at {path}")
        if gguf_file is not None:
            if not (path / gguf_file).is_file():
                raise PolicyError(f"no GGUF file {gguf_file!r} in {path}")
            if importlib.util.find_spec("gguf") is None:
                raise PolicyError("loading a GGUF file needs the gguf package: pip install gguf")
            dtype = dtype or torch.float32  # dequantized weights; 'auto' would keep no dtype
        if dtype is None:
            dtype = torch.float32 if self.device.type == "cpu" else "auto"
        extra = {"gguf_file": gguf_file} if gguf_file is not None else {}
        try:
            model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **extra)
            tok = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(path, **extra)
        except (OSError, ValueError) as exc:
            raise PolicyError(f"cannot load a model from {path}: {exc}") from exc
        return model.to(self.device), tok

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for value in (
            getattr(self.model.generation_config, "eos_token_id", None),
            self.tokenizer.eos_token_id,
        ):
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, list | tuple):
                ids.update(int(v) for v in value)
        return ids

    # ----- the policy API -------------------------------------------------------------
    def encode(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> list[int]:
        """The prompt token ids this policy would generate from.

        When the conversation continues a turn this policy sampled (its last assistant message is
        that turn's reply), the ids are that turn's prompt and sampled ids exactly, then the new
        messages' text tokenized: never a re-tokenization of text the model produced
        (:class:`~horizongym.agents.turn_ids.TurnIds`).
        """
        text = render_prompt(self.tokenizer, messages, tools)
        extended = self.turns.extend(self.tokenizer, messages, tools, text)
        if extended is not None:
            return extended
        return [int(i) for i in self.tokenizer(text, add_special_tokens=False)["input_ids"]]

    def remember(
        self, messages: list[Message], tools: list[dict[str, Any]] | None, prompt_ids: list[int], token_ids: list[int]
    ) -> None:
        """Record a sampled turn, so the prompt of the conversation's next turn extends its ids."""
        self.turns.record(messages, tools, prompt_ids + token_ids)

    async def act(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]],
        *,
        seed: int | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
    ) -> Action:
        """Generate the next assistant turn; sampling settings override the policy's defaults."""
        prompt_ids = self.encode(messages, tools)
        generation = await self.generate(
            prompt_ids, seed=seed, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p
        )
        text = self.tokenizer.decode(generation.token_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        self.remember(messages, tools, prompt_ids, generation.token_ids)
        return Action(
            text=text,
            prompt_token_ids=prompt_ids,
            token_ids=generation.token_ids,
            logprobs=generation.logprobs,
            finish_reason=generation.finish_reason,
        )

    async def generate(
        self,
        prompt_ids: list[int],
        *,
        seed: int | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        adapter: str | None = None,
    ) -> Generation:
        """Token in, token out: queue ``prompt_ids`` for the next batch and await its completion.

        ``adapter`` names the ``peft`` LoRA adapter this request decodes with (:data:`BASE_ADAPTER`:
        the base weights alone); requests of one batch may name different adapters (peft's
        mixed-batch inference). ``None``: the model as it is, active adapters included.
        """
        max_new = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        temp = self.temperature if temperature is None else temperature
        nucleus = self.top_p if top_p is None else top_p
        _check_sampling(max_new, temp, nucleus)
        if not prompt_ids:
            raise PolicyError("the prompt is empty")
        room = self.context_length - len(prompt_ids)
        if room < 1:
            raise ContextLengthExceeded(
                f"the prompt has {len(prompt_ids)} tokens; the model's context holds {self.context_length}"
            )
        loop = asyncio.get_running_loop()
        queue = self._ensure_worker(loop)
        request = _Request(
            prompt_ids=list(prompt_ids),
            max_new_tokens=min(max_new, room),
            temperature=temp,
            top_p=nucleus,
            seed=self._seeds.getrandbits(63) if seed is None else seed,
            future=loop.create_future(),
            adapter=adapter,
        )
        await queue.put(request)
        return await request.future

    async def aclose(self) -> None:
        """Stop the batching task (pending requests fail). Safe to call twice."""
        worker, loop = self._worker, self._loop
        self._worker, self._queue, self._loop = None, None, None
        if worker is None or worker.done() or loop is None or loop.is_closed():
            return
        if loop is not asyncio.get_running_loop():  # the batcher lives in another thread's loop
            loop.call_soon_threadsafe(worker.cancel)
            return
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker

    @property
    def model_lock(self) -> threading.Lock:
        """Held while a batch decodes: hold it to change the model (load or drop adapters) between batches."""
        return self._model_lock

    # ----- batching --------------------------------------------------------------------
    def _ensure_worker(self, loop: asyncio.AbstractEventLoop) -> asyncio.Queue[_Request]:
        """Start the batcher in the running loop (again, if an earlier loop has closed)."""
        if self._queue is None or self._loop is not loop or self._worker is None or self._worker.done():
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._batch_loop(self._queue), name="transformers-policy-batcher")
        return self._queue

    async def _batch_loop(self, queue: asyncio.Queue[_Request]) -> None:
        batch: list[_Request] = []
        try:
            while True:
                batch = [await queue.get()]
                if self.batch_wait_s > 0 and queue.qsize() < self.max_batch_size - 1:
                    await asyncio.sleep(self.batch_wait_s)  # let concurrent callers join this batch
                while len(batch) < self.max_batch_size and not queue.empty():
                    batch.append(queue.get_nowait())
                batch = [r for r in batch if not r.future.done()]
                if not batch:
                    continue
                self.batch_size_counts[len(batch)] += 1
                try:
                    results = await asyncio.to_thread(self._generate_batch, batch)
                except Exception as exc:
                    error = exc if isinstance(exc, PolicyError) else PolicyError(f"generation failed: {exc!r}")
                    for request in batch:
                        if not request.future.done():
                            request.future.set_exception(error)
                else:
                    for request, result in zip(batch, results, strict=True):
                        if request.future.done():
                            continue
                        if isinstance(result, Exception):
                            request.future.set_exception(result)
                        else:
                            request.future.set_result(result)
                batch = []
        finally:
            pending = batch + [queue.get_nowait() for _ in range(queue.qsize())]
            for request in pending:
                if not request.future.done():
                    request.future.set_exception(PolicyError("the policy was closed"))

    # ----- decoding --------------------------------------------------------------------
    def _generate_batch(self, batch: list[_Request]) -> list[Generation | PolicyError]:
        """Decode a left-padded batch with a KV cache; each row keeps its own settings and RNG.

        A request naming an adapter the model no longer holds (unloaded while it waited) gets a
        :class:`PolicyError`; the others decode."""
        with self._model_lock, torch.inference_mode():
            held = getattr(self.model, "peft_config", None)
            results: dict[int, Generation | PolicyError] = {}
            for index, request in enumerate(batch):
                if request.adapter == BASE_ADAPTER and held is None:
                    request.adapter = None  # the plain model is the base
                elif request.adapter not in (None, BASE_ADAPTER) and (held is None or request.adapter not in held):
                    results[index] = PolicyError(f"the adapter {request.adapter!r} is not loaded")
            ready = [index for index in range(len(batch)) if index not in results]
            if ready:
                results.update(zip(ready, self._decode([batch[i] for i in ready]), strict=True))
            return [results[index] for index in range(len(batch))]

    def _decode(self, batch: list[_Request]) -> list[Generation]:
        from transformers import DynamicCache

        device, size = self.device, len(batch)
        width = max(len(r.prompt_ids) for r in batch)
        input_ids = torch.full((size, width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((size, width), dtype=torch.long)
        for row, request in enumerate(batch):
            input_ids[row, width - len(request.prompt_ids) :] = torch.tensor(request.prompt_ids)
            attention[row, width - len(request.prompt_ids) :] = 1
        input_ids, attention = input_ids.to(device), attention.to(device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        temperatures = torch.tensor([r.temperature if r.temperature > 0 else 1.0 for r in batch], device=device)
        greedy = [r.temperature == 0 for r in batch]
        generators = [torch.Generator(device=device).manual_seed(r.seed) for r in batch]
        eos = torch.tensor(sorted(self.eos_token_ids), dtype=torch.long, device=device)
        # peft's mixed-batch inference: each row through its own adapter (or the base weights)
        adapters = (
            {"adapter_names": [r.adapter or BASE_ADAPTER for r in batch]} if any(r.adapter for r in batch) else {}
        )

        tokens: list[list[int]] = [[] for _ in batch]
        logprobs: list[list[float]] = [[] for _ in batch]
        reasons: list[str | None] = [None] * size
        cache = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
            **adapters,
        )
        next_positions = positions[:, -1:] + 1
        for _ in range(max(r.max_new_tokens for r in batch)):  # every row stops by its own limit
            logits = out.logits[:, -1, :].float() / temperatures[:, None]
            log_probs = torch.log_softmax(logits, dim=-1)
            chosen = self._choose(log_probs, batch, greedy, generators)
            chosen_logprobs = log_probs.gather(1, chosen[:, None]).squeeze(1)
            is_eos = torch.isin(chosen, eos).tolist() if len(eos) else [False] * size
            chosen_list, chosen_lp = chosen.tolist(), chosen_logprobs.tolist()
            for row, request in enumerate(batch):
                if reasons[row] is not None:
                    continue
                tokens[row].append(chosen_list[row])
                logprobs[row].append(chosen_lp[row])
                if is_eos[row]:
                    reasons[row] = "stop"
                elif len(tokens[row]) >= request.max_new_tokens:
                    reasons[row] = "length"
            if all(reason is not None for reason in reasons):
                break
            feed = torch.tensor(
                [chosen_list[row] if reasons[row] is None else self.pad_token_id for row in range(size)],
                dtype=torch.long,
                device=device,
            )
            attention = torch.cat([attention, torch.ones((size, 1), dtype=attention.dtype, device=device)], dim=1)
            out = self.model(
                input_ids=feed[:, None],
                attention_mask=attention,
                position_ids=next_positions,
                past_key_values=cache,
                use_cache=True,
                **adapters,
            )
            next_positions = next_positions + 1
        return [
            Generation(token_ids=tokens[row], logprobs=logprobs[row], finish_reason=reasons[row] or "length")
            for row in range(size)
        ]

    @staticmethod
    def _choose(
        log_probs: torch.Tensor, batch: list[_Request], greedy: list[bool], generators: list[torch.Generator]
    ) -> torch.Tensor:
        """Pick each row's next token: argmax for greedy rows, else top-p sampling with its own RNG."""
        chosen = log_probs.argmax(dim=-1)
        for row, request in enumerate(batch):
            if greedy[row]:
                continue
            probs = log_probs[row].exp()
            if request.top_p < 1.0:
                sorted_probs, order = probs.sort(descending=True)
                before = sorted_probs.cumsum(0) - sorted_probs
                sorted_probs = sorted_probs.masked_fill(before >= request.top_p, 0.0)
                probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
            chosen[row] = torch.multinomial(probs, 1, generator=generators[row])[0]
        return chosen

    def __repr__(self) -> str:
        where = str(self.model_path) if self.model_path else type(self.model).__name__
        return f"TransformersPolicy({where!r}, max_batch_size={self.max_batch_size})"


def _check_sampling(max_new_tokens: int, temperature: float, top_p: float) -> None:
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be at least 1")
    if temperature < 0:
        raise ValueError("temperature must be >= 0 (0 decodes greedily)")
    if not 0 < top_p <= 1:
        raise ValueError("top_p must be in (0, 1]")
