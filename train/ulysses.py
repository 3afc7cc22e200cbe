"""DeepSpeed-Ulysses sequence parallelism for the video DiT (Jacobs et al., "DeepSpeed Ulysses: System
Optimizations for Enabling Training of Extreme Long Sequence Transformer Models", 2023).

The ranks of a job split into `world_size / sp` data-parallel replicas of `sp` contiguous ranks each
(ranks 0..sp-1 form the first sequence-parallel group). The ranks of a group hold the same batch, and
each keeps a contiguous 1/sp of its video tokens (the token count padded up to a multiple of sp; the
padding is never a key and is dropped again at the end). Everything in a block acts per token except
self-attention, so before it an all-to-all turns (local tokens, all heads) into (all tokens, local
heads) and after it turns them back: each rank attends over the whole video with 1/sp of the heads.

Gradients: through its own tokens each rank sees only its share of the gradient, and the shares of a
group *sum* to the gradient of the group's batch. DeepSpeed averages over all ranks, so the trainer
multiplies the loss by `ParallelLayout.grad_scale` (= sp) to get the mean over data-parallel replicas.
Only torch.distributed is used: gloo (CPU) and NCCL both run `all_to_all_single` and `all_gather`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from reelforge.platform.config import ConfigError


@dataclass(frozen=True)
class ParallelLayout:
    """Where a rank sits in the data-parallel x sequence-parallel grid."""

    dp_rank: int  # data-parallel replica of this rank: its batch, noise and loader slot
    dp_size: int  # data-parallel replicas (world_size / sp_size)
    sp_rank: int  # place of this rank in its sequence-parallel group: which slice of the tokens it keeps
    sp_size: int  # ranks per sequence-parallel group

    @property
    def grad_scale(self) -> int:
        """Loss multiplier that turns DeepSpeed's mean over all ranks into the mean over replicas."""
        return self.sp_size


def parallel_layout(rank: int, world_size: int, sequence_parallel: int) -> ParallelLayout:
    """Contiguous ranks form a sequence-parallel group: rank r is replica r // sp, shard r % sp."""
    if sequence_parallel < 1 or world_size % sequence_parallel:
        raise ConfigError(f"trainer.sequence_parallel={sequence_parallel} must be at least 1 and divide the "
                          f"{world_size} ranks (trainer.num_workers): pick a divisor of {world_size}.")
    return ParallelLayout(rank // sequence_parallel, world_size // sequence_parallel,
                          rank % sequence_parallel, sequence_parallel)


def new_sequence_group(layout: ParallelLayout) -> dist.ProcessGroup | None:
    """This rank's sequence-parallel group, or None when sp_size is 1. Collective: every rank of the
    default group must call it, since each group is made by all ranks in the same order."""
    if layout.sp_size == 1:
        return None
    mine = None
    for replica in range(layout.dp_size):
        group = dist.new_group(list(range(replica * layout.sp_size, (replica + 1) * layout.sp_size)))
        if replica == layout.dp_rank:
            mine = group
    return mine


def _exchange(x: torch.Tensor, scatter_dim: int, gather_dim: int, group: dist.ProcessGroup) -> torch.Tensor:
    """Split `x` along scatter_dim into one chunk per rank, send chunk j to rank j, and concatenate
    what arrives along gather_dim in rank order."""
    size = dist.get_world_size(group)
    if x.shape[scatter_dim] % size:
        raise ValueError(f"all-to-all over {size} ranks needs dim {scatter_dim} of {tuple(x.shape)} to divide by {size}")
    send = torch.stack(x.chunk(size, dim=scatter_dim))  # (P, ...): send[j] goes to rank j
    recv = torch.empty_like(send)
    dist.all_to_all_single(recv, send, group=group)  # recv[j] came from rank j
    return torch.cat(recv.unbind(0), dim=gather_dim)


class _AllToAll(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scatter_dim: int, gather_dim: int,
                group: dist.ProcessGroup) -> torch.Tensor:
        ctx.dims, ctx.group = (scatter_dim, gather_dim), group
        return _exchange(x, scatter_dim, gather_dim, group)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        scatter_dim, gather_dim = ctx.dims
        return _exchange(grad.contiguous(), gather_dim, scatter_dim, ctx.group), None, None, None


