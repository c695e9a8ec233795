"""``TrainConfig``: every setting of a training run, with its default and its meaning (no torch).

The docstring under each field is its description (``use_attribute_docstrings``): the
``horizongym train`` command derives its flags, defaults and help from these fields, so this
class is the one place a training setting is declared.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator


class TrainConfig(BaseModel):
    """Everything that defines a training run (saved with every checkpoint)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    env_id: str
    """The registered environment to train on, e.g. ``KeyChain-v0``."""
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of the training env."""
    eval_env_kwargs: dict[str, Any] | None = None
    """Keyword arguments of the evaluation env (default: ``env_kwargs``, and for a task-list env such as
    SearchJudge-v0 or SWE-v0 with ``split="test"``: evaluation plays held-out tasks)."""
    advantage: str = "eapo"
    """Per-turn advantage estimator: grpo, eapo, hcapo, eapo+hcapo or hca (``training.advantages``)."""
    advantage_options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of the advantage estimator, e.g. ``{"gamma": 0.99}``."""
    group_size: int = Field(default=4, ge=1)
    """Episodes per task; advantages compare the episodes of one task."""
    tasks_per_step: int = Field(default=4, ge=1)
    """Tasks (consecutive seeds) per training step."""
    steps: int = Field(default=100, ge=0)
    """Training steps of the whole run."""
    lr: float = Field(default=1e-4, gt=0)
    """AdamW learning rate."""
    weight_decay: float = Field(default=0.0, ge=0)
    """AdamW weight decay."""
    warmup_steps: int = Field(default=0, ge=0)
    """Linear LR warmup over this many optimizer steps; constant LR afterwards (0: constant)."""
    ppo_epochs: int = Field(default=1, ge=1)
    """Passes over each step's samples."""
    micro_batch_size: int = Field(default=4, ge=1)
    """Samples per forward/backward pass."""
    grad_accumulation: int | None = Field(default=None, ge=1)
    """Micro-batches per optimizer step, per rank under torchrun (default: all of a step's samples in one step)."""
    max_grad_norm: float = Field(default=1.0, gt=0)
    """Gradients are clipped to this global norm before each optimizer step."""
    clip_low: float = Field(default=0.2, ge=0)
    """PPO's lower clip range: ratios under 1 minus this are clipped."""
    clip_high: float = Field(default=0.2, ge=0)
    """PPO's upper clip range: ratios over 1 plus this are clipped."""
    ratio_level: Literal["token", "sequence"] = "token"
    """Importance ratios per token (PPO) or per completion (GSPO)."""
    kl_coef: float = Field(default=0.0, ge=0)
    """Weight of the KL penalty to the initial model (0: none)."""
    lora_rank: int | None = Field(default=None, ge=1)
    """Train LoRA adapters of this rank instead of every weight."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """``auto``: bf16 autocast on a CUDA device that supports it, fp32 otherwise."""
    max_new_tokens: int = Field(default=256, ge=1)
    """Completion length limit per turn, in tokens."""
    temperature: float = Field(default=1.0, gt=0)
    """Sampling temperature of the training rollouts (evaluation is greedy)."""
    max_attempts: int = Field(default=3, ge=1)
    """Tries per episode when infrastructure fails (a dead container, a lost server): each retry on a fresh env."""
    infra_failures: Literal["reroll", "drop"] = "reroll"
    """A task group still holding an infrastructure failure is played again whole (``reroll``, up to
    ``max_rerolls`` times, then dropped) or left out of the step whole (``drop``): never trained on."""
    max_rerolls: int = Field(default=2, ge=0)
    """Times a group with an infrastructure failure is played again before it is dropped."""
    max_turns: int | None = Field(default=None, ge=1)
    """Engine-side turn limit per episode (default: the env's own)."""
    tree: int = Field(default=1, ge=1)
    """Tree rollouts: each episode's trunk is forked into this many branches (``tree`` − 1 new
    continuations) at ``branch_at``; a group then holds trunks and branches, and each turn is trained
    once (a branch's shared turns are its parent's). 1: no trees."""
    branch_at: str = "random"
    """With ``tree`` >= 2, where a trunk forks: ``all`` (after every turn), ``random`` (after one
    turn drawn uniformly) or a turn N (after turn N)."""
    system_prompt: str | None = None
    """System message put before every episode's first observation."""
    concurrency: int | None = Field(default=None, ge=1)
    """Episodes run at once (default: all of a step's)."""
    backend: Literal["asyncio", "ray"] = "asyncio"
    """Where the rollouts' envs run: in this process (``asyncio``), or in Ray actors of a cluster (``ray``;
    the policy stays in this process)."""
    ray_address: str | None = None
    """With ``backend`` ray: the cluster to join, ``auto`` or ``HOST:PORT`` of its head (default: start a local one)."""
    ray_workers: int | None = Field(default=None, ge=1)
    """With ``backend`` ray: env actors per rollout engine, the episodes run at once (default: ``concurrency``)."""
    dynamic_sampling: bool = False
    """Train only on task groups whose episodes' rewards differ, playing up to ``sampling_rounds`` rounds of
    ``tasks_per_step`` new tasks per step to find ``tasks_per_step`` of them (DAPO,
    :mod:`horizongym.training.dynamic_sampling`); one process only."""
    sampling_rounds: int = Field(default=3, ge=1)
    """With ``dynamic_sampling``: most rounds of rollouts per step."""
    eval_every: int = Field(default=0, ge=0)
    """Evaluate on held-out tasks every k steps (0: never)."""
    eval_tasks: int = Field(default=16, ge=0)
    """Held-out tasks per evaluation."""
    eval_seed_start: int = 1_000_000
    """Held-out tasks are seeds ``eval_seed_start`` + i; training seeds must stay below it."""
    task_seed_start: int = Field(default=0, ge=0)
    """Seed of the first training task; each step takes the next ``tasks_per_step`` seeds."""
    checkpoint_every: int = Field(default=0, ge=0)
    """Checkpoint every k steps (0: only at the end)."""
    seed: int = 0
    """Seeds the global RNGs, the sample dropping and the rollouts' sampling (``policy_seed``)."""
    out_dir: str = "runs/train"
    """Folder of the run: metrics.jsonl, episodes.jsonl, tb/, checkpoints/."""
    dp_size: int = Field(default=1, ge=1)
    """Data-parallel size: each step keeps a multiple of this many samples (EAPO's downsampling); under torchrun
    a multiple of the number of ranks, and 1 stands for that number."""
    deterministic: bool | None = None
    """Timing-independent rollouts and deterministic updates (default: on for CPU)."""
    device: str | None = None
    """Torch device to train on, e.g. ``cuda:1`` (default: cuda when available, else cpu)."""
    rollout_server: str | None = None
    """Roll out through this OpenAI-compatible server (base URL, e.g. ``http://127.0.0.1:8000/v1``:
    ``horizongym serve BASE_MODEL`` or vLLM with runtime LoRA updating) instead of in-process; needs
    ``lora_rank``: after each update the adapter is saved under OUT/adapters and loaded there. Its
    log-probs must be after temperature, as the trainer's are (vLLM: --logprobs-mode processed_logprobs)."""
    rollout_adapter: str = "policy"
    """Name prefix of the adapters published to the rollout server: NAME-vK holds the weights after K updates."""
    max_staleness: int = Field(default=1, ge=0)
    """Samples generated by an adapter more than this many versions behind the trainer's are refused."""
    tis_cap: float = Field(default=2.0, gt=0)
    """Truncated importance sampling's bound C on π_old/π_behaviour for samples a server generated."""

    @field_validator("advantage_options")
    @classmethod
    def _options_suit_the_estimator(cls, options: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """The estimator is tried on a small group with these options (an unknown key, a bad value fail here)."""
        from horizongym.training.advantages import ESTIMATORS, check_options

        advantage = info.data.get("advantage")
        if advantage in ESTIMATORS:  # an unknown estimator is reported by the model's check
            check_options(advantage, options)
        return options

    @field_validator("rollout_server")
    @classmethod
    def _needs_lora(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("lora_rank") is None:
            raise ValueError("publishes LoRA adapters to the server after each update: set lora_rank (--lora-rank) too")
        return value

    @field_validator("branch_at", mode="before")
    @classmethod
    def _branch_point(cls, value: Any, info: ValidationInfo) -> str:
        from horizongym.training.rollouts.tree import parse_branch_at

        text = str(parse_branch_at(value))
        if text != "random" and info.data.get("tree") == 1:
            raise ValueError("is used only with tree >= 2")
        return text

    @field_validator("ray_address", "ray_workers")
    @classmethod
    def _only_with_ray(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("backend") != "ray":
            raise ValueError("is used only with backend 'ray'")
        return value

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        from horizongym.training.advantages import ESTIMATORS  # imports torch: only when a config is built

        if self.advantage not in ESTIMATORS:
            raise ValueError(f"unknown advantage {self.advantage!r}; choose from {', '.join(sorted(ESTIMATORS))}")
        if self.tree > 1 and self.backend == "ray":
            raise ValueError("tree rollouts (tree >= 2) run with backend asyncio: Ray actors' envs cannot be forked")
        rounds = self.sampling_rounds if self.dynamic_sampling else 1
        last = self.task_seed_start + self.steps * self.tasks_per_step * rounds
        if last > self.eval_seed_start and not self._evaluates_another_split():
            raise ValueError(f"training would use task seeds up to {last - 1}, into the held-out range")
        return self

    def _evaluates_another_split(self) -> bool:
        """Whether evaluation plays other tasks than training whatever the seeds: a task-list env's held-out split."""
        from horizongym.envs.tasklist import is_task_list_env

        if not is_task_list_env(self.env_id):
            return False
        train_split = self.env_kwargs.get("split", "train")
        eval_split = "test" if self.eval_env_kwargs is None else self.eval_env_kwargs.get("split", "train")
        return train_split == "train" and eval_split == "test"
