"""The causal VAE's training objective: L1 reconstruction plus a weighted KL to a unit Gaussian.

Kept beside, not inside, the model file (model files hold modules only). The VAE trainer
(train/vae_task.py) calls `vae_loss` as the DiT trainer calls `RectifiedFlow.training_loss`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reelforge.train.models.causal_vae import CausalVAE


@dataclass
class VAELoss:
    loss: torch.Tensor  # () reconstruction + kl_weight * KL, to backpropagate
    reconstruction: torch.Tensor  # () mean absolute error per pixel, detached
    kl: torch.Tensor  # () KL per latent element, detached
    recon: torch.Tensor  # (B, 3, F, H, W) the reconstruction from a posterior sample, detached (for metrics)


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean over elements of KL(N(mean, exp(logvar)) || N(0, 1))."""
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).mean()


def vae_loss(vae: CausalVAE, x: torch.Tensor, kl_weight: float | None = None) -> VAELoss:
    """Loss of `vae` (a CausalVAE, or an engine wrapping one) on pixels x (B, 3, F, H, W) in [-1, 1];
    kl_weight defaults to the VAE config's."""
    weight = vae.cfg.kl_weight if kl_weight is None else kl_weight
    recon, mean, logvar = vae(x)
    rec = (recon.float() - x.float()).abs().mean()
    kl = kl_divergence(mean.float(), logvar.float())
    return VAELoss(loss=rec + weight * kl, reconstruction=rec.detach(), kl=kl.detach(), recon=recon.detach())
