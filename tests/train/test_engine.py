"""The DeepSpeed config built from a trainer profile (the engine itself runs in test_trainer and test_launch)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from reelforge.train.config import TrainerConfig
from reelforge.train.engine import deepspeed_config, precision_dtype

CPU, GPU = torch.device("cpu"), torch.device("cuda", 0)


def test_zero_stage_batch_and_clipping():
    ds = deepspeed_config(TrainerConfig(zero_stage=3, grad_accum_steps=4, grad_clip=0.5), 8, 2, CPU)
    assert ds["zero_optimization"] == {"stage": 3, "contiguous_gradients": False}
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


def test_contiguous_gradients_on_gpu_only_unless_set():
    assert deepspeed_config(TrainerConfig(), 1, 1, CPU)["zero_optimization"]["contiguous_gradients"] is False
    assert deepspeed_config(TrainerConfig(), 1, 1, GPU)["zero_optimization"]["contiguous_gradients"] is True
    forced = TrainerConfig(contiguous_gradients=True)
    assert deepspeed_config(forced, 1, 1, CPU)["zero_optimization"]["contiguous_gradients"] is True


def test_a_build_lock_left_by_a_killed_run_does_not_hang_the_next(tmp_path):
    """torch's JIT build waits forever on a `lock` file a killed build left; load_compiled_op clears it."""
    import shutil
    import subprocess
    import sys

    from torch.utils.cpp_extension import _get_build_directory

    code = ("import os; os.environ['DS_ACCELERATOR'] = 'cpu'\n"
            "from reelforge.train.engine import load_compiled_op\n"
            "load_compiled_op('ShareMemCommBuilder')\n")
    built = Path(_get_build_directory("deepspeed_shm_comm", verbose=False))
    env = {**os.environ, "DS_ACCELERATOR": "cpu"}
    if not any(built.glob("*.so")):  # build it once where the trainer would (about a minute)
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=600)
    extensions = tmp_path / "torch_extensions"  # as TORCH_EXTENSIONS_DIR: op folders right under it
    shutil.copytree(built, extensions / built.name, ignore=shutil.ignore_patterns("lock", "reelforge.lock"))
    stale = extensions / built.name / "lock"
    stale.touch()
    done = subprocess.run([sys.executable, "-c", code], env={**env, "TORCH_EXTENSIONS_DIR": str(extensions)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not stale.exists() and "left by a build of deepspeed_shm_comm that was killed" in done.stderr
