"""Training metrics: summed over a log interval on every rank, reduced across ranks, logged by rank 0
(to the tracker, the console and, for a local run folder, `metrics.jsonl` at full precision).

Names carry units: `throughput/samples_per_s`, `throughput/tokens_per_s` (latent DiT tokens),
`throughput/tflops_per_s` (model FLOPs, train/flops.py), `time/data_wait_pct`, `memory/peak_gib`.
Losses are per-sample velocity MSE; `loss/t_a-b` is the mean over the samples whose time fell in that bucket.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist

from reelforge.platform.tracking import Tracker

log = logging.getLogger("reelforge.train")


class MetricLogger:
    """Collects per-step figures; every `every_steps` steps all ranks reduce them and rank 0 logs."""

    def __init__(self, tracker: Tracker, every_steps: int, is_main: bool, bucket_names: list[str],
                 peak_flops: float | None, record: str | None = None) -> None:
        self.tracker, self.every_steps, self.is_main = tracker, every_steps, is_main
        self.record = record  # a local JSONL file that gets every logged line at full precision, or None
        self.bucket_names, self.peak_flops = bucket_names, peak_flops
        self._last_logged = 0
        self.last: dict[str, float] = {}
        self._reset()

    def _reset(self) -> None:
        self.loss_sum = self.samples = self.tokens = self.flops = self.wait_s = 0.0
        self.buckets = {name: [0.0, 0.0] for name in self.bucket_names}
        self.started = time.perf_counter()

    def add(self, per_sample_loss: torch.Tensor, buckets: Mapping[str, tuple[float, int]], tokens: int,
            flops: float, wait_s: float) -> None:
        """One micro-batch's per-sample losses, bucket (sum, count), latent tokens, model FLOPs, data-wait seconds."""
        self.loss_sum += float(per_sample_loss.sum())
        self.samples += per_sample_loss.numel()
        self.tokens += tokens
        self.flops += flops
        self.wait_s += wait_s
        for name, (total, count) in buckets.items():
            self.buckets[name][0] += total
            self.buckets[name][1] += count

    def after_step(self, step: int, grad_norm: float, lr: float, peak_gib: float, last: bool) -> None:
        if step % self.every_steps and not last:
            return
        elapsed = time.perf_counter() - self.started
        local = [self.loss_sum, self.samples, self.tokens, self.flops, *[v for pair in self.buckets.values() for v in pair]]
        totals = torch.tensor(local, dtype=torch.float64)
        dist.all_reduce(totals)
        waits = torch.tensor([self.wait_s, peak_gib], dtype=torch.float64)
        dist.all_reduce(waits, op=dist.ReduceOp.MAX)
        loss_sum, samples, tokens, flops, *pairs = totals.tolist()
        metrics: dict[str, float] = {
            "loss": loss_sum / max(samples, 1.0), "grad_norm": grad_norm, "lr": lr,
            "throughput/samples_per_s": samples / elapsed, "throughput/tokens_per_s": tokens / elapsed,
            "throughput/tflops_per_s": flops / elapsed / 1e12,
            "time/data_wait_pct": 100.0 * waits[0].item() / elapsed, "time/step_s": elapsed / max(1, step - self._last_logged),
            "memory/peak_gib": waits[1].item(),
        }
        if self.peak_flops:
            world = dist.get_world_size()
            metrics["throughput/mfu"] = flops / elapsed / (self.peak_flops * world)
        for i, name in enumerate(self.bucket_names):
            total, count = pairs[2 * i], pairs[2 * i + 1]
            if count:
                metrics[name] = total / count
        self.last = metrics
        if self.is_main:
            self.tracker.log(metrics, step=step)
            if self.record is not None:
                with open(self.record, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"step": step, **metrics}) + "\n")
            log.info("step %d | loss %.4f | grad %.3f | lr %.2e | %.1f samples/s | %.3f TFLOP/s | data wait %.0f%% | "
                     "%.2f GiB", step, metrics["loss"], grad_norm, lr, metrics["throughput/samples_per_s"],
                     metrics["throughput/tflops_per_s"], metrics["time/data_wait_pct"], metrics["memory/peak_gib"])
        self._last_logged = step
        self._reset()

    def mark(self, step: int) -> None:
        """Start the interval at `step` (after a resume or a checkpoint, which are not timed)."""
        self._last_logged = step
        self._reset()

    def summary(self) -> dict[str, Any]:
        return dict(self.last)
