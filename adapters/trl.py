"""horizongym envs inside TRL's ``GRPOTrainer``: an ``environment_factory`` and a ``rollout_func``.

Both read TRL 1.16's contracts (``trl/trainer/grpo_trainer.py``):

**environment_factory.** ``GRPOTrainer(environment_factory=F)`` calls ``F()`` once to probe the
class, then once per rollout slot of a batch (instances are pooled and reset between batches).
Every public function of the instance's class other than ``reset`` and ``get_reward`` is a tool:
its signature and Google-style docstring give the schema the chat template shows. Before each
rollout TRL calls ``reset(**row)`` with the dataset row's columns and appends the returned text
to the row's last user message; a tool call ``name(**arguments)`` returns the text of the
``tool`` message; ``get_reward()`` is called once per finished rollout and logged under the
class's name. :func:`environment_factory` builds that class from the env's
:class:`~horizongym.tools.ToolSet`: one keyword-only method per tool, typed by the tool's
pydantic argument model, so TRL derives the schema the env itself declares. Each call steps the
horizongym env with that one call (a Hermes block, :func:`~horizongym.tools.render_tool_calls`),
so rewards, turn limits and the end of the episode count as in the rollout engine;
``get_reward`` is the episode's summed reward. A call TRL makes after the episode ended raises,
and TRL shows the model the error.

**rollout_func.** ``GRPOTrainer(rollout_func=R)`` calls ``R(prompts, trainer)`` with the batch's
prompts (each dataset row repeated ``num_generations`` times, one group after the other) and
takes back ``prompt_ids``, ``completion_ids`` and ``logprobs``; ``env_mask`` (1 for the model's
tokens, 0 for the env's) masks the loss, and the other fields go to the reward functions as
keyword arguments. :func:`make_rollout_func` plays every prompt's episode with the rollout
engine, the trainer's model acting through :class:`~horizongym.adapters.token_chain.TokenChainPolicy`,
and returns one sequence per episode: the first prompt, then each turn's sampled tokens with the
env's answer between them. The reward goes back as ``env_reward``; pass :func:`env_reward` as the
reward function. Episodes that failed for reasons outside the policy (``env_error``,
``infra_error``, after the engine's retries) get ``None``, which TRL leaves out of the group's
baseline, never a zero reward.

The task of a rollout is the env's task for a seed. :func:`task_dataset` makes the train dataset:
each row carries its seed as the ``seed`` column (what ``reset`` reads) and on its prompt message
(``TASK_SEED``, what ``rollout_func`` reads: TRL hands it the prompts only), so the
``num_generations`` rollouts of a group play the same task.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import itertools
import keyword
import re
import weakref
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple, TypeVar

import gymnasium as gym
import pydantic
from pydantic_core import PydanticUndefined

from horizongym.adapters.token_chain import TokenChainPolicy
from horizongym.agents.hf import CHATML_TOOLS_TEMPLATE, TransformersPolicy
from horizongym.tools import Tool, ToolCall, ToolSet, render_tool_calls
from horizongym.training.rollouts import EnvRecipe, Episode, EpisodeStore, RolloutEngine, RolloutError

TASK_SEED: Final = "task_seed"
"""The key of a prompt message that names the task's seed (read by the rollout function)."""
RESERVED: Final = frozenset({"reset", "get_reward"})
"""Method names TRL reads as the environment's own, never as tools."""
_T = TypeVar("_T")


# ----- environment_factory -----------------------------------------------------------------------
@dataclass(frozen=True)
class ToolStep:
    """One tool call TRL made through the adapter, and what the env answered."""

    name: str
    arguments: dict[str, Any]
    observation: str
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]


class EpisodeEnded(RuntimeError):
    """A tool was called after the episode ended; TRL shows the model this error."""


