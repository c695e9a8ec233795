"""The demo's settings: :class:`DemoSettings` (one run's sizes and rates), the ``QUICK`` toy sizes,
the stages it measures, and the settings only RL reads (they do not change the SFT checkpoint)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SFT_RECORD_VERSION = 2
"""Bumped when ``sft/sft.json`` changes shape (2: intervals and per-question outcomes), so an older record is redone."""
STAGES = ("before_sft", "after_sft", "after_rl")
ENV_ID = "SearchJudge-v0"
WORLD_TEST_QUESTIONS = 40
"""The default world's own single-hop test questions: the first held-out questions (a reported subset)."""


@dataclass(frozen=True)
class DemoSettings:
    """Everything that defines a demo run besides the RL seeds."""

    hops: tuple[int, ...] = (1,)
    extra_questions: int = 8000
    """Single-hop train questions generated over the same world, on top of its own train split."""
    held_out: int = 200
    """Generated held-out questions, on top of the world's own 40 test questions (``data.export_world``)."""
    top_k: int = 1
    max_observation_chars: int = 160
    max_searches: int = 2
    instructions: bool = False
    """Whether the first message carries the env's protocol paragraph (``SearchJudgeEnv``)."""
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    max_new_tokens: int = 64
    sft_seed: int = 0
    """Fixes the model's initial weights and SFT's example order."""
    sft_tasks: int | None = None
    """Train questions the expert plays (None: all of them)."""
    sft_repeat_steps: int = 800
    """Phase 1: copying a page segment (induction heads, see ``curriculum.repeat_rows``).

    With 500 steps whether the copy skill formed depended on the seed (held-out success after SFT
    0.025 with ``sft_seed`` 0); with 1,000 it was 0.625 and 0.500 with ``sft_seed`` 0 and 1 (on the
    world's 40 test questions)."""
    sft_repeat_batch_size: int = 32
    sft_question_steps: int = 200
    """Phase 2: the first turn only (question → search)."""
    sft_question_batch_size: int = 32
    sft_episode_steps: int = 1800
    """Phase 3: whole episodes (with 2,400 steps held-out success after SFT was 0.500 of 240, with 800 0.154)."""
    sft_batch_size: int = 16
    sft_lr: float = 3e-3
    context_weight: float = 0.0
    eval_tasks: int | None = None
    """Held-out questions evaluated (None: all of them)."""
    rl_steps: int = 12
    tasks_per_step: int = 16
    """Train questions per RL step; all their episodes are decoded in one batch, which costs little
    more than half as many."""
    group_size: int = 8
    advantage: str = "eapo"
    """The per-turn advantage estimator RL trains with (``training.advantages``: grpo, eapo, eapo+hcapo...)."""
    dynamic_sampling: bool = True
    """Train only on groups whose episodes' rewards differ (``training.dynamic_sampling``): about half
    the groups end alike, and their update would cost as much and teach nothing."""
    sampling_rounds: int = 1
    """With ``dynamic_sampling``: rounds of rollouts per step (1: groups without signal are skipped, not replaced)."""
    eval_every: int = 4
    """RL steps between held-out evaluations (the learning curve's points; the last is the after-RL evaluation)."""
    rl_lr: float = 1e-4
    rl_warmup_steps: int = 0
    """Optimizer steps of linear lr warmup in RL (a fresh AdamW's first steps move every weight by about the lr)."""
    rl_judge_weight: float = 1.0
    """The RL env's ``judge_weight`` (evaluation scores the answer alone): with 0 the reward is the answer's alone,
    so a failed episode with right judgments is no longer trained toward."""
    rl_answer_metric: str = "em"
    """The RL env's ``answer_metric``: ``em``, or ``chars`` for partial credit of a near miss (success stays EM)."""
    rl_micro_batch_size: int = 8
    rl_grad_accumulation: int | None = 4
    """Micro-batches per optimizer step (None: one optimizer step on all of an RL step's samples)."""
    rl_ppo_epochs: int = 1
    eapo_min_std: float = 0.1
    """EAPO's std floor (``training.advantages.eapo``): a group whose episodes all end alike stays quiet."""
    temperature: float = 1.0
    concurrency: int = 8
    """Expert episodes played at once (SFT data)."""
    eval_batch_size: int = 120
    """Held-out episodes played at once, their turns decoded in one batch: the tiny model's decode
    step costs about the same for 8 rows as for 120, so wide batches evaluate 2-3x faster."""

    def __post_init__(self) -> None:
        from typing import get_args

        from horizongym.envs.search.rewards import AnswerMetric

        if self.rl_answer_metric not in get_args(AnswerMetric):
            raise ValueError(f"rl_answer_metric must be one of {get_args(AnswerMetric)}, got {self.rl_answer_metric!r}")

    def env_kwargs(self, data: str, split: str) -> dict[str, Any]:
        """The env's kwargs for ``split`` of the data spec ``data``, the same for SFT data, RL and evaluation."""
        return {
            "tasks": data,
            "split": split,
            "top_k": self.top_k,
            "max_observation_chars": self.max_observation_chars,
            "max_searches": self.max_searches,
            "instructions": self.instructions,
            "task_order": "by_seed",
        }

    def rl_env_kwargs(self, data: str) -> dict[str, Any]:
        """The RL env's kwargs: the train split drawn at random, and the RL reward settings where they differ."""
        reward: dict[str, Any] = {}
        if self.rl_judge_weight != 1.0:
            reward["judge_weight"] = self.rl_judge_weight
        if self.rl_answer_metric != "em":
            reward["answer_metric"] = self.rl_answer_metric
        return {**self.env_kwargs(data, "train"), "task_order": "random", **reward}

    def sft_key(self, data: str) -> str:
        """A content hash of everything the SFT run's record depends on (settings, data files, its format)."""
        digest = hashlib.sha256()
        fields = {k: v for k, v in asdict(self).items() if k not in RL_FIELDS} | {"record": SFT_RECORD_VERSION}
        digest.update(json.dumps(fields, sort_keys=True).encode())
        for path in data.split(":")[1:]:
            digest.update(Path(path).read_bytes())
        return digest.hexdigest()[:16]


