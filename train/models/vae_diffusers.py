"""Pretrained video VAEs from diffusers (Wan 2.1, CogVideoX, HunyuanVideo) behind `VideoAutoencoder`.

Weights load only from a local folder (a diffusers model folder, or a pipeline folder with a
`vae/` subfolder). Latents come out normalised the way each model's DiT expects them: Wan 2.1 per
channel with its `latents_mean`/`latents_std`, CogVideoX and HunyuanVideo by `scaling_factor`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from reelforge.platform.config import ConfigError
from reelforge.train.models.vae import AutoencoderBase, VAEConfig, check_config

CLASSES = {"wan": "AutoencoderKLWan", "cogvideox": "AutoencoderKLCogVideoX", "hunyuan": "AutoencoderKLHunyuanVideo"}


def _compression(kind: str, config: dict) -> tuple[int, int, int]:
    """(latent channels, time compression, space compression) from a diffusers VAE config."""
    if kind == "wan":
        return (config["z_dim"], 2 ** sum(bool(t) for t in config["temperal_downsample"]),
                2 ** (len(config["dim_mult"]) - 1))
    if kind == "cogvideox":
        return (config["latent_channels"], int(config["temporal_compression_ratio"]),
                2 ** (len(config["block_out_channels"]) - 1))
    return (config["latent_channels"], int(config["temporal_compression_ratio"]),
            int(config["spatial_compression_ratio"]))


def _resolve(path: str) -> tuple[str, str | None]:
    root = Path(path)
    if (root / "config.json").is_file():
        return str(root), None
    if (root / "vae" / "config.json").is_file():
        return str(root), "vae"
    raise ConfigError(f"vae.path={path!r} holds no config.json (nor vae/config.json): point it at a local "
                      "diffusers VAE folder or a pipeline folder.")


class DiffusersAutoencoder(AutoencoderBase):
    """A frozen diffusers video VAE; encode returns normalised latents, decode takes them."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        check_config(cfg)
        import diffusers

        assert cfg.path is not None  # check_config requires it for these kinds
        folder, subfolder = _resolve(cfg.path)
        cls = getattr(diffusers, CLASSES[cfg.kind])
        self.model = cls.from_pretrained(folder, subfolder=subfolder, local_files_only=True)
        self.model.eval().requires_grad_(False)
        self.sample_posterior, self.kind = cfg.sample_posterior, cfg.kind
        config = dict(self.model.config)
        self.latent_channels, self.time_compression, self.space_compression = _compression(cfg.kind, config)
        if cfg.kind == "wan":  # per-channel statistics instead of one scale
            mean = torch.tensor(config["latents_mean"], dtype=torch.float32).view(1, -1, 1, 1, 1)
            std = torch.tensor(config["latents_std"], dtype=torch.float32).view(1, -1, 1, 1, 1)
            if mean.shape[1] != self.latent_channels:
                raise ConfigError(f"{cfg.path}: latents_mean has {mean.shape[1]} entries for z_dim="
                                  f"{self.latent_channels}; fix the VAE's config.json.")
        else:
            # CogVideoX's config has no shift_factor (or a null one): its latents are not shifted.
            mean = torch.full((1, 1, 1, 1, 1), float(config["shift_factor"] if "shift_factor" in config
                                                     and config["shift_factor"] is not None else 0.0))
            std = torch.full((1, 1, 1, 1, 1), 1.0 / float(config["scaling_factor"]))
        self.register_buffer("latents_mean", mean, persistent=False)
        self.register_buffer("latents_std", std, persistent=False)
        # One-number summaries for the interface; Wan's real normalisation is per channel (above).
        self.scaling_factor, self.shift_factor = float((1.0 / std).mean()), float(mean.mean())

    def normalize(self, raw: torch.Tensor) -> torch.Tensor:
        return (raw - self.latents_mean.to(raw.dtype)) / self.latents_std.to(raw.dtype)

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.latents_std.to(z.dtype) + self.latents_mean.to(z.dtype)

    def check_input_size(self, frames: int, height: int, width: int) -> None:
        super().check_input_size(frames, height, width)
        # CogVideoX's decoder keeps the first frame single only for an odd number of latent frames.
        if self.kind == "cogvideox" and (frames - 1) // self.time_compression % 2:
            raise ValueError(f"CogVideoX's VAE needs an odd number of latent frames: {frames} frames give "
                             f"{1 + (frames - 1) // self.time_compression}; use 1 + a multiple of "
                             f"{2 * self.time_compression} frames (e.g. 49).")

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, F, H, W) in [-1, 1] -> normalised (B, C, T, h, w)."""
        self.check_input_size(*x.shape[2:])
        dist = self.model.encode(x.to(self.model.dtype)).latent_dist
        raw = dist.sample() if self.sample_posterior else dist.mode()
        return self.normalize(raw.float())

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised (B, C, T, h, w) -> (B, 3, F, H, W) in about [-1, 1]."""
        return self.model.decode(self.denormalize(z.float()).to(self.model.dtype)).sample.float()

    def enable_tiling(self) -> None:
        """diffusers' own spatial tiling (and temporal chunking where the class has it) for large videos."""
        self.model.enable_tiling()