class TRLEnvironment:
    """One horizongym env as a TRL environment: ``reset``, ``get_reward`` and one method per tool.

    Subclasses with the tool methods are made by :func:`environment_factory`; this class holds
    what they share. Attributes (not functions, so TRL does not take them for tools): ``env``,
    ``episode_reward`` (the summed reward of this episode), ``steps`` (:class:`ToolStep` per
    call), ``done`` and ``reset_info``.
    """

    env_id: str = ""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        self.env = env
        self.episode_reward = 0.0
        self.steps: list[ToolStep] = []
        self.done = False
        self.reset_info: dict[str, Any] = {}
        self._started = False
        # TRL never closes its environments: the env (and its sandbox) closes when this instance goes
        self._closer = weakref.finalize(self, _close_quietly, env)

    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None, **_row: Any) -> str:
        """Start an episode; return its first observation (TRL appends it to the prompt).

        ``seed`` picks the task (the same seed, the same task); ``options`` go to the env's
        ``reset``. The row's other columns (``prompt``...) are not the env's business. Without a
        seed the env draws the next task from its own generator, so the rollouts of one GRPO
        group play different tasks: make the dataset with :func:`task_dataset`.
        """
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"the row's seed must be a whole number of at least 0, got {seed!r}")
        if options is not None and not isinstance(options, Mapping):
            raise ValueError(f"the row's options must be a mapping, got {type(options).__name__}")
        observation, info = self.env.reset(seed=seed, options=dict(options) if options else None)
        self.episode_reward, self.steps, self.done, self.reset_info = 0.0, [], False, info
        self._started = True
        return str(observation)

    def get_reward(self) -> float:
        """The episode's reward so far: the sum of its steps' rewards (as the rollout engine counts it)."""
        return self.episode_reward

    def _call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        """Step the env with the one call ``name(**arguments)``; return the observation."""
        if not self._started:
            raise EpisodeEnded("no episode has started: reset() comes first")
        if self.done:
            raise EpisodeEnded(f"the episode has ended; the call to '{name}' was not run")
        action = render_tool_calls([ToolCall(name=name, arguments=arguments)])
        observation, reward, terminated, truncated, info = self.env.step(action)
        reward = float(reward)
        self.episode_reward += reward
        self.done = bool(terminated or truncated)
        self.steps.append(
            ToolStep(name, dict(arguments), str(observation), reward, bool(terminated), bool(truncated), info)
        )
        return str(observation)

    def _close(self) -> None:
        """Close the env (its sandbox, when it has one) now, rather than when this instance is collected."""
        self._closer()


def _close_quietly(env: gym.Env[Any, Any]) -> None:
    with contextlib.suppress(Exception):
        env.close()


class EnvironmentFactory:
    """What ``GRPOTrainer(environment_factory=...)`` calls: each call gives a new environment instance.

    ``environment_class`` is the :class:`TRLEnvironment` subclass with the env's tools. The first
    call hands out the env built to read the tools; later calls build new ones.
    """

    def __init__(self, env_id: str, env_kwargs: Mapping[str, Any] | None = None) -> None:
        self.recipe = EnvRecipe(env_id, dict(env_kwargs or {}))
        probe = self.recipe.build()
        tools = getattr(probe.unwrapped, "tools", None)
        if not isinstance(tools, ToolSet):
            probe.close()
            raise TypeError(f"{env_id} offers no ToolSet (env.unwrapped.tools); TRL needs the env's tools")
        try:
            self.environment_class = environment_class(env_id, tools)
        except (TypeError, ValueError):
            probe.close()
            raise
        self._spare: gym.Env[Any, Any] | None = probe

    def __call__(self) -> TRLEnvironment:
        env, self._spare = self._spare, None
        return self.environment_class(env if env is not None else self.recipe.build())


def environment_factory(env_id: str, **env_kwargs: Any) -> EnvironmentFactory:
    """An ``environment_factory`` for TRL's ``GRPOTrainer`` playing ``env_id`` built with ``env_kwargs``.

    Example::

        trainer = GRPOTrainer(model=..., environment_factory=environment_factory("KeyChain-v0"),
                              train_dataset=task_dataset(64), args=GRPOConfig(...))
    """
    return EnvironmentFactory(env_id, env_kwargs)


