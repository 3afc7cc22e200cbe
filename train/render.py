"""Turning prompts into videos with a trained DiT: shared by the trainer's periodic samples and `sample`.

The model, autoencoder and process are rebuilt from a checkpoint's model.json and its EMA weights
(safetensors), so nothing is unpickled; the same seed gives the same noise on every device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from reelforge.train.diffusion import RectifiedFlow, RectifiedFlowConfig
from reelforge.train.models.dit import DiT, DiTConfig
from reelforge.train.models.text import CaptionEncoder, TextEncoderConfig
from reelforge.train.models.vae import VAEConfig, build_autoencoder


@dataclass
class RenderSettings:
    frames: int  # video frames
    height: int  # pixels
    width: int  # pixels
    steps: int  # sampler steps
    guidance_scale: float  # classifier-free guidance (1.0 is none)
    sampler: str  # "euler" or "heun"
    seed: int  # noise seed of the first prompt; prompt i uses seed + i


def _typed(cls: type, values: dict[str, Any]) -> Any:
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), values))


class Renderer:
    """A plain DiT with given weights, its autoencoder, text encoder and rectified flow, in eval mode."""

    def __init__(self, model_meta: dict[str, Any], weights: dict[str, torch.Tensor], device: str = "cpu",
                 encoder: CaptionEncoder | None = None) -> None:
        self.model_cfg: DiTConfig = _typed(DiTConfig, model_meta["model"])
        self.model = DiT(self.model_cfg)
        self.model.load_state_dict(weights)
        self.model.to(device).eval()
        self.vae = build_autoencoder(_typed(VAEConfig, model_meta["vae"])).to(device).eval()
        self.flow = RectifiedFlow(_typed(RectifiedFlowConfig, model_meta["diffusion"]))
        self.encoder = encoder or CaptionEncoder(_typed(TextEncoderConfig, model_meta["text_encoder"]))
        self.device = device

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(weights)

    @torch.no_grad()
    def render(self, prompt: str, s: RenderSettings, index: int = 0) -> np.ndarray:
        """uint8 frames (T, H, W, 3) for one prompt, with noise seed `s.seed + index`."""
        text, mask = self.encoder([prompt], self.device)  # (1, L, D), (1, L)
        latent = self.vae.latent_size(s.frames, s.height, s.width)
        shape = (1, self.model_cfg.in_channels, *latent)
        z = self.flow.sample(self.model, shape, text.float(), mask, seed=s.seed + index, steps=s.steps,
                             guidance_scale=s.guidance_scale, sampler=s.sampler)
        video = self.vae.decode(z)[0]  # (3, T, H, W) in [-1, 1]
        return ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).cpu().numpy()
