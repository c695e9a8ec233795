"""The embedded demo: a tiny byte-level model learns SearchJudge-v0, first by SFT, then by RL.

``python -m horizongym.training.demo [--seeds N] [--out runs/demo] [--workers W] [--advantage A] [--quick]``
(``make demo``).

Pipeline: one SFT run, then RL from the SFT model once per seed. An RL seed fixes both its
rollouts' sampling and the order of its training questions (each seed draws its tasks with the
env's RNG from its own range of task seeds), so the spread over seeds is the spread of RL runs,
and every seed starts from the same, measured SFT model. (Three SFT runs to a competent model do
not fit the demo's budget of 15 minutes on 2 CPU cores; one SFT run with all cores does.)

1. **Model.** :func:`~horizongym.agents.tiny.build_tiny_model` writes a random
   ``LlamaForCausalLM`` (weights fixed by ``sft_seed``) with the byte-level tokenizer (nothing
   is downloaded). The SearchJudge protocol is plain tags (``<search>``, ``<judge>``,
   ``<answer>``), so the tokenizer gets a plain ChatML template that leaves the tool schemas out
   (:data:`~horizongym.training.demo.model.CHATML_TEMPLATE`): they would add ~1,400 byte tokens
   to every prompt and teach nothing here.
2. **Data** (:func:`~horizongym.training.demo.data.export_world`). The default fictional world
   (5,000 documents) is exported as a JSONL corpus and question file and loaded through
   ``tasks="jsonl:CORPUS:QUESTIONS"``: the same documents, BM25 retrieval, protocol and rewards
   as ``tasks="fictional"``. Held out (``split`` test, 240 questions): the world's own 40
   single-hop test questions (reported on their own as ``world_success``), then 200 single-hop
   questions the world's question builder draws with another seed, each about an entity no other
   held-out question is about. Train: the world's own train questions and 8,000 generated
   single-hop questions, leaving out every one that names an entity a held-out question is
   about, so held-out and train questions share no entity. Env kwargs, identical for SFT data,
   RL and evaluation except ``split`` and the order: ``top_k=1`` (one document per search),
   ``max_observation_chars=160`` (the page's first sentences, which state the asked attribute
   for most questions), ``max_searches=2``, ``instructions=False`` (the first message is the
   ``Question: …`` line without the protocol paragraph, which the model learns from the
   episodes) and ``task_order="by_seed"`` (seed ``i`` is question ``i``; RL draws at random).
3. **Expert episodes.** The honest scripted expert plays every train question once; its
   successful episodes are the SFT data.
4. **Evaluation** (``before_sft``, ``after_sft``, ``after_rl``): greedy decoding on all 240
   held-out questions, the same episode settings at every stage; success is the env's
   ``success`` (exact match of the answer), reported with its 95% Wilson interval
   (:mod:`horizongym.training.paired_stats`). During RL the trainer evaluates the same 240
   questions every ``eval_every`` steps: the learning curve's held-out points.
5. **SFT** with :mod:`~horizongym.training.curriculum`, one AdamW run (warmup, cosine decay)
   through three phases. ``repeat``: a segment of a corpus page, a newline and the segment
   again, loss on the second copy (the pages of held-out questions are left out). This is where
   the model forms induction heads, the circuit that copies from its context; without it a tiny
   byte-level model does not learn to copy the answer out of the page in the time the demo has
   (``python -m horizongym.bench.copy_probe``). Then the successful expert episodes, each one
   sequence with the loss on the action tokens (``context_weight`` on the other tokens, 0 by
   default): ``question`` (the first turn only) and ``episodes`` (whole episodes). The SFT run
   is saved to ``sft/model`` and reused by a later run whose settings and data hash the same
   (:meth:`DemoSettings.sft_key`), so changing only RL settings (``--advantage``) skips it.
6. **RL** with the :class:`~horizongym.training.trainer.Trainer` (``advantage`` EAPO by default,
   with a std floor ``min_std`` 0.1: a group whose episodes all end with the same reward differs
   only by the discount, which plain normalisation would blow up to advantages of ±1). Each step
   plays ``tasks_per_step`` train questions × ``group_size`` sampled episodes (temperature 1),
   all decoded in one batch, and with ``dynamic_sampling`` trains only on the groups whose
   episodes' rewards differ (:mod:`horizongym.training.dynamic_sampling`; ``sampling_rounds``
   1: the others are skipped, not replaced); one PPO-clip epoch per step in AdamW steps of
   ``rl_grad_accumulation`` micro-batches.
7. **Report** (:mod:`~horizongym.training.demo.report`): per stage and seed the success with
   its interval; RL against SFT on the same questions, per seed (exact McNemar) and pooled over
   seeds (a paired sign-flip test of each question's RL success averaged over seeds minus its
   SFT success); the verdict: RL beats SFT when the pooled p-value is under 0.05 and the gain is
   more than twice the sample std of the seeds' RL success.

Measured (2 CPU cores; ``time make demo`` 12 min 40 s with the venv built, the training demo
720 s: SFT 450 s, the three RL seeds side by side 163 s): held-out success 0 before SFT, 0.458
[0.396, 0.522] after SFT, 0.471 / 0.454 / 0.446 after RL (seeds 0-2); RL − SFT pooled −0.001,
p = 1.0. RL does not improve on SFT here. The levers tried, one RL seed each from one SFT model
(0.500 held-out, 2,400 episode steps), held-out success of 240 at the step given, through
:func:`~horizongym.training.demo.rl.run_rl` (``--set`` gives each setting):

* EAPO, lr 1e-4, 8 questions a step, every group trained: 0.479 at step 10.
* Dynamic sampling with 3 rounds (``sampling_rounds=3``) and lr 3e-4: 8 groups with signal
  found in 2-3 rounds, but each step cost 2.3x the rollouts; training success drifted down.
* lr 3e-4, groups without signal skipped, 16 questions a step: training success fell from
  about 0.50 to 0.37-0.48 in 19 steps. lr 1e-3: it collapsed to 0.22 by step 3.
* lr 1e-4, skipped groups, 16 questions (the defaults): 0.488 at step 15, 0.492 at step 30.
  lr 2e-4: 0.450 at step 15.
* Temperature 0.6: 0.483 at step 12, 0.463 at step 24. Groups of 16 (8 questions): 0.504 at
  step 12.
* A weaker SFT start (800 episode steps, 0.154 held-out): 0.158 after 10 RL steps.
* All three seeds with the defaults for 24 steps from the 0.500 model: 0.487 / 0.467 / 0.467,
  pooled −0.026, p = 0.03.

From the ``make demo`` SFT model (0.458), seed 0, 12 steps, held-out success at steps 4 / 8 / 12
(the larger the lr, the further a run moved the model; none gained):

* The answer's reward alone (``rl_judge_weight=0``: a failed episode with right judgments is
  otherwise trained toward), lr 3e-4, 10 warmup steps (``rl_warmup_steps``): 0.475 / 0.446 / 0.433.
  With partial credit for near misses (``rl_answer_metric=chars``): 0.454 / 0.421 / 0.404.
* LoRA rank 8 at lr 1e-3 with the answer's reward alone: 0.471 / 0.458 / 0.463.
* One AdamW step per RL step (``rl_grad_accumulation=None``: a group's advantages sum to zero, and
  only in one batch do they cancel on the actions its episodes share), the answer's reward alone:
  lr 3e-4 0.463 / 0.467 / 0.475; lr 1e-3 0.358 / 0.283 / 0.258. Judged instead on 240 train
  questions (seed 1; the SFT model solves 0.563 of them), lr 3e-4 stayed at 0.554-0.575 for 24
  steps and lr 5e-4 fell to 0.500.
* From a weaker SFT model (1,000 episode steps, 0.317): the defaults 0.304 / 0.317 / 0.308; the
  answer's reward alone at lr 3e-4 0.283 / 0.237 / 0.212.
* Continued SFT on the expert episodes instead (fresh AdamW, lr 3e-4, 3 × 40 steps of 32
  episodes): 0.458 / 0.463 / 0.454. The SFT model is on a plateau that short training does not leave.

The estimators, three seeds each with the ``make demo`` settings (``--advantage``), after RL:
EAPO 0.471 / 0.454 / 0.446 (pooled −0.001, p = 1.0), GRPO 0.471 / 0.450 / 0.450 (−0.001, p = 1.0),
EAPO+HCAPO 0.475 / 0.454 / 0.438 (−0.003, p = 0.88; its hindsight pass costs 219-256 s of RL per
seed against 141-169 s). None learns faster here.

Why (``python -m horizongym.training.demo.diagnose``, on the SFT model): of the 130 held-out
questions it fails, in 85 the answer was on the page it read and it wrote another (mostly digits,
copied at 0.2-0.5 probability each against the prior of common years), in 21 the answer lay past
the 160 characters shown, in 22 the search returned another entity's page (the expert fails
those too) and 2 ended without an answer. Sampling 8 episodes per question at temperature 1, 104
of the 130 are never solved and 17 once: where greedy decoding fails, RL almost never sees the
answer it would have to reinforce, and what it can reinforce is the copying skill itself, which
SFT teaches with far denser signal.

What the levers changed in cost: decoding a step's episodes in one batch instead of batches of 8
(a 240 × 64-token greedy decode: 3.5 s at batch 8, 1.2 s at 240, one thread); skipping the
groups without signal leaves 4-15 of 16 groups to train on per step, and the update costs in
proportion; micro-batches sorted by length pad less.

SFT runs in the main process with all cores. The RL seeds run in parallel worker processes (all
at once by default, ``--workers``), the cores shared out among them as torch threads.

Outputs under ``--out``: ``summary.json`` (``results``: one row per seed and stage with
``success``, ``ci_low``, ``ci_high``, ``n``, ``world_success``, ``mean_reward`` and the
per-question ``outcomes``, the two SFT stages the shared run's; ``paired``: ``delta``,
``p_value`` pooled and ``per_seed``; ``failure_kinds`` of the SFT model and of each RL seed
(:mod:`~horizongym.training.demo.diagnose`, also printed); the verdict, settings, env kwargs, SFT losses, RL curves
with ``held_out_success`` per evaluated step, timings and wall time), ``learning_curve.png``
(training reward per RL step per seed; held-out success over RL steps per seed; success by
stage with intervals), ``expert_sft.jsonl``, ``sft/`` (``eval_before_sft.jsonl``,
``eval_after_sft.jsonl``, ``sft.json``, the model), ``seed<k>/eval_after_rl.jsonl`` and
``seed<k>/rl/`` (the trainer's ``episodes.jsonl``, ``metrics.jsonl``, TensorBoard logs and
final checkpoint).

``--quick`` runs toy sizes (a few tasks, two RL steps) to check the pipeline in under a minute;
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