def environment_class(env_id: str, tools: ToolSet) -> type[TRLEnvironment]:
    """A :class:`TRLEnvironment` subclass with one typed, documented method per tool of ``tools``.

    The class is named after the env id (``KeyChain-v0`` gives ``KeyChain_v0``): TRL logs the
    reward as ``rewards/KeyChain_v0/mean``.
    """
    methods: dict[str, Any] = {"env_id": env_id, "__doc__": f"TRL environment playing {env_id}."}
    for tool in tools:
        if not tool.name.isidentifier() or keyword.iskeyword(tool.name) or tool.name.startswith("_"):
            raise ValueError(f"{env_id}: tool '{tool.name}' is not a public Python name; TRL calls tools by method")
        if tool.name in RESERVED:
            raise ValueError(f"{env_id}: tool '{tool.name}' has a name TRL keeps for itself ({sorted(RESERVED)})")
        methods[tool.name] = tool_method(tool)
    name = re.sub(r"\W", "_", env_id.removeprefix("horizongym/"))
    return type(name, (TRLEnvironment,), methods)


def tool_method(tool: Tool) -> Callable[..., str]:
    """The method TRL calls for ``tool``: keyword-only arguments typed and described as the tool's model.

    The method takes whatever arguments the model sent and lets the env validate them, so a bad
    call gets the env's corrective observation and format penalty, as in the rollout engine.
    """
    name = tool.name

    def call(self: TRLEnvironment, **arguments: Any) -> str:
        return self._call_tool(name, arguments)

    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {}
    arg_lines = []
    for field_name, info in tool.args_model.model_fields.items():
        default = inspect.Parameter.empty if info.is_required() else _default(info)
        annotation = info.annotation if info.annotation is not None else Any
        parameters.append(
            inspect.Parameter(field_name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        )
        annotations[field_name] = annotation
        description = " ".join((info.description or f"the {field_name.replace('_', ' ')}").split())
        arg_lines.append(f"    {field_name}: {description}")
    summary = tool.description or f"Call the {name} tool."
    call.__name__ = call.__qualname__ = name
    call.__doc__ = summary + ("\n\nArgs:\n" + "\n".join(arg_lines) if arg_lines else "")
    call.__annotations__ = {**annotations, "return": str}
    call.__signature__ = inspect.Signature(parameters, return_annotation=str)  # type: ignore[attr-defined]
    return call


def _default(info: pydantic.fields.FieldInfo) -> Any:
    """A field's default for the signature (None stands for a default made by a factory)."""
    return None if info.default is PydanticUndefined else info.default


# ----- the dataset ---------------------------------------------------------------------------------
def task_dataset(num_tasks: int, *, seed: int = 0) -> Any:
    """A ``datasets.Dataset`` of ``num_tasks`` tasks, seeds ``seed .. seed + num_tasks - 1``.

    Each row: ``prompt``, one user message with empty content (TRL appends the env's first
    observation to it) that names its seed under :data:`TASK_SEED`, and the ``seed`` column.
    """
    from datasets import Dataset

    if num_tasks < 1:
        raise ValueError(f"num_tasks must be at least 1, got {num_tasks}")
    if seed < 0:
        raise ValueError(f"seed must be at least 0, got {seed}")
    seeds = list(range(seed, seed + num_tasks))
    prompts = [[{"role": "user", "content": "", TASK_SEED: s}] for s in seeds]
    return Dataset.from_dict({"prompt": prompts, "seed": seeds})


def with_tool_parsing(tokenizer: Any) -> Any:
    """Let TRL read tool calls written with horizongym's ChatML template (the tiny models' template).

    TRL parses a completion's tool calls with the tokenizer's ``response_template``, which it
    sets itself for the chat templates it knows. Ours writes Hermes/Qwen ``<tool_call>`` blocks:
    this sets TRL's Qwen response template on ``tokenizer`` when it uses ours and has none.
    Returns ``tokenizer``.
    """
    from trl.chat_template_utils import qwen3_template

    if tokenizer.chat_template == CHATML_TOOLS_TEMPLATE and getattr(tokenizer, "response_template", None) is None:
        tokenizer.response_template = qwen3_template
    return tokenizer


# ----- rollout_func --------------------------------------------------------------------------------
class TRLSample(NamedTuple):
    """One episode as one TRL sample (``env_mask`` 1 where the model sampled the token)."""

    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float]
    env_mask: list[int]


