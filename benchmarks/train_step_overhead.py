"""Step time of the platform trainer against a plain PyTorch loop on the same model and batch, in one run.

Platform: `Trainer.train_step` (DeepSpeed ZeRO-2 engine on one gloo rank, fp32, the streaming loader
decoding real clips in `--loader-workers` worker processes, rectified-flow loss, clipping, LR schedule,
EMA, metrics). Baseline: the same DiT init, batch shape and loss with torch.optim.AdamW and
clip_grad_norm_ over one fixed in-memory batch (no data loading, no EMA). Rounds alternate between the
two and the medians are compared; overhead = platform / plain - 1, also without the loader's data wait, and
for the DeepSpeed engine alone on the fixed batch. The load average is recorded: on shared cores the
figures swing by tens of percent between rounds.
Writes benchmarks/results/train_step_overhead.json.

    python benchmarks/train_step_overhead.py --steps 20 --rounds 3 --batch 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).parent / "results" / "train_step_overhead.json"


def tiny_dataset(root: Path) -> Path:
    exe = str(Path(sys.executable).parent / "reelforge")
    videos, dataset = root / "videos", root / "dataset"
    for args in (["synth", f"output={videos}", "num_videos=16"],
                 ["ingest", f"input={videos}", f"output={dataset}", "ingest=debug"]):
        subprocess.run([exe, *args, "tracking.backend=none"], check=True, capture_output=True)
    return dataset


def platform_trainer(dataset: Path, output: Path, batch: int, workers: int) -> Any:
    from reelforge.train.config import TrainerConfig, TrainJobConfig
    from reelforge.train.engine import init_distributed
    from reelforge.train.loader import LoaderConfig
    from reelforge.train.models.dit import load_preset
    from reelforge.train.trainer import Trainer

    cfg = TrainJobConfig(dataset=str(dataset), output=str(output), model=load_preset("debug"),
                         loader=LoaderConfig(batch_size=batch, buckets=["8x16x16"], num_workers=workers),
                         trainer=TrainerConfig(max_steps=10**6, zero_stage=2, device="cpu", warmup_steps=0,
                                               ema_decay=0.999, log_every_steps=10**6, checkpoint_every_steps=0))
    return Trainer(cfg, init_distributed("cpu"))


def time_platform(trainer: Any, steps: int) -> tuple[float, float]:
    """(seconds per step, data-wait seconds per step)."""
    trainer.loader.take_wait()
    waits, t0 = 0.0, time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
        waits += trainer.metrics.wait_s
        trainer.metrics.wait_s = 0.0
    return (time.perf_counter() - t0) / steps, waits / steps


def plain_loop(batch: dict[str, torch.Tensor]) -> Any:
    from reelforge.train.diffusion import RectifiedFlow, RectifiedFlowConfig
    from reelforge.train.models.dit import DiT, load_preset

    torch.manual_seed(0)
    model = DiT(load_preset("debug"))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    flow, gen = RectifiedFlow(RectifiedFlowConfig()), torch.Generator().manual_seed(0)

    def step() -> None:
        out = flow.training_loss(model, batch["video"], batch["text"], batch["text_mask"], generator=gen)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return step


def engine_loop(batch: dict[str, torch.Tensor], engine: Any) -> Any:
    """The platform's DeepSpeed engine alone on the same fixed batch: the engine's share of the overhead."""
    from reelforge.train.diffusion import RectifiedFlow, RectifiedFlowConfig

    flow, gen = RectifiedFlow(RectifiedFlowConfig()), torch.Generator().manual_seed(0)

    def step() -> None:
        out = flow.training_loss(engine, batch["video"], batch["text"], batch["text_mask"], generator=gen)
        engine.backward(out.loss)
        engine.step()

    return step


def time_plain(step: Any, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--loader-workers", type=int, default=1)
    parser.add_argument("--dataset", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="reelforge-bench-"))
    dataset = args.dataset or tiny_dataset(root)
    trainer = platform_trainer(dataset, root / "run", args.batch, args.loader_workers)
    batch = next(trainer.loader)
    plain, engine = plain_loop(batch), engine_loop(batch, trainer.engine)
    time_platform(trainer, 3)  # warm-up (and the loader workers' start)
    time_plain(plain, 3)
    runs: dict[str, list[float]] = {"platform": [], "platform_wait": [], "engine_only": [], "plain": []}
    for _ in range(args.rounds):
        step_s, wait_s = time_platform(trainer, args.steps)
        runs["platform"].append(step_s)
        runs["platform_wait"].append(wait_s)
        runs["plain"].append(time_plain(plain, args.steps))
        runs["engine_only"].append(time_plain(engine, args.steps))
    med = {k: statistics.median(v) for k, v in runs.items()}
    t0 = time.perf_counter()
    for i in range(10):
        trainer.ema.update(i)
    ema_s = (time.perf_counter() - t0) / 10
    result = {
        "workload": f"DiT debug preset, {args.batch} clips of 8x16x16 per step, fp32, {args.threads} torch thread(s), "
                    f"{args.loader_workers} loader worker(s)",
        "host": platform.node(), "cpu": platform.processor() or platform.machine(), "rounds": args.rounds,
        "steps_per_round": args.steps, "median_step_s": med,
        "overhead_pct": 100 * (med["platform"] / med["plain"] - 1),
        "overhead_without_data_wait_pct": 100 * ((med["platform"] - med["platform_wait"]) / med["plain"] - 1),
        "engine_only_overhead_pct": 100 * (med["engine_only"] / med["plain"] - 1),
        "ema_update_s": ema_s, "load_average_1m": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=1))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
