"""Data-parallel training under ``torchrun``: the ranks, each rank's share, and the collectives.

``torchrun --nproc-per-node N -m horizongym train …`` starts N processes and gives each the
variables ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:meth:`DataParallel.from_env` reads them (a plain process is one rank of one) and
:meth:`DataParallel.start` joins the process group: NCCL when the rank trains on a GPU
(``cuda:LOCAL_RANK``), gloo on the CPU. What the trainer does with W ranks:

* **Rollouts.** A step's ``tasks_per_step`` task seeds are cut into W consecutive blocks
  (:meth:`~DataParallel.share`, sizes differing by at most one); each rank plays the groups of its
  block. A turn's sampling seed is ``policy_seed(task seed, sample, turn, run seed)``, so every
  episode is the one a single process would play. The ranks then exchange their episodes
  (:meth:`~DataParallel.gather`, ``all_gather_object``): every rank sees the step's whole batch,
  computes the same advantages, drops the same ``len mod dp_size`` samples (EAPO's adaptive
  downsampling, with ``dp_size`` a multiple of W) and shuffles them the same way with the
  trainer's RNG, which moves in step on every rank.
* **Update.** Each optimizer batch B (a multiple of W samples) is cut into W equal blocks; rank k
  back-propagates the loss of block k with B's global normaliser N (its tokens, or its samples at
  the sequence level), and the gradients are summed over the ranks
  (:meth:`~DataParallel.all_reduce_gradients`):

      ∇L = ∇( −(1/N) Σ_{i ∈ B} ℓ_i ) = Σ_k ∇( −(1/N) Σ_{i ∈ B_k} ℓ_i )

  Averaging the ranks' own token-means instead would weigh a token of a short block more than
  one of a long block. Every rank then clips the same summed gradient and takes the same AdamW
  step, so the weights stay equal on every rank without being sent again; they equal one
  process's on the same global batch up to the order of float additions.
* **Files.** Rank 0 alone writes the episode store, ``metrics.jsonl``, TensorBoard and the
  checkpoints; a checkpoint records W (:data:`~horizongym.training.checkpoint.RANKS_FILE`), and a
  run resumes only with the same W (:func:`resume_refusal`).

The same scheme as PyTorch's ``DistributedDataParallel`` (gradients summed by all-reduce, then
divided by the global count), done by hand so that generation, LoRA and checkpoints keep the bare
model: "PyTorch Distributed: Experiences on Accelerating Data Parallel Training", Li et al. 2020,
arXiv:2006.15704.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import torch
import torch.distributed as dist

from horizongym.training.failed_groups import SettledGroups

if TYPE_CHECKING:
    from horizongym.training.config import TrainConfig

T = TypeVar("T")

BUCKET_ELEMENTS = 25_000_000
"""Gradient elements summed per all-reduce call (about 100 MB of float32, DDP's default bucket)."""


@dataclass(frozen=True)
class DataParallel:
    """This process's place among the data-parallel ranks (``world_size`` 1: a plain run)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DataParallel:
        """The ranks torchrun describes in ``environ`` (default: ``os.environ``); one rank without them."""
        env = os.environ if environ is None else environ
        if "WORLD_SIZE" not in env:
            return cls()
        values: dict[str, int] = {}
        for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
            text = env.get(name, "0" if name == "LOCAL_RANK" else "")
            try:
                values[name] = int(text)
            except ValueError:
                raise ValueError(
                    f"{name}={text!r} is not a whole number: start data-parallel training with torchrun"
                ) from None
        world, rank, local = values["WORLD_SIZE"], values["RANK"], values["LOCAL_RANK"]
        if world < 1 or not 0 <= rank < world or local < 0:
            raise ValueError(
                f"RANK={rank}, LOCAL_RANK={local}, WORLD_SIZE={world} do not describe a rank: "
                "start data-parallel training with torchrun"
            )
        return cls(rank=rank, world_size=world, local_rank=local)

    @property
    def active(self) -> bool:
        """Whether there are other ranks to talk to."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes the run's files."""
        return self.rank == 0

    # ----- setting up -----------------------------------------------------------------------
    def fit(self, config: TrainConfig) -> TrainConfig:
        """``config`` for these ranks: ``dp_size`` 1 becomes W; a ``dp_size`` W does not divide, fewer
        tasks per step than ranks, or Ray rollouts without a cluster address are refused (``ValueError``,
        one line with the fix)."""
        world = self.world_size
        if not self.active:
            return config
        if config.dp_size == 1:
            config = config.model_copy(update={"dp_size": world})
        elif config.dp_size % world:
            raise ValueError(
                f"dp_size {config.dp_size} is not a multiple of the {world} data-parallel ranks: "
                f"set --dp-size {world} (or leave it out)"
            )
        if config.tasks_per_step < world:
            raise ValueError(
                f"tasks_per_step {config.tasks_per_step} leaves a rank without a task: "
                f"use --tasks-per-step {world} or more with {world} ranks"
            )
        if config.backend == "ray" and config.ray_address is None:  # else each rank starts a Ray of its own
            raise ValueError(
                f"the {world} data-parallel ranks would each start a Ray cluster of their own: start one "
                "(ray start --head) and give every rank --address auto (or HOST:PORT)"
            )
        return config

    def device(self, requested: str | None) -> torch.device:
        """The device this rank trains on: ``requested``, else ``cuda:LOCAL_RANK`` with a GPU, else the CPU.

        A bare ``cuda`` under several ranks means each rank's own GPU, ``cuda:LOCAL_RANK``.
        """
        if requested is None:
            requested = "cuda" if torch.cuda.is_available() else "cpu"
        device = torch.device(requested)
        if device.type == "cuda" and device.index is None and self.active:
            if self.local_rank >= torch.cuda.device_count():
                raise ValueError(
                    f"LOCAL_RANK {self.local_rank} has no GPU of its own ({torch.cuda.device_count()} visible): "
                    f"start at most {torch.cuda.device_count()} ranks per machine (--nproc-per-node)"
                )
            device = torch.device("cuda", self.local_rank)
        return device

    def start(self, device: torch.device) -> None:
        """Join the process group (NCCL for a GPU, gloo for the CPU), once; it is left at exit."""
        if not self.active or dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        atexit.register(_leave)

    def broadcast(self, tensors: Iterable[torch.Tensor]) -> None:
        """Overwrite ``tensors`` (in place) with rank 0's: every rank starts from the same weights."""
        if not self.active:
            return
        with torch.no_grad():
            for tensor in tensors:
                dist.broadcast(tensor.data, src=0)

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.active:
            dist.barrier()

    # ----- shares -----------------------------------------------------------------------------
    def share(self, first_seed: int, count: int) -> tuple[int, int]:
        """This rank's block of the seeds ``first_seed .. first_seed + count - 1``: (first seed, count).

        Block k holds ``count // W`` seeds, one more for the first ``count mod W`` ranks.
        """
        base, extra = divmod(count, self.world_size)
        return first_seed + self.rank * base + min(self.rank, extra), base + (self.rank < extra)

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's consecutive block of ``items`` (blocks as in :meth:`share`)."""
        start, count = self.share(0, len(items))
        return list(items[start : start + count])

    def batch_share(self, batch: Sequence[T]) -> list[T]:
        """This rank's equal block of an optimizer batch (its length must be a multiple of W)."""
        if len(batch) % self.world_size:
            raise ValueError(
                f"an optimizer batch of {len(batch)} samples does not split over {self.world_size} ranks: "
                f"set --dp-size to a multiple of {self.world_size}"
            )
        return self.shard(batch)

    # ----- collectives ------------------------------------------------------------------------
    def gather(self, items: Sequence[T]) -> list[T]:
        """Every rank's ``items``, concatenated in rank order, on every rank."""
        if not self.active:
            return list(items)
        parts: list[list[T] | None] = [None] * self.world_size
        dist.all_gather_object(parts, list(items))
        return [item for part in parts for item in part or []]

    def gather_settled(self, settled: SettledGroups) -> SettledGroups:
        """The ranks' settled groups as one step's: episodes sorted by key, counts summed."""
        if not self.active:
            return settled
        parts = self.gather([settled])
        return SettledGroups(
            kept=sorted((e for part in parts for e in part.kept), key=lambda e: e.key),
            dropped=sorted((e for part in parts for e in part.dropped), key=lambda e: e.key),
            infra_episodes=sum(part.infra_episodes for part in parts),
            groups_rerolled=sum(part.groups_rerolled for part in parts),
            groups_dropped=sum(part.groups_dropped for part in parts),
        )

    def sum_floats(self, values: Sequence[float], device: torch.device) -> list[float]:
        """``values`` summed element-wise over the ranks (float64)."""
        if not self.active:
            return list(values)
        tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return [float(v) for v in tensor.tolist()]

    def all_reduce_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Sum the gradients of ``params`` over the ranks, in place, in buckets of flat tensors.

        Every rank runs the same model on a non-empty block, so the parameters that hold a
        gradient are the same on every rank.
        """
        if not self.active:
            return
        grads = [p.grad for p in params if p.grad is not None]
        for bucket in _buckets(grads, BUCKET_ELEMENTS):
            flat = torch.cat([g.reshape(-1) for g in bucket])
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            offset = 0
            for grad in bucket:
                grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
                offset += grad.numel()


def resume_refusal(path: Any, saved: int, current: int) -> str:
    """The one line that refuses to resume a checkpoint of ``saved`` ranks with ``current``."""
    how = "without torchrun" if saved == 1 else f"with torchrun --nproc-per-node {saved} (in all, {saved} ranks)"
    return (
        f"cannot resume {path}: it was trained on {saved} data-parallel rank(s) and this run has {current}; "
        f"resume it {how}"
    )


def _buckets(grads: Sequence[torch.Tensor], limit: int) -> list[list[torch.Tensor]]:
    """``grads`` cut into runs of one dtype and device, each of at most ``limit`` elements (or one tensor)."""
    buckets: list[list[torch.Tensor]] = []
    size = 0
    for grad in grads:
        last = buckets[-1] if buckets else None
        if last is None or size + grad.numel() > limit or (last[0].dtype, last[0].device) != (grad.dtype, grad.device):
            buckets.append([grad])
            size = grad.numel()
        else:
            last.append(grad)
            size += grad.numel()
    return buckets


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