def episode_sequence(episode: Episode, eos_token_id: int) -> TRLSample:
    """The episode's first prompt, then each turn's sampled tokens with the env's answer between them.

    Step ``t + 1``'s prompt must start with step ``t``'s prompt and completion (what
    :class:`~horizongym.adapters.token_chain.TokenChainPolicy` guarantees); the rest of it is the
    env's answer: masked out, log-prob 0. An episode that ended before the policy's first turn is
    a lone ``eos_token_id``, masked out.
    """
    steps = episode.steps
    if not steps:
        return TRLSample([eos_token_id], [eos_token_id], [0.0], [0])
    prompt = steps[0].prompt_token_ids
    if not prompt:
        raise RolloutError(f"episode {episode.key}: the policy kept no prompt token ids")
    completion: list[int] = []
    logprobs: list[float] = []
    mask: list[int] = []
    end = list(prompt)
    for turn, step in enumerate(steps):
        tokens, step_logprobs, step_prompt = step.token_ids, step.logprobs, step.prompt_token_ids
        if tokens is None or step_logprobs is None or step_prompt is None or len(step_logprobs) != len(tokens):
            raise RolloutError(f"episode {episode.key}, turn {turn}: the policy kept no token ids or log-probs")
        if step_prompt[: len(end)] != end:
            raise RolloutError(
                f"episode {episode.key}, turn {turn}: the prompt does not continue the turns before "
                "(the env rewrote the context); one sequence per episode cannot hold it"
            )
        env_tokens = step_prompt[len(end) :]
        completion += env_tokens
        logprobs += [0.0] * len(env_tokens)
        mask += [0] * len(env_tokens)
        completion += tokens
        logprobs += step_logprobs
        mask += [1] * len(tokens)
        end = step_prompt + tokens
    return TRLSample(list(prompt), completion, logprobs, mask)


def task_seed(prompt: Any, position: int) -> int:
    """The seed a prompt of :func:`task_dataset` names; a ValueError that says how to make one otherwise."""
    messages = prompt if isinstance(prompt, list) else []
    for message in reversed(messages):
        value = message.get(TASK_SEED) if isinstance(message, Mapping) else None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    raise ValueError(
        f"prompt {position} names no task seed (a message key '{TASK_SEED}'); "
        "make the train dataset with horizongym.adapters.trl.task_dataset(...)"
    )


def env_reward(completions: list[Any], env_reward: list[float | None], **_: Any) -> list[float | None]:
    """The reward function to pair with :func:`make_rollout_func`: each episode's reward (None: not the policy's)."""
    if len(env_reward) != len(completions):
        raise ValueError(f"{len(env_reward)} env rewards for {len(completions)} completions")
    return list(env_reward)


