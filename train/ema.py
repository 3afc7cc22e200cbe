"""Exponential moving average of the model weights, kept in fp32 on rank 0 and saved as safetensors.

The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates, so a short run's EMA is not
stuck near the random init. Under ZeRO-3 the parameters are partitioned: every rank joins the
gather, rank 0 updates. With `ema_decay=0` the EMA is the no-op `RawWeights`, whose state is the
current weights, so checkpoints always carry sampling weights under the same name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import torch
from torch import nn


@contextmanager
def full_parameters(module: nn.Module, zero_stage: int) -> Iterator[list[tuple[str, nn.Parameter]]]:
    """The module's named parameters, gathered to full size on every rank under ZeRO-3."""
    params = list(module.named_parameters())
    if zero_stage != 3:
        yield params
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters([p for _, p in params], modifier_rank=None):
        yield params


class WeightAverage(Protocol):
    def update(self, step: int) -> None: ...

    def state_dict(self) -> dict[str, torch.Tensor]: ...

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None: ...


class EMA:
    """fp32 shadow weights on rank 0's CPU, updated every `every_steps` optimizer steps."""

    def __init__(self, module: nn.Module, decay: float, every_steps: int, zero_stage: int, is_main: bool) -> None:
        self.module, self.decay, self.every_steps = module, decay, every_steps
        self.zero_stage, self.is_main = zero_stage, is_main
        self.updates = 0
        with full_parameters(module, zero_stage) as params:
            self.shadow = {n: p.detach().float().cpu().clone() for n, p in params} if is_main else {}

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, step: int) -> None:
        if step % self.every_steps:
            return
        decay = self.current_decay()
        with full_parameters(self.module, self.zero_stage) as params:
            if self.is_main:
                for name, p in params:
                    self.shadow[name].lerp_(p.detach().float().cpu(), 1.0 - decay)
        self.updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {n: t.contiguous() for n, t in self.shadow.items()}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        if not self.is_main:
            return
        missing = set(self.shadow) ^ set(tensors)
        if missing:
            raise ValueError(f"EMA weights do not match the model: {sorted(missing)[:5]} ...")
        self.shadow = {n: t.float().clone() for n, t in tensors.items()}


class RawWeights:
    """The no-op EMA of `ema_decay=0`: its state is the model's current weights (fp32)."""

    def __init__(self, module: nn.Module, zero_stage: int, is_main: bool) -> None:
        self.module, self.zero_stage, self.is_main = module, zero_stage, is_main
        self.updates = 0

    def update(self, step: int) -> None:
        pass

    def state_dict(self) -> dict[str, torch.Tensor]:
        with full_parameters(self.module, self.zero_stage) as params:
            return {n: p.detach().float().cpu().clone() for n, p in params} if self.is_main else {}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        pass


def make_ema(module: nn.Module, decay: float, every_steps: int, zero_stage: int, is_main: bool) -> WeightAverage:
    if decay == 0.0:
        return RawWeights(module, zero_stage, is_main)
    return EMA(module, decay, every_steps, zero_stage, is_main)
