"""The `train` job's second task, `task=vae`: the causal video VAE (vae=causal_tiny, vae=causal) on ingested shards.

`reelforge train dataset=DATA output=RUN task=vae vae=causal_tiny loader.buckets=[9x32x32]` (or
experiment=vae_tiny) runs the DiT's machinery unchanged: DeepSpeed ZeRO 0-3, one process / torchrun /
Ray Train, checkpoints with EMA weights, train state and loader position, `trainer.resume=auto`.
`VAETrainer` swaps what is trained and measured: the objective is train/models/vae_loss.py (L1 +
kl_weight * KL, from a posterior sample); metrics add `loss/reconstruction`, `loss/kl` and `psnr_db` (of
the training reconstructions; `throughput/tokens_per_s` counts latent positions, `throughput/tflops_per_s`
the convolutions, 3x their forward FLOPs); and every `trainer.sample_every_steps` the EMA weights
reconstruct fixed clips, written original | reconstruction side by side. A DiT run uses the result
with `vae=<same preset> vae.path=RUN` (train/models/vae.py `resolve_weights`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from reelforge.platform import storage
from reelforge.platform.tracking import Tracker
from reelforge.train.config import TrainJobConfig
from reelforge.train.ema import WeightAverage
from reelforge.train.engine import DistInfo
from reelforge.train.loader import StreamLoader
from reelforge.train.metrics import MetricLogger
from reelforge.train.models.causal_vae import CausalVAE
from reelforge.train.models.vae import AutoencoderBase, IdentityAutoencoder, build_autoencoder
from reelforge.train.models.vae_loss import vae_loss
from reelforge.train.periodic import NoSampler
from reelforge.train.trainer import Reporter, Trainer

log = logging.getLogger("reelforge.train")
# Figures logged besides the loss, each the mean over the interval's clips.
PARTS = ("loss/reconstruction", "loss/kl", "psnr_db")


def psnr_db(recon: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    """(B,) PSNR in dB of reconstructions clamped to [-1, 1] against the clips (B, 3, F, H, W); peak-to-peak is 2."""
    mse = (recon.float().clamp(-1, 1) - video.float()).square().flatten(1).mean(1)
    return 10.0 * torch.log10(4.0 / mse.clamp_min(1e-10))


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(3, F, H, W) in [-1, 1] -> (F, H, W, 3) uint8."""
    return ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).cpu().numpy()


class ConvFlops:
    """Forward FLOPs (2 x multiply-adds) of every Conv3d call in a module, counted by forward hooks.

    Reads only the module's attributes and the output's size, so it also holds under ZeRO-3, where
    the weight is partitioned again by the time a forward hook runs.
    """

    def __init__(self, module: nn.Module) -> None:
        self.total = 0.0
        for m in module.modules():
            if isinstance(m, nn.Conv3d):
                m.register_forward_hook(self._count)

    def _count(self, m: nn.Module, inputs: Any, out: torch.Tensor) -> None:
        assert isinstance(m, nn.Conv3d)
        self.total += 2.0 * out.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)

    def take(self) -> float:
        total, self.total = self.total, 0.0
        return total


class ReconstructionSampler:
    """Every `sample_every_steps` steps (and at the end): EMA weights reconstruct fixed clips on rank 0.

    The clips are the first batch of a one-rank loader with the run's seed, so every sample and a
    resumed run show the same ones. Each goes to <run>/samples/step_NNNNNNN/NNN.mp4 (original |
    reconstruction) with a JSON sidecar, and to the tracker as `samples/NNN`; summary.json there holds
    the mean PSNR and the raw latents' mean and std (set vae.scaling_factor to 1/std and
    vae.shift_factor to the mean before a DiT trains in these latents). All ranks call `maybe`.
    """

    def __init__(self, cfg: TrainJobConfig, info: DistInfo, tracker: Tracker) -> None:
        self.cfg, self.info, self.tracker = cfg, info, tracker
        self.every_steps = cfg.trainer.sample_every_steps
        self.model: CausalVAE | None = None
        self.clips: dict[str, Any] = {}

    def fixed_clips(self) -> dict[str, Any]:
        loader = StreamLoader(self.cfg.dataset, dataclasses.replace(self.cfg.loader, num_workers=0),
                              self.cfg.trainer.seed)
        return next(loader)

    @torch.no_grad()
    def maybe(self, step: int, ema: WeightAverage, last: bool) -> None:
        if step % self.every_steps and not last:
            return
        weights = ema.state_dict()  # collective under ZeRO-3
        if not self.info.is_main:
            return
        # Building the model and a sampled posterior draw from torch's RNG: leave the training stream as it
        # was, so a run resumed from a checkpoint of this step goes on with the same numbers.
        with torch.random.fork_rng(devices=[self.info.device] if self.info.device.type == "cuda" else []):
            self.render(step, weights)

    def render(self, step: int, weights: dict[str, torch.Tensor]) -> None:
        from reelforge.data.video import EncodeSettings, encode_mp4

        if self.model is None:
            self.model = CausalVAE(self.cfg.vae).to(self.info.device).eval()
            self.clips = self.fixed_clips()
        self.model.load_state_dict(weights)
        name = f"step_{step:07d}"
        folder = storage.join(self.cfg.output or "", "samples", name)
        local = os.path.join(self.cfg.output or "", "samples", name) if storage.is_local(folder) else None
        scores, raws = [], []
        for i, key in enumerate(self.clips["keys"]):
            clip = self.clips["video"][i:i + 1].to(self.info.device)  # (1, 3, F, H, W)
            z = self.model.encode(clip)  # (1, C, T, h, w), normalised as vae.scaling/shift_factor say
            recon = self.model.decode(z)  # (1, 3, F, H, W)
            raws.append(self.model.denormalize(z).flatten().float().cpu())
            score = float(psnr_db(recon, clip)[0])
            scores.append(score)
            side_by_side = torch.cat((clip[0], recon[0]), dim=-1)  # (3, F, H, 2W)
            uri = storage.join(folder, f"{i:03d}.mp4")
            storage.write_bytes(uri, encode_mp4(to_uint8(side_by_side), EncodeSettings(fps=8.0)))
            side = {"clip": key, "step": step, "psnr_db": score, "layout": "original | reconstruction",
                    "frames": clip.shape[2], "height": clip.shape[3], "width": clip.shape[4]}
            storage.write_text(storage.join(folder, f"{i:03d}.json"), json.dumps(side, indent=1))
            if local is not None:
                self.tracker.log_video(f"samples/{i:03d}", os.path.join(local, f"{i:03d}.mp4"),
                                       f"{key}: original | reconstruction, {score:.1f} dB", step=step)
        raw = torch.cat(raws)
        stats = {"samples/psnr_db": sum(scores) / len(scores), "samples/latent_mean": float(raw.mean()),
                 "samples/latent_std": float(raw.std())}
        storage.write_text(storage.join(folder, "summary.json"), json.dumps({"step": step, **stats}, indent=1))
        self.tracker.log(stats, step=step)
        log.info("step %d: %d reconstructions in %s, %.2f dB", step, len(scores), folder, stats["samples/psnr_db"])


class VAETrainer(Trainer):
    """`Trainer` with the causal VAE as the trained module, its loss, metrics and reconstruction samples."""

    def __init__(self, cfg: TrainJobConfig, info: DistInfo, tracker: Tracker | None = None,
                 reporter: Reporter | None = None, resume_from: str | None = None) -> None:
        # The VAE learns from pixels: precomputed latents and caption tokens in the shards are never read.
        loader = dataclasses.replace(cfg.loader, use_latents=False, use_text_tokens=False)
        super().__init__(dataclasses.replace(cfg, loader=loader), info, tracker, reporter, resume_from)
        self.metrics = MetricLogger(self.tracker, self.t.log_every_steps, info.is_main, list(PARTS),
                                    self.t.peak_flops, self.metrics.record)
        self.metrics.mark(self.step)
        self.sampler = ReconstructionSampler(self.cfg, info, self.tracker) if self.t.sample_every_steps else NoSampler()
        self.flops = ConvFlops(self.engine.module)

    def build_model(self) -> nn.Module:
        model = build_autoencoder(self.cfg.vae)  # vae.path, when set, is where training starts from
        # torch's global RNG draws the posterior noise: one stream per rank (a resume restores it).
        torch.manual_seed(self.t.seed * 1_000_003 + self.info.rank)
        return model.train()

    def latent_autoencoder(self) -> AutoencoderBase:
        return IdentityAutoencoder()  # the VAE's input is pixels: nothing is encoded before it

    def model_meta(self) -> dict[str, Any]:
        return {"task": "vae", "vae": dataclasses.asdict(self.cfg.vae), "loader": dataclasses.asdict(self.cfg.loader),
                "step": self.step}

    def micro_step(self) -> None:
        batch = next(self.loader)
        wait = self.loader.take_wait()
        video = batch["video"].to(self.info.device, self.dtype)  # (B, 3, F, H, W) in [-1, 1]
        out = vae_loss(self.engine, video, self.cfg.vae.kl_weight)
        self.engine.backward(out.loss)
        self.engine.step()
        b = video.shape[0]
        parts = {"loss/reconstruction": (float(out.reconstruction) * b, b), "loss/kl": (float(out.kl) * b, b),
                 "psnr_db": (float(psnr_db(out.recon, video).sum()), b)}
        positions = math.prod(self.engine.module.latent_size(*video.shape[2:])) * b
        self.metrics.add(out.loss.detach().float().expand(b), parts, positions, 3.0 * self.flops.take(), wait)
        self.samples_seen += b * self.info.world_size