class RolloutFunc:
    """TRL's ``rollout_func``: plays each prompt's episode with the rollout engine (see the module docstring).

    The engine (and its envs) lives as long as this object; :meth:`close` releases them.
    ``max_new_tokens`` bounds one turn (default: the trainer's ``max_completion_length``, which
    also bounds the whole completion, env tokens included); ``max_turns`` and
    ``episode_timeout_s`` are the engine's limits; ``store`` appends every episode to a JSONL
    episode store (``horizongym replay`` reads it).
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: Mapping[str, Any] | None = None,
        *,
        max_new_tokens: int | None = None,
        max_turns: int | None = None,
        episode_timeout_s: float | None = None,
        system_prompt: str | None = None,
        concurrency: int = 16,
        store: str | Path | None = None,
        sampling_seed: int = 0,
    ) -> None:
        if max_new_tokens is not None and max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        self.recipe = EnvRecipe(env_id, dict(env_kwargs or {}))
        self.recipe.build().close()  # a bad id or bad kwargs fail here, not in the first training step
        self.max_new_tokens = max_new_tokens
        self.sampling_seed = sampling_seed
        self.store = EpisodeStore(store) if store is not None else None
        self._engine_options: dict[str, Any] = {
            "concurrency": concurrency,
            "max_turns": max_turns,
            "episode_timeout_s": episode_timeout_s,
            "system_prompt": system_prompt,
        }
        self._engine: RolloutEngine | None = None
        self._calls = itertools.count()
        self.last_episodes: list[Episode] = []
        """The episodes of the last call, in the prompts' order."""

    def __call__(self, prompts: Sequence[Any], trainer: Any) -> dict[str, list[Any]]:
        from trl.models.utils import unwrap_model_for_generation

        seeds = [task_seed(prompt, i) for i, prompt in enumerate(prompts)]
        tokenizer = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)
        accelerator = trainer.accelerator
        # distinct sampling for every call and process (a group may be split across processes)
        call = next(self._calls)
        sampling_seed = (self.sampling_seed + call) * max(1, accelerator.num_processes) + accelerator.process_index
        with unwrap_model_for_generation(
            trainer.model_wrapped, accelerator, gather_deepspeed3_params=trainer.args.ds3_gather_for_generation
        ) as model:
            was_training = model.training
            try:
                episodes = _run(self._play(seeds, model, tokenizer, trainer, sampling_seed))
            finally:
                model.train(was_training)
        self.last_episodes = episodes
        eos = int(tokenizer.eos_token_id)
        sequences = [episode_sequence(episode, eos) for episode in episodes]
        return {
            "prompt_ids": [s.prompt_ids for s in sequences],
            "completion_ids": [s.completion_ids for s in sequences],
            "logprobs": [s.logprobs for s in sequences],
            "env_mask": [s.env_mask for s in sequences],
            "env_reward": [e.total_reward if e.trainable else None for e in episodes],
            "num_turns": [e.num_turns for e in episodes],
            "termination_reason": [e.termination_reason for e in episodes],
        }

    async def _play(
        self, seeds: list[int], model: Any, tokenizer: Any, trainer: Any, sampling_seed: int
    ) -> list[Episode]:
        budget = int(trainer.max_completion_length)
        inner = TransformersPolicy(
            model,
            tokenizer,
            max_new_tokens=self.max_new_tokens or budget,
            temperature=float(trainer.temperature),
            top_p=float(trainer.top_p),
            max_batch_size=max(1, len(seeds)),
            device=trainer.accelerator.device,
        )
        policy = TokenChainPolicy(inner, completion_budget=budget)
        engine = self._engine_for(policy)
        engine.sampling_seed = sampling_seed
        counts = Counter(seeds)
        try:
            runs = await asyncio.gather(*(engine.run(1, n, seed=s) for s, n in counts.items()))
        finally:
            await policy.aclose()
        played = {episode.key: episode for episodes in runs for episode in episodes}
        taken: Counter[int] = Counter()
        ordered = []
        for s in seeds:
            ordered.append(played[(s, taken[s])])
            taken[s] += 1
        return ordered

    def _engine_for(self, policy: TokenChainPolicy) -> RolloutEngine:
        if self._engine is None:
            self._engine = RolloutEngine(self.recipe, policy, store=self.store, progress=False, **self._engine_options)
        self._engine.policy = policy
        return self._engine

    def close(self) -> None:
        """Close the engine's envs and the store."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if self.store is not None:
            self.store.close()


def make_rollout_func(env_id: str, env_kwargs: Mapping[str, Any] | None = None, **options: Any) -> RolloutFunc:
    """A ``rollout_func`` for TRL's ``GRPOTrainer`` playing ``env_id``; ``options`` as :class:`RolloutFunc`.

    Example::

        trainer = GRPOTrainer(model=..., reward_funcs=env_reward, rollout_func=make_rollout_func("KeyChain-v0"),
                              train_dataset=task_dataset(64), args=GRPOConfig(...))
    """
    return RolloutFunc(env_id, env_kwargs, **options)


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coroutine`` to its end, in a thread of its own when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(functools.partial(asyncio.run, coroutine)).result()