RL_FIELDS = frozenset(
    {
        "rl_steps",
        "tasks_per_step",
        "group_size",
        "advantage",
        "dynamic_sampling",
        "sampling_rounds",
        "eval_every",
        "rl_lr",
        "rl_warmup_steps",
        "rl_judge_weight",
        "rl_answer_metric",
        "rl_micro_batch_size",
        "rl_grad_accumulation",
        "rl_ppo_epochs",
        "eapo_min_std",
        "temperature",
        "eval_batch_size",
    }
)
"""The settings only RL reads: changing them keeps the SFT checkpoint."""

QUICK = DemoSettings(
    extra_questions=20,
    hidden_size=32,
    num_layers=1,
    num_heads=2,
    max_new_tokens=12,
    sft_tasks=6,
    sft_repeat_steps=2,
    sft_repeat_batch_size=4,
    sft_question_steps=2,
    sft_question_batch_size=4,
    sft_episode_steps=2,
    sft_batch_size=2,
    eval_tasks=3,
    rl_steps=2,
    tasks_per_step=2,
    group_size=2,
    eval_every=1,
)


def with_overrides(settings: DemoSettings, assignments: list[str]) -> DemoSettings:
    """``settings`` with ``FIELD=VALUE`` assignments applied (the demo's ``--set``); a value is read as JSON
    (``true``, ``2e-4``, ``[1]``), a bare word as text."""
    from dataclasses import fields, replace

    types = {f.name: f.type for f in fields(DemoSettings)}
    changes: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        if not sep or name not in types:
            known = ", ".join(sorted(types))
            raise ValueError(f"--set {assignment!r}: expected FIELD=VALUE with FIELD one of {known}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        changes[name] = tuple(value) if isinstance(value, list) else value
    return replace(settings, **changes)
