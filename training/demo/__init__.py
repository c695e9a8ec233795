"""The embedded demo: a tiny byte-level model learns SearchJudge-v0, first by SFT, then by RL (EAPO).

``python -m horizongym.training.demo [--seeds N] [--out runs/demo] [--workers W] [--quick]`` (``make demo``).

Pipeline: one SFT run, then RL from the SFT model once per seed (the seed fixes RL's rollout
sampling), so that the spread over seeds is the spread of RL itself and every seed's RL
starts from the same, measured SFT model. (Three SFT runs to a competent model do not fit the
demo's budget of 20 minutes on 2 CPU cores; one SFT run with all cores does.)

1. **Model.** :func:`~horizongym.agents.tiny.build_tiny_model` writes a random
   ``LlamaForCausalLM`` (weights fixed by ``sft_seed``) with the byte-level tokenizer (nothing
   is downloaded). The SearchJudge protocol is plain tags (``<search>``, ``<judge>``,
   ``<answer>``), so the tokenizer gets a plain ChatML template that does not render the tool
   schemas: they would add ~1,400 byte tokens to every prompt and teach nothing here.
2. **Data.** The default fictional world (5,000 documents) is exported as a JSONL corpus and
   question file and loaded through ``tasks="jsonl:CORPUS:QUESTIONS"``: the same documents, the
   same BM25 retrieval, the same protocol and rewards as ``tasks="fictional"``. The questions are
   the world's single-hop questions with its own split (160 train, 40 held-out test) plus
   ``extra_questions`` (8,000) single-hop train questions that the world's own task builder
   generates with another seed, none of them naming an entity that a test question is about
   (160 questions are far too few for a tiny model to learn to copy names rather than
   memorise them). The test questions are exactly the world's 40. Env kwargs, identical for
   SFT data, RL and evaluation except ``split``: ``top_k=1`` (one document per search),
   ``max_observation_chars=160`` (the page's first sentences, which state the asked attribute
   for most questions), ``max_searches=2``, ``instructions=False`` (the first message is the
   ``Question: …`` line without the protocol paragraph, which the model learns from the
   episodes instead of reading ~560 bytes of it every round) and ``task_order="by_seed"``
   (seed ``i`` is task ``i`` of the split).
3. **Expert episodes.** The honest scripted expert plays every train question once; its
   successful episodes are the SFT data.
4. **Evaluation** (``before_sft``, ``after_sft``, ``after_rl``): greedy decoding on every
   held-out test question (seeds ``0..39``), the same episode settings at all three stages;
   success is the env's ``success`` (exact match of the answer).
5. **SFT** with :mod:`~horizongym.training.curriculum`, one AdamW run (warmup, cosine decay)
   through three phases. ``repeat``: a segment of a corpus page, a newline and the segment
   again, loss on the second copy (the pages of held-out questions are left out). This is where
   the model forms induction heads, the circuit that copies from its context; without it a tiny
   byte-level model does not learn to copy the answer out of the page in the time the demo has
   (``python -m horizongym.bench.copy_probe``: held-out answer exact match 0.81 after 600 repeat
   and 1,500 answer steps, 0 without the repeat steps). Then the successful expert episodes,
   each one sequence with the loss on the action tokens (``context_weight`` on the other tokens,
   0 by default): ``question`` (the first turn only) and ``episodes`` (whole episodes). The SFT
   length is set by the time budget, not trained to convergence. The SFT run is saved to
   ``sft/model`` and reused by a later run whose settings and data hash the same
   (:meth:`DemoSettings.sft_key`), so changing only RL settings skips it.
6. **RL** with the :class:`~horizongym.training.trainer.Trainer`, ``advantage="eapo"`` with a
   std floor (``min_std`` 0.1: a group whose episodes all end with the same reward differs only
   by the discount, which plain normalisation would blow up to advantages of ±1): a fixed number
   of steps, each ``tasks_per_step`` train questions × ``group_size`` sampled episodes
   (temperature 1), one PPO-clip epoch per step in AdamW steps of 4 micro-batches of 8 samples
   (about 5 optimizer steps per RL step).

SFT runs in the main process with all cores. The RL seeds run in parallel worker processes (all
at once by default, ``--workers``), the cores shared out among them as torch threads. Measured
with ``python -m horizongym.training.demo --seeds 3`` on 2 cores: 838 s in all (SFT 490 s, the
three RL seeds side by side about 327 s, 60 steps of 8 × 8 episodes each); held-out success 0
before SFT, 0.625 after SFT, 0.675 / 0.625 / 0.650 after RL (seeds 0, 1, 2), a gain of 0.025
that is not larger than the spread over seeds (0.025).

Outputs under ``--out``: ``summary.json`` (``results``: one ``{"seed", "stage", "success",
"mean_reward", "episodes"}`` per seed and stage, the two SFT stages the shared run's, plus the
verdict, settings, env kwargs, SFT losses, RL curves, timings and wall time),
``learning_curve.png`` (training reward per RL step per seed; held-out success at the three
stages), ``expert_sft.jsonl`` (the expert episodes), ``sft/`` (``eval_before_sft.jsonl``,
``eval_after_sft.jsonl``, ``sft.json``, the model), ``seed<k>/eval_after_rl.jsonl`` and
``seed<k>/rl/`` (the trainer's ``episodes.jsonl``, ``metrics.jsonl``, TensorBoard logs and
final checkpoint). A table of success per stage and RL seed, with the mean and sample
standard deviation over seeds, is printed at the end.

``--quick`` runs toy sizes (a few tasks, one RL step) to check the pipeline in under a minute;
its numbers mean nothing.
"""

from horizongym.training.demo.data import copy_pages, export_world, extra_questions, split_size
from horizongym.training.demo.episodes import evaluate, expert_episodes
from horizongym.training.demo.model import CHATML_TEMPLATE, build_model, load_model
from horizongym.training.demo.report import plot, table, verdict
from horizongym.training.demo.rl import run_rl
from horizongym.training.demo.run import main, run_demo
from horizongym.training.demo.settings import ENV_ID, QUICK, RL_FIELDS, STAGES, DemoSettings
from horizongym.training.demo.sft import run_sft, sft_phases

__all__ = [
    "CHATML_TEMPLATE",
    "ENV_ID",
    "QUICK",
    "RL_FIELDS",
    "STAGES",
    "DemoSettings",
    "build_model",
    "copy_pages",
    "evaluate",
    "expert_episodes",
    "export_world",
    "extra_questions",
    "load_model",
    "main",
    "plot",
    "run_demo",
    "run_rl",
    "run_sft",
    "sft_phases",
    "split_size",
    "table",
    "verdict",
]
