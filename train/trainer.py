"""The `train` job: the video DiT on ingested shards, with DeepSpeed ZeRO, in one process or on Ray Train.

`reelforge train dataset=DATA output=RUN model=debug trainer=debug` trains in this process (one gloo
rank) when trainer.num_workers=1, or on `trainer.num_workers` Ray Train workers (train/launch.py, the
only module importing Ray). Under `torchrun`, `python -m reelforge.train.trainer KEY=VALUE ...` runs
the same `Trainer` on every rank. The loop is short: the checkpointer, metric logger, periodic sampler
and fault injector each decide their own cadence; a disabled one is a no-op object.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import math
import os
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from reelforge.platform import storage
from reelforge.platform.config import ConfigError
from reelforge.platform.logs import progress
from reelforge.platform.tracking import NoopTracker, Tracker
from reelforge.train import checkpoint as ckpt
from reelforge.train.config import TrainerConfig, TrainJobConfig, check
from reelforge.train.diffusion import RectifiedFlow
from reelforge.train.ema import make_ema
from reelforge.train.engine import DistInfo, init_distributed, peak_memory_gib, precision_dtype, set_lr, wrap
from reelforge.train.flops import dit_train_flops
from reelforge.train.loader import StreamLoader, describe
from reelforge.train.metrics import MetricLogger
from reelforge.train.models.dit import DiT
from reelforge.train.models.embed import patch_grid
from reelforge.train.models.vae import AutoencoderBase, build_autoencoder
from reelforge.train.periodic import FaultInjector, make_sampler
from reelforge.train.ulysses import new_sequence_group, parallel_layout

CONFIG = TrainJobConfig
__all__ = ["CONFIG", "Trainer", "check", "run", "train_worker"]
log = logging.getLogger("reelforge.train")
Reporter = Callable[[dict[str, Any], str], None]  # (metrics, checkpoint folder): Ray Train's report


def lr_at(cfg: TrainerConfig, step: int) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warmup, then constant or cosine."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return cfg.lr
    progress_ = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress_))))


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.numpy().tobytes()).decode("ascii")


def _unb64(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8).clone()


def resume_folder(cfg: TrainJobConfig) -> str | None:
    """The checkpoint `trainer.resume` asks for, or None to start fresh; refuses to overwrite with resume=never."""
    output = cfg.output or ""
    if cfg.trainer.resume == "never":
        if ckpt.latest(output) is not None:
            raise ConfigError(f"output={output!r} already has checkpoints and trainer.resume=never: use "
                              "trainer.resume=auto to continue it, or a new output folder.")
        return None
    folder = ckpt.latest(output) if cfg.trainer.resume == "auto" else ckpt.resolve(cfg.trainer.resume)
    if folder is not None:
        ckpt.read_state(folder)  # every file there, at its size
    return folder


class Trainer:
    """One rank's training: build, resume, loop, checkpoint; `fit` returns the summary."""

    def __init__(self, cfg: TrainJobConfig, info: DistInfo, tracker: Tracker | None = None,
                 reporter: Reporter | None = None, resume_from: str | None = None) -> None:
        self.cfg, self.t, self.info = cfg, cfg.trainer, info
        self.tracker = tracker or NoopTracker()
        self.reporter = reporter
        if self.t.torch_threads:
            torch.set_num_threads(self.t.torch_threads)
        torch.manual_seed(self.t.seed)  # the same init on every rank
        self.dtype = precision_dtype(self.t, info.device)
        # Ranks of one sequence-parallel group share a batch and noise: data and RNG follow the replica.
        self.layout = parallel_layout(info.rank, info.world_size, self.t.sequence_parallel)
        self.sequence_group = new_sequence_group(self.layout)
        self.engine = wrap(self.build_model(), self.t, cfg.loader.batch_size, info)
        self.flow = RectifiedFlow(cfg.diffusion)
        self.vae = self.latent_autoencoder()
        self.loader = StreamLoader(cfg.dataset, cfg.loader, self.t.seed, self.layout.dp_rank, self.layout.dp_size)
        self.generator = torch.Generator().manual_seed(self.t.seed * 1_000_003 + self.layout.dp_rank)
        self.ema = make_ema(self.engine.module, self.t.ema_decay, self.t.ema_every_steps, self.t.zero_stage,
                            info.is_main)
        self.checkpointer = ckpt.Checkpointer(cfg.output or "", self.t.checkpoint_every_steps,
                                              self.t.keep_checkpoints, info.rank)
        n = cfg.diffusion.loss_buckets
        buckets = [f"loss/t_{k / n:.1f}-{(k + 1) / n:.1f}" for k in range(n)]
        record = os.path.join(cfg.output, "metrics.jsonl") if cfg.output and storage.is_local(cfg.output) else None
        self.metrics = MetricLogger(self.tracker, self.t.log_every_steps, info.is_main, buckets, self.t.peak_flops,
                                    record)
        self.sampler = make_sampler(cfg, info, self.tracker)
        self.faults = FaultInjector(cfg.output or "", self.t.fail_at_step, info.is_main)
        self._encoder: Any = None
        self.step = self.samples_seen = 0
        self.resume(resume_from)

    # ---- what is trained (a task subclass overrides these: train/vae_task.py) ----
    def build_model(self) -> nn.Module:
        """The plain module the engine trains."""
        return DiT(self.cfg.model, self.sequence_group)

    def latent_autoencoder(self) -> AutoencoderBase:
        """The frozen autoencoder whose latents the model learns, on this rank's device."""
        return build_autoencoder(self.cfg.vae).to(self.info.device).eval()

    # ---- state ----
    def model_meta(self) -> dict[str, Any]:
        return {name: dataclasses.asdict(getattr(self.cfg, name))
                for name in ("model", "vae", "text_encoder", "diffusion", "loader")} | {"step": self.step}

    def rank_state(self) -> dict[str, Any]:
        np_state = np.random.get_state()
        state = {"loader": self.loader.state_dict(), "generator": _b64(self.generator.get_state()),
                 "torch": _b64(torch.get_rng_state()), "python": repr(random.getstate()),
                 "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}
        if self.info.device.type == "cuda":
            state["cuda"] = _b64(torch.cuda.get_rng_state(self.info.device))
        return state

    def load_rank_state(self, state: dict[str, Any]) -> None:
        import ast

        self.loader.load_state_dict(state["loader"])
        self.generator.set_state(_unb64(state["generator"]))
        torch.set_rng_state(_unb64(state["torch"]))
        random.setstate(ast.literal_eval(state["python"]))
        kind, keys, *rest = state["numpy"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
        if "cuda" in state and self.info.device.type == "cuda":
            torch.cuda.set_rng_state(_unb64(state["cuda"]), self.info.device)

    def resume(self, explicit: str | None) -> None:
        folder = explicit or resume_folder(self.cfg)
        if folder is None:
            return
        state = self.checkpointer.load(self.engine, folder)
        written = int(state.get("sequence_parallel", 1))  # checkpoints from before the key were all sp=1
        if written != self.layout.sp_size:
            raise ConfigError(f"{folder} was written with trainer.sequence_parallel={written}: resume with that value "
                              "(the loader positions and RNG are per data-parallel replica), or start a new output.")
        self.step, self.samples_seen = int(state["step"]), int(state["samples_seen"])
        self.ema.load_state_dict(ckpt.load_weights(folder) if self.info.is_main else {})
        self.ema.updates = int(state["ema_updates"])
        self.load_rank_state(state["ranks"][self.info.rank])
        self.metrics.mark(self.step)
        log.info("resumed from %s at step %d (%d samples seen)", folder, self.step, self.samples_seen)

    def save(self) -> str:
        weights = self.ema.state_dict()
        state = {"step": self.step, "samples_seen": self.samples_seen, "ema_updates": self.ema.updates,
                 "sequence_parallel": self.layout.sp_size}
        folder = self.checkpointer.save(self.engine, self.step, state, self.rank_state(), weights, self.model_meta())
        if self.reporter is not None:
            self.reporter(dict(self.metrics.last, step=self.step), folder)
        return folder

    # ---- one step ----
    def text_for(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        if "text" in batch:
            return batch["text"].to(self.info.device, self.dtype), batch["text_mask"].to(self.info.device)
        if self._encoder is None:
            from reelforge.train.models.text import CaptionEncoder

            self._encoder = CaptionEncoder(self.cfg.text_encoder)
        text, mask = self._encoder(batch["captions"], self.info.device)
        return text.to(self.dtype).clone(), mask.clone()  # clones leave the encoder's inference mode

    def micro_step(self) -> None:
        batch = next(self.loader)
        wait = self.loader.take_wait()
        video = batch["video"].to(self.info.device)
        with torch.no_grad():
            x0 = (video if batch["latent"] else self.vae.encode(video)).to(self.dtype)  # (B, C, T, H, W)
        text, mask = self.text_for(batch)
        out = self.flow.training_loss(self.engine, x0, text, mask, generator=self.generator)
        # Under sequence parallelism each rank's gradients are a share of its group's; DeepSpeed averages
        # over all ranks, so grad_scale (= sp) makes the result the mean over data-parallel replicas.
        self.engine.backward(out.loss * self.layout.grad_scale)
        self.engine.step()
        size = tuple(x0.shape[2:])
        # The ranks of a sequence-parallel group hold the same samples: each counts every sp-th of them.
        mine = slice(self.layout.sp_rank, None, self.layout.sp_size)
        per_sample, t = out.per_sample[mine], out.t[mine]
        tokens = math.prod(patch_grid(size, tuple(self.cfg.model.patch_size))) * per_sample.numel()
        flops = dit_train_flops(self.cfg.model, size, text.shape[1]) * per_sample.numel()
        self.metrics.add(per_sample, self.flow.bucket_losses(per_sample, t), tokens, flops, wait)
        self.samples_seen += x0.shape[0] * self.layout.dp_size

    def train_step(self) -> None:
        set_lr(self.engine, lr_at(self.t, self.step))
        for _ in range(self.t.grad_accum_steps):
            self.micro_step()
        self.step += 1
        self.ema.update(self.step)

    # ---- the loop ----
    def fit(self) -> dict[str, Any]:
        start, started = self.step, time.perf_counter()
        self.metrics.mark(self.step)
        for _ in progress(range(start, self.t.max_steps), total=self.t.max_steps - start, description="training"):
            self.train_step()
            last = self.step == self.t.max_steps
            norm = self.engine.get_global_grad_norm()
            self.metrics.after_step(self.step, float(norm or 0.0), lr_at(self.t, self.step - 1),
                                    peak_memory_gib(self.info.device), last)
            if self.checkpointer.due(self.step, last):
                self.save()
            self.sampler.maybe(self.step, self.ema, last)
            self.faults.maybe_fail(self.step)
        if self.step == start and start > 0:
            log.info("nothing to do: the checkpoint is at step %d = trainer.max_steps", start)
        summary = {"steps": self.step, "samples_seen": self.samples_seen, "resumed_from_step": start,
                   "train_seconds": round(time.perf_counter() - started, 2), **self.metrics.summary()}
        if self.info.is_main:
            self.tracker.summary(summary)
        return summary


def train_worker(cfg: TrainJobConfig, tracker: Tracker | None = None, reporter: Reporter | None = None,
                 resume_from: str | None = None) -> dict[str, Any]:
    """Train on this rank (plain process, torchrun rank or Ray Train worker); returns rank 0's summary."""
    info = init_distributed(cfg.trainer.device)
    trainer_cls = Trainer
    if cfg.task == "vae":
        from reelforge.train.vae_task import VAETrainer

        trainer_cls = VAETrainer
    trainer = trainer_cls(cfg, info, tracker if info.is_main else None, reporter, resume_from)
    summary = trainer.fit()
    dist.barrier()
    return summary


def run(cfg: TrainJobConfig, ctx: Any) -> dict[str, Any]:
    folder = resume_folder(cfg)  # a wrong resume= fails here, before any worker starts
    if folder is not None:
        ranks = int(ckpt.read_state(folder)["world_size"])
        if ranks != cfg.trainer.num_workers:
            raise ConfigError(f"{folder} was written by {ranks} ranks and this run has trainer.num_workers="
                              f"{cfg.trainer.num_workers}: resume with trainer.num_workers={ranks} (the optimizer "
                              "shards and loader positions are per rank), or start a new output folder.")
    info = describe(cfg.dataset)
    ctx.run.meta["dataset"] = {"path": cfg.dataset, **info}
    ctx.run.write_meta()
    ctx.tracker.summary({"dataset/manifest_sha256": info.get("manifest_sha256"),
                         "git/commit": ctx.run.meta["git"].get("commit")})
    t = cfg.trainer
    if t.launcher == "ray" or (t.launcher == "auto" and t.num_workers > 1):
        from reelforge.train.launch import run_ray

        return run_ray(cfg, ctx)
    if t.num_workers != 1 and "RANK" not in os.environ:
        raise ConfigError(f"trainer.launcher=process runs one rank here, but trainer.num_workers={t.num_workers}: "
                          "use launcher=auto (Ray Train) or start the ranks with torchrun.")
    summary = train_worker(cfg, ctx.tracker)
    dist.destroy_process_group()
    return summary


def main(argv: list[str] | None = None) -> None:
    """torchrun entry: `torchrun --nproc-per-node N -m reelforge.train.trainer dataset=... output=...`."""
    import sys

    from hydra import compose, initialize_config_dir

    from reelforge.platform import configcheck
    from reelforge.platform.cli import conf_dir
    from reelforge.platform.config import to_dataclass
    from reelforge.platform.logs import setup_logging

    configcheck.register_schema("train", CONFIG)
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        cfg = to_dataclass(compose("train", overrides=list(sys.argv[1:] if argv is None else argv)), CONFIG)
    cfg.output = cfg.output or os.path.join("reelforge-runs", "train")
    cfg.trainer.launcher = "process"
    check(cfg)
    setup_logging(cfg.log_level)
    storage.makedirs(cfg.output)
    train_worker(cfg)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
