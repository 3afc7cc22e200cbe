"""DeepSpeed wrapping: the one place that builds the DeepSpeed config and wraps a plain module.

`init_distributed` joins whatever process group the launcher prepared (Ray Train and torchrun set
RANK / WORLD_SIZE / MASTER_ADDR) or makes a one-rank gloo group for a plain process, so the training
code is the same in all three. `wrap` turns a plain `nn.Module` into a DeepSpeed engine with ZeRO
stage 0-3, fp32 on CPU or bf16 on GPU, gradient accumulation, clipping and optional optimizer offload.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from reelforge.train.config import TrainerConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int  # global rank of this process
    world_size: int  # ranks in the job
    local_rank: int  # rank on this machine (picks the GPU)
    device: torch.device  # where this rank's model and batches live

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(kind: str, local_rank: int) -> torch.device:
    if kind == "cuda" or (kind == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("trainer.device=cuda but torch sees no GPU; use trainer.device=cpu or auto.")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_distributed(device_kind: str = "auto") -> DistInfo:
    """Join the launcher's process group (Ray Train, torchrun) or make a one-rank gloo group."""
    if not dist.is_initialized() and "RANK" not in os.environ:
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1",
                          MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_kind, local_rank)
    if device.type == "cpu":
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
        load_compiled_op("ShareMemCommBuilder")  # DeepSpeed's CPU allreduce; before it builds it unguarded
    import deepspeed

    # A group made by the launcher is kept; otherwise DeepSpeed makes one from the environment.
    deepspeed.init_distributed(dist_backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, device=device)


def load_compiled_op(builder_name: str) -> None:
    """Build (first time, ~1 min) or load one of DeepSpeed's JIT ops, safe against runs killed mid-build.

    torch's JIT build marks a build in progress with a `lock` file in the op's build folder; a process
    killed while building leaves it behind and every later DeepSpeed start waits on it forever. Here
    builds run under an fcntl lock, which the kernel releases when its holder dies: a `lock` file found
    while holding it belongs to a dead build and is removed. DeepSpeed then finds the op loaded.
    """
    import deepspeed.ops
    from deepspeed.accelerator import get_accelerator
    from torch.utils.cpp_extension import _get_build_directory

    builder = get_accelerator().create_op_builder(builder_name)
    if builder is None or not deepspeed.ops.__compatible_ops__.get(builder.NAME, False):
        return  # DeepSpeed will not use it either
    folder = _get_build_directory(builder.name, verbose=False)
    with open(os.path.join(folder, "reelforge.lock"), "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        stale = os.path.join(folder, "lock")
        if os.path.exists(stale):
            log.warning("removing %s, left by a build of %s that was killed", stale, builder.name)
            os.remove(stale)
        builder.load(verbose=False)


def precision_dtype(cfg: TrainerConfig, device: torch.device) -> torch.dtype:
    """bf16 on GPU and fp32 on CPU unless the config names one."""
    if cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return torch.float32


def deepspeed_config(cfg: TrainerConfig, micro_batch: int, world_size: int, device: torch.device) -> dict[str, Any]:
    """The DeepSpeed config dict of a trainer profile."""
    zero: dict[str, Any] = {"stage": cfg.zero_stage, "contiguous_gradients": (
        device.type == "cuda" if cfg.contiguous_gradients is None else cfg.contiguous_gradients)}
    if cfg.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": device.type == "cuda"}
    torch_adam = cfg.optimizer_impl == "torch"
    return {
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": cfg.grad_accum_steps,
        "train_batch_size": micro_batch * cfg.grad_accum_steps * world_size,
        "gradient_clipping": cfg.grad_clip,
        "optimizer": {"type": "AdamW", "params": {"lr": cfg.lr, "betas": list(cfg.betas), "eps": 1e-8,
                                                  "weight_decay": cfg.weight_decay, "torch_adam": torch_adam}},
        "zero_optimization": zero,
        "bf16": {"enabled": precision_dtype(cfg, device) == torch.bfloat16},
        # torch's AdamW with ZeRO-Offload is slower than DeepSpeedCPUAdam but needs no compiled op.
        "zero_force_ds_cpu_optimizer": not torch_adam,
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }


def wrap(model: nn.Module, cfg: TrainerConfig, micro_batch: int, info: DistInfo) -> Any:
    """A DeepSpeed engine (forward, backward, step, save/load_checkpoint) around the plain `model`."""
    import deepspeed

    config = deepspeed_config(cfg, micro_batch, info.world_size, info.device)
    model = model.to(info.device)
    engine, *_ = deepspeed.initialize(model=model, model_parameters=[p for p in model.parameters()
                                                                      if p.requires_grad], config=config)
    log.info("DeepSpeed engine: ZeRO-%d, %s, %d rank(s), micro-batch %d x %d accumulation", cfg.zero_stage,
             "bf16" if config["bf16"]["enabled"] else "fp32", info.world_size, micro_batch, cfg.grad_accum_steps)
    return engine


def set_lr(engine: Any, lr: float) -> None:
    for group in engine.optimizer.param_groups:
        group["lr"] = lr


def peak_memory_gib(device: torch.device) -> float:
    """Peak memory of this rank: CUDA's allocator peak on GPU, the process's peak RSS on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1024**3
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB
