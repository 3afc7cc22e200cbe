"""Rectified flow: the one diffusion process the trainer optimises and eval samples with.

Liu et al., "Flow Straight and Fast" (2022) and Esser et al., "Scaling Rectified Flow
Transformers" (SD3, 2024): x_t = (1 - t) x_0 + t eps runs in a straight line from data (t = 0) to
noise (t = 1); the model predicts the velocity eps - x_0. Training times are logit-normal and
shifted towards noise for larger latents, shift = base * sqrt(positions / base_positions), as
SD3 does for resolution and Open-Sora 2.0 for resolution and length. Sampling integrates the ODE
from t = 1 to 0 with Euler or Heun steps and classifier-free guidance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from reelforge.platform.config import ConfigError, check_choice


@dataclass
class RectifiedFlowConfig:
    # How training times are drawn: "logit_normal" (SD3) or "uniform" on [0, 1].
    timestep_sampling: str = "logit_normal"
    # Mean of the normal whose sigmoid is the logit-normal time (0 centres it at t = 0.5).
    logit_mean: float = 0.0
    # Standard deviation of that normal (1.0 as SD3).
    logit_std: float = 1.0
    # Time shift at `shift_base_positions`; 1.0 is no shift, larger spends more steps near noise.
    shift: float = 1.0
    # Latent positions (T*H*W of the latent) at which `shift` applies unscaled.
    shift_base_positions: int = 4096
    # Scale the shift by sqrt(positions / shift_base_positions) per sample (resolution and length).
    resolution_shift: bool = True
    # Upper bound on the resolution-dependent shift.
    max_shift: float = 12.0
    # Probability of dropping a caption in training (mask all False), for classifier-free guidance.
    caption_dropout: float = 0.1
    # Equal-width time buckets over [0, 1] for the per-bucket loss report.
    loss_buckets: int = 5
    # Sampler: "euler" (1 model call per step) or "heun" (2 per step, last step Euler).
    sampler: str = "euler"
    # Integration steps from noise to data.
    sample_steps: int = 30
    # Classifier-free guidance scale; 1.0 turns guidance off (one model call per evaluation).
    guidance_scale: float = 5.0
    # Fixed time shift for sampling; null uses the same resolution-dependent shift as training.
    sample_shift: float | None = None


def check_config(cfg: RectifiedFlowConfig) -> None:
    check_choice(cfg.timestep_sampling, ("logit_normal", "uniform"), "diffusion.timestep_sampling")
    check_choice(cfg.sampler, ("euler", "heun"), "diffusion.sampler")
    if cfg.logit_std <= 0:
        raise ConfigError(f"diffusion.logit_std={cfg.logit_std} must be positive.")
    if cfg.shift <= 0 or cfg.max_shift <= 0 or (cfg.sample_shift is not None and cfg.sample_shift <= 0):
        raise ConfigError("diffusion.shift, max_shift and sample_shift must be positive (1.0 means no shift).")
    if cfg.shift_base_positions < 1:
        raise ConfigError(f"diffusion.shift_base_positions={cfg.shift_base_positions} must be at least 1.")
    if not 0.0 <= cfg.caption_dropout < 1.0:
        raise ConfigError(f"diffusion.caption_dropout={cfg.caption_dropout} must be in [0, 1).")
    if cfg.loss_buckets < 1 or cfg.sample_steps < 1:
        raise ConfigError("diffusion.loss_buckets and diffusion.sample_steps must be at least 1.")


class VelocityModel(Protocol):
    def __call__(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                 sizes: torch.Tensor | None = None) -> torch.Tensor: ...


@dataclass
class FlowLoss:
    loss: torch.Tensor  # () mean over the batch, to backpropagate
    per_sample: torch.Tensor  # (B,) detached masked MSE of each sample
    t: torch.Tensor  # (B,) the times drawn


def shift_time(t: torch.Tensor, shift: torch.Tensor | float) -> torch.Tensor:
    """Warp t in [0, 1] towards noise: s t / (1 + (s - 1) t); keeps 0 and 1 fixed."""
    return shift * t / (1 + (shift - 1) * t)


def video_mask(sizes: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """(B, 1, T, H, W) float mask of each sample's real (T, H, W) region within a padded batch."""
    axes = [torch.arange(n, device=sizes.device)[None, :] < sizes[:, i:i + 1] for i, n in enumerate(shape)]
    mask = axes[0][:, :, None, None] & axes[1][:, None, :, None] & axes[2][:, None, None, :]
    return mask[:, None].float()


class RectifiedFlow:
    """Time sampling, noising, loss, per-bucket loss and samplers; holds no weights."""

    def __init__(self, cfg: RectifiedFlowConfig) -> None:
        check_config(cfg)
        self.cfg = cfg

    def shift_for(self, positions: torch.Tensor) -> torch.Tensor:
        """(B,) time shift for latents of `positions` (B,) = T*H*W each."""
        base = torch.full_like(positions, self.cfg.shift, dtype=torch.float32)
        if not self.cfg.resolution_shift:
            return base
        scaled = base * (positions.float() / self.cfg.shift_base_positions).sqrt()
        return scaled.clamp(max=self.cfg.max_shift)

    def sample_t(self, positions: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B,) training times for latents of `positions` (B,) each, drawn on the CPU for determinism."""
        n = positions.shape[0]
        if self.cfg.timestep_sampling == "uniform":
            t = torch.rand(n, generator=generator)
        else:
            t = torch.sigmoid(self.cfg.logit_mean + self.cfg.logit_std * torch.randn(n, generator=generator))
        return shift_time(t, self.shift_for(positions.cpu())).to(positions.device)

    @staticmethod
    def add_noise(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.view(-1, *([1] * (x0.ndim - 1))).to(x0.dtype)
        return (1 - t) * x0 + t * noise

    @staticmethod
    def velocity(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return noise - x0

    def drop_captions(self, text_mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Clear the whole mask of a random `caption_dropout` share of rows (the model's null caption)."""
        keep = torch.rand(text_mask.shape[0], generator=generator) >= self.cfg.caption_dropout
        return text_mask.bool() & keep.to(text_mask.device)[:, None]

    def training_loss(self, model: VelocityModel, x0: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                      sizes: torch.Tensor | None = None, generator: torch.Generator | None = None) -> FlowLoss:
        """Velocity MSE on latents x0 (B, C, T, H, W); padded regions (outside `sizes`) do not count.

        Noise, times and caption dropout come from `generator` on the CPU, so a seed fixes them on any device.
        """
        b, c, *shape = x0.shape
        full = torch.tensor(shape).expand(b, 3)
        sizes_cpu = full if sizes is None else sizes.cpu()
        t = self.sample_t(sizes_cpu.prod(dim=1), generator).to(x0.device)  # (B,)
        noise = torch.randn(x0.shape, generator=generator, dtype=torch.float32).to(x0.device, x0.dtype)
        mask = self.drop_captions(text_mask, generator)
        pred = model(self.add_noise(x0, noise, t), t, text, mask, sizes)  # (B, C, T, H, W)
        err = (pred.float() - self.velocity(x0, noise).float()).square()
        if sizes is None:
            per_sample = err.flatten(1).mean(dim=1)  # (B,)
        else:
            m = video_mask(sizes.to(x0.device), tuple(shape))  # (B, 1, T, H, W)
            per_sample = (err * m).flatten(1).sum(dim=1) / (m.flatten(1).sum(dim=1) * c)
        return FlowLoss(loss=per_sample.mean(), per_sample=per_sample.detach(), t=t.detach())

    def bucket_losses(self, per_sample: torch.Tensor, t: torch.Tensor) -> dict[str, tuple[float, int]]:
        """Per time bucket that has samples: (sum of losses, count), keyed `loss/t_0.0-0.2`; sums merge across steps."""
        n = self.cfg.loss_buckets
        idx = (t.detach().float().cpu() * n).long().clamp(0, n - 1)
        losses = per_sample.detach().float().cpu()
        out = {}
        for k in range(n):
            sel = idx == k
            if sel.any():
                out[f"loss/t_{k / n:.1f}-{(k + 1) / n:.1f}"] = (float(losses[sel].sum()), int(sel.sum()))
        return out

    def timesteps(self, steps: int, shift: torch.Tensor) -> torch.Tensor:
        """(steps + 1, B) times from 1 to 0, warped per sample by `shift` (B,)."""
        t = torch.linspace(1.0, 0.0, steps + 1)[:, None]
        return shift_time(t, shift[None, :])

    @torch.no_grad()
    def sample(self, model: VelocityModel, shape: tuple[int, ...], text: torch.Tensor, text_mask: torch.Tensor,
               seed: int, sizes: torch.Tensor | None = None, steps: int | None = None,
               guidance_scale: float | None = None, sampler: str | None = None,
               shift: float | None = None) -> torch.Tensor:
        """Float32 latents (B, C, T, H, W) = `shape` from seeded noise; unset arguments come from the config.

        The same seed gives the same noise on every device (drawn on the CPU). The ODE is integrated in
        float32; the model is called in the dtype of `text`.
        """
        steps = steps or self.cfg.sample_steps
        scale = self.cfg.guidance_scale if guidance_scale is None else guidance_scale
        sampler = sampler or self.cfg.sampler
        check_choice(sampler, ("euler", "heun"), "sampler")
        device = text.device
        b, _, *grid = shape
        positions = (torch.tensor(grid).expand(b, 3) if sizes is None else sizes.cpu()).prod(dim=1)
        fixed = self.cfg.sample_shift if shift is None else shift
        shifts = self.shift_for(positions) if fixed is None else torch.full((b,), float(fixed))
        ts = self.timesteps(steps, shifts).to(device)  # (steps + 1, B)
        x = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(device)

        def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            x = x.to(text.dtype)
            if scale == 1.0:
                return model(x, t, text, text_mask, sizes).float()
            sz = None if sizes is None else torch.cat((sizes, sizes))
            both = model(torch.cat((x, x)), torch.cat((t, t)), torch.cat((text, text)),
                         torch.cat((text_mask.bool(), torch.zeros_like(text_mask, dtype=torch.bool))), sz)
            cond, uncond = both.float().chunk(2)
            return uncond + scale * (cond - uncond)

        view = (-1,) + (1,) * (len(shape) - 1)
        for i in range(steps):
            t, t_next = ts[i], ts[i + 1]
            dt = (t_next - t).view(view)
            v = velocity(x, t)
            if sampler == "heun" and i < steps - 1:
                v = 0.5 * (v + velocity(x + dt * v, t_next))
            x = x + dt * v
        return x
