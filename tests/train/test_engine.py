"""The DeepSpeed config built from a trainer profile (the engine itself runs in test_trainer and test_launch)."""

from __future__ import annotations

import torch

from reelforge.train.config import TrainerConfig
from reelforge.train.engine import deepspeed_config, precision_dtype

CPU, GPU = torch.device("cpu"), torch.device("cuda", 0)


def test_zero_stage_batch_and_clipping():
    ds = deepspeed_config(TrainerConfig(zero_stage=3, grad_accum_steps=4, grad_clip=0.5), 8, 2, CPU)
    assert ds["zero_optimization"] == {"stage": 3}
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"], ds["train_batch_size"]) == (8, 4, 64)
    assert ds["gradient_clipping"] == 0.5 and ds["optimizer"]["type"] == "AdamW"
    assert ds["optimizer"]["params"]["torch_adam"] is True


def test_precision_fp32_on_cpu_bf16_on_gpu():
    auto = TrainerConfig(precision="auto")
    assert precision_dtype(auto, CPU) == torch.float32 and precision_dtype(auto, GPU) == torch.bfloat16
    assert deepspeed_config(auto, 1, 1, CPU)["bf16"]["enabled"] is False
    assert deepspeed_config(auto, 1, 1, GPU)["bf16"]["enabled"] is True
    assert deepspeed_config(TrainerConfig(precision="fp32"), 1, 1, GPU)["bf16"]["enabled"] is False


def test_optimizer_offload():
    ds = deepspeed_config(TrainerConfig(zero_stage=2, offload_optimizer=True), 2, 1, CPU)
    assert ds["zero_optimization"]["offload_optimizer"] == {"device": "cpu", "pin_memory": False}
    assert ds["zero_force_ds_cpu_optimizer"] is False  # torch's AdamW, nothing to compile
    native = deepspeed_config(TrainerConfig(offload_optimizer=True, optimizer_impl="deepspeed"), 2, 1, GPU)
    assert native["zero_force_ds_cpu_optimizer"] is True and native["optimizer"]["params"]["torch_adam"] is False
