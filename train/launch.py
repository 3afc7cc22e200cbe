"""The Ray Train adapter (the only train module importing Ray): `trainer.num_workers` DeepSpeed ranks.

A `TorchTrainer` starts one worker per rank (1 CPU, or 1 GPU with NCCL) that runs
`trainer.train_worker`. Each checkpoint the trainer commits is reported to Ray Train as a small
pointer checkpoint ({"checkpoint": "<run>/checkpoints/step_NNNNNNN"}): the state itself stays in the
run folder. When a worker dies, Ray Train's failure handling (`trainer.max_failures`) restarts the
group, whose workers resume from the last reported checkpoint (or the folder's `latest`).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import Any

import torch

from reelforge.platform import storage
from reelforge.platform.tracking import Tracker, make_tracker
from reelforge.train.config import TrainJobConfig

log = logging.getLogger("reelforge.train")
POINTER = "reelforge_checkpoint.json"


def report_checkpoint(metrics: dict[str, Any], folder: str) -> None:
    """Ray Train report from every rank; rank 0 attaches a pointer to the committed checkpoint folder."""
    import ray.train

    if ray.train.get_context().get_world_rank() != 0:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, POINTER), "w", encoding="utf-8") as f:
            json.dump({"checkpoint": folder}, f)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))


def reported_checkpoint() -> str | None:
    """The checkpoint folder of the last report before a restart, or None on a first start."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder, open(os.path.join(folder, POINTER), encoding="utf-8") as f:
        return json.load(f)["checkpoint"]


def worker_loop(config: dict[str, Any]) -> None:
    """What each Ray Train worker runs."""
    import ray.train

    from reelforge.train.trainer import train_worker

    cfg: TrainJobConfig = config["cfg"]
    # Ray's worker log handler forwards records to the driver; ours would print each line twice.
    logging.getLogger("reelforge").setLevel(cfg.log_level.upper())
    torch.set_num_threads(cfg.trainer.torch_threads or int(os.environ.get("REELFORGE_TORCH_THREADS", "1")))
    rank = ray.train.get_context().get_world_rank()
    tracker: Tracker | None = None
    if rank == 0:
        tracker = make_tracker(cfg.tracking, job="train", run_name=f"train-{config['run_name']}",
                               local_dir=config["tracking_dir"], config=config["raw"])
    try:
        summary = train_worker(cfg, tracker, report_checkpoint, reported_checkpoint())
    finally:
        if tracker is not None:
            tracker.finish()
    if rank == 0:
        storage.write_text(storage.join(cfg.output or "", "train_summary.json"), json.dumps(summary, indent=1))


def run_ray(cfg: TrainJobConfig, ctx: Any) -> dict[str, Any]:
    """Train on `trainer.num_workers` Ray Train workers in the job's Ray session; returns rank 0's summary."""
    import dataclasses

    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    # Workers do not run in this folder: give them absolute local paths.
    cfg = dataclasses.replace(cfg, output=_abs(cfg.output or ""), dataset=_abs(cfg.dataset))
    use_gpu = cfg.trainer.device == "cuda" or (cfg.trainer.device == "auto" and torch.cuda.is_available())
    config = {"cfg": cfg, "run_name": ctx.run.name, "raw": dataclasses.asdict(cfg),
              "tracking_dir": os.path.join(ctx.run.local, "tracking-rank0")}
    with ctx.ray():
        trainer = TorchTrainer(
            worker_loop, train_loop_config=config,
            torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
            scaling_config=ScalingConfig(num_workers=cfg.trainer.num_workers, use_gpu=use_gpu,
                                         resources_per_worker={"GPU": 1} if use_gpu else {"CPU": 1}),
            run_config=RunConfig(name="ray-train", storage_path=_abs(storage.join(cfg.output or "", "ray")),
                                 failure_config=FailureConfig(max_failures=cfg.trainer.max_failures)),
        )
        result = trainer.fit()
    summary = json.loads(storage.read_text(storage.join(cfg.output or "", "train_summary.json")))
    summary["ray_checkpoint"] = None if result.checkpoint is None else result.checkpoint.path
    log.info("Ray Train finished: %d steps on %d workers", summary["steps"], cfg.trainer.num_workers)
    return summary


def _abs(uri: str) -> str:
    return uri if "://" in uri else os.path.abspath(uri)