def all_to_all(x: torch.Tensor, group: dist.ProcessGroup, scatter_dim: int, gather_dim: int) -> torch.Tensor:
    """Autograd-aware all-to-all: dim `scatter_dim` shrinks by the group size, `gather_dim` grows by it.
    Its backward is the inverse exchange."""
    return _AllToAll.apply(x, scatter_dim, gather_dim, group)


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, dim: int, group: dist.ProcessGroup, sum_grads: bool) -> torch.Tensor:
        ctx.dim, ctx.group, ctx.sum_grads = dim, group, sum_grads
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, x.contiguous(), group=group)
        return torch.cat(parts, dim=dim)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        if ctx.sum_grads:
            grad = grad.contiguous().clone()
            dist.all_reduce(grad, group=ctx.group)
        mine = grad.chunk(dist.get_world_size(ctx.group), dim=ctx.dim)[dist.get_rank(ctx.group)]
        return mine.contiguous(), None, None, None


def all_gather(x: torch.Tensor, group: dist.ProcessGroup, dim: int, sum_grads: bool) -> torch.Tensor:
    """Autograd-aware all-gather along `dim` (rank order). Backward keeps this rank's slice of the gradient:
    as it is when every rank computes the same thing from the result (`sum_grads=False`: the loss), or
    summed over the group first when each rank holds only a share of it (`sum_grads=True`)."""
    return _Gather.apply(x, dim, group, sum_grads)


@dataclass(frozen=True)
class SequenceShard:
    """This rank's contiguous slice of a sequence of `tokens`, padded to a multiple of the group size."""

    group: dist.ProcessGroup
    rank: int  # this rank's place in the group
    size: int  # ranks in the group
    tokens: int  # real tokens of the whole sequence

    @classmethod
    def of(cls, group: dist.ProcessGroup, tokens: int) -> SequenceShard:
        return cls(group, dist.get_rank(group), dist.get_world_size(group), tokens)

    @property
    def local(self) -> int:
        """Tokens per rank, padding included."""
        return -(-self.tokens // self.size)

    @property
    def padded(self) -> int:
        return self.local * self.size

    def split(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """This rank's slice of a whole sequence along `dim` (zero padding at the end)."""
        pad = self.padded - x.shape[dim]
        if pad:
            x = F.pad(x, (0, 0) * (x.ndim - 1 - dim % x.ndim) + (0, pad))
        return x.narrow(dim, self.rank * self.local, self.local)

    def key_mask(self, mask: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor | None:
        """(B, padded) bool keys of the whole padded sequence (padding False), or None when all are real."""
        if self.padded == self.tokens:
            return mask
        if mask is None:
            mask = torch.ones(batch, self.tokens, dtype=torch.bool, device=device)
        return F.pad(mask, (0, self.padded - self.tokens), value=False)

    def to_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(..., H, N/P, Dh) local tokens, all heads -> (..., H/P, N, Dh) all tokens, this rank's heads."""
        return all_to_all(x, self.group, scatter_dim=-3, gather_dim=-2)

    def to_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of `to_heads`: (..., H/P, N, Dh) -> (..., H, N/P, Dh)."""
        return all_to_all(x, self.group, scatter_dim=-2, gather_dim=-3)

    def local_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(..., H, M, Dh) of a replicated stream -> (..., H/P, M, Dh), the heads `to_heads` gives this rank."""
        return x.chunk(self.size, dim=-3)[self.rank]

    def gather_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(..., H/P, M, Dh) -> (..., H, M, Dh) on every rank, for a replicated stream (MMDiT's text)."""
        return all_gather(x, self.group, dim=-3, sum_grads=True)

    def gather(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """The whole sequence along `dim` without padding, on every rank; every rank must compute the same
        loss from it (its gradient is then the same everywhere and each rank keeps its slice)."""
        return all_gather(x, self.group, dim=dim, sum_grads=False).narrow(dim, 0, self.tokens)
