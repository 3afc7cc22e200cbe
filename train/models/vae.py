"""Video autoencoders behind one interface, and the factory that builds one from `VAEConfig`.

Every autoencoder maps pixels (B, 3, F, H, W) in [-1, 1] to normalised latents (B, C, T, h, w)
with unit-ish variance (scaling and shift applied inside), and back. Time is compressed causally:
F = 1 + k * time_compression frames give T = 1 + k latent frames, so an image (F = 1) is a video.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from reelforge.platform.config import ConfigError, check_choice

KINDS = ("identity", "causal", "wan", "cogvideox", "hunyuan")
DIFFUSERS_KINDS = ("wan", "cogvideox", "hunyuan")


@dataclass
class VAEConfig:
    # "identity" (pixel space), "causal" (ours, train/models/causal_vae.py) or a diffusers
    # pretrained VAE: "wan" (Wan 2.1), "cogvideox", "hunyuan" (HunyuanVideo).
    kind: str = "identity"
    # Weights: a local diffusers model folder for wan/cogvideox/hunyuan (required); for causal, a local
    # .safetensors file or a `task=vae` run, its checkpoints/ or a step folder (EMA weights; pinned to
    # that step when a run starts), or null: randomly initialised, to train it.
    path: str | None = None
    # Causal VAE: latent channels.
    latent_channels: int = 16
    # Causal VAE: channels of the first level; level i has base_channels * channel_mults[i].
    base_channels: int = 64
    # Causal VAE: channel multiplier per level; len = log2(space_compression) + 1.
    channel_mults: list[int] = field(default_factory=lambda: [1, 2, 4, 4])
    # Causal VAE: residual blocks per level.
    num_res_blocks: int = 2
    # Causal VAE: frames per latent frame after the first (power of two, at most space_compression).
    time_compression: int = 4
    # Causal VAE: pixels per latent pixel along height and width (power of two).
    space_compression: int = 8
    # Causal VAE training: weight of the KL term against the per-pixel L1 reconstruction.
    kl_weight: float = 1e-6
    # Frames encoded per chunk after the first frame (a multiple of time_compression); 0 = whole clip.
    # Decoding uses chunk_frames / time_compression latent frames. Bounds activation memory on long videos.
    chunk_frames: int = 16
    # Causal VAE: side of the spatial tiles encode and decode work on, in pixels (a multiple of
    # space_compression); 0 = whole frames. Bounds activation memory at high resolution.
    tile_px: int = 0
    # Causal VAE: context around each tile, in pixels (multiple of space_compression), cropped after.
    # Tiles equal the whole-frame result once it covers the receptive field (about 80 px for causal_tiny).
    tile_halo_px: int = 64
    # Causal VAE latent normalisation z = (raw - shift_factor) * scaling_factor: the scale (diffusers
    # kinds read theirs from the model's config).
    scaling_factor: float = 1.0
    # Causal VAE latent normalisation: the shift, in raw latent units.
    shift_factor: float = 0.0
    # Encode to a posterior sample instead of its mean (the mean is deterministic).
    sample_posterior: bool = False


@runtime_checkable
class VideoAutoencoder(Protocol):
    latent_channels: int
    time_compression: int
    space_compression: int
    scaling_factor: float
    shift_factor: float

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...  # (B, 3, F, H, W) -> (B, C, T, h, w) normalised
    def decode(self, z: torch.Tensor) -> torch.Tensor: ...  # normalised (B, C, T, h, w) -> (B, 3, F, H, W)
    def latent_size(self, frames: int, height: int, width: int) -> tuple[int, int, int]: ...


class AutoencoderBase(nn.Module):
    """Shared shape rules and latent normalisation; subclasses set the attributes of `VideoAutoencoder`."""

    latent_channels: int
    time_compression: int
    space_compression: int
    scaling_factor: float = 1.0
    shift_factor: float = 0.0

    def latent_size(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        self.check_input_size(frames, height, width)
        s = self.space_compression
        return 1 + (frames - 1) // self.time_compression, height // s, width // s

    def pixel_size(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Frames and pixels that `decode` returns for a latent of (T, h, w)."""
        s = self.space_compression
        return 1 + (frames - 1) * self.time_compression, height * s, width * s

    def check_input_size(self, frames: int, height: int, width: int) -> None:
        tc, s = self.time_compression, self.space_compression
        if (frames - 1) % tc or height % s or width % s:
            raise ValueError(f"video of {frames} frames at {height}x{width} does not fit this autoencoder: "
                             f"frames must be 1 + a multiple of {tc} and height, width multiples of {s}.")

    def normalize(self, raw: torch.Tensor) -> torch.Tensor:
        return (raw - self.shift_factor) * self.scaling_factor

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z / self.scaling_factor + self.shift_factor


class IdentityAutoencoder(AutoencoderBase):
    """Pixel space: the latent is the video itself, for tiny CPU recipes."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.latent_channels, self.time_compression, self.space_compression = channels, 1, 1

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z


def check_config(cfg: VAEConfig) -> None:
    check_choice(cfg.kind, KINDS, "vae.kind")
    if cfg.kind in DIFFUSERS_KINDS and not cfg.path:
        raise ConfigError(f"vae.path is required for vae.kind={cfg.kind!r}: set it to a local diffusers "
                          "model folder (config.json + diffusion_pytorch_model.safetensors).")
    if cfg.scaling_factor <= 0:
        raise ConfigError(f"vae.scaling_factor={cfg.scaling_factor} must be positive.")
    if cfg.kind != "causal":
        return
    for name in ("time_compression", "space_compression"):
        v = getattr(cfg, name)
        if v < 1 or v & (v - 1):
            raise ConfigError(f"vae.{name}={v} must be a power of two.")
    if cfg.time_compression > cfg.space_compression:
        raise ConfigError(f"vae.time_compression={cfg.time_compression} may not exceed "
                          f"vae.space_compression={cfg.space_compression}: each time halving shares a level.")
    levels = cfg.space_compression.bit_length()  # log2(space) + 1
    if len(cfg.channel_mults) != levels:
        raise ConfigError(f"vae.channel_mults={cfg.channel_mults} needs {levels} entries for "
                          f"space_compression={cfg.space_compression} (log2 + 1).")
    if cfg.chunk_frames < 0 or cfg.chunk_frames % cfg.time_compression:
        raise ConfigError(f"vae.chunk_frames={cfg.chunk_frames} must be 0 or a multiple of "
                          f"vae.time_compression={cfg.time_compression}.")
    for name in ("tile_px", "tile_halo_px"):
        v = getattr(cfg, name)
        if v < 0 or v % cfg.space_compression:
            raise ConfigError(f"vae.{name}={v} must be 0 or a multiple of vae.space_compression={cfg.space_compression}.")
    if min(cfg.latent_channels, cfg.base_channels, cfg.num_res_blocks, *cfg.channel_mults) < 1:
        raise ConfigError("vae.latent_channels, base_channels, num_res_blocks and channel_mults must be positive.")


# The fields that fix the causal VAE's parameters; the others (chunking, tiling, latent normalisation,
# kl_weight, sampling) may differ between the run that trained it and a run that loads it.
ARCHITECTURE_FIELDS = ("latent_channels", "base_channels", "channel_mults", "num_res_blocks", "time_compression",
                       "space_compression")


def resolve_weights(cfg: VAEConfig) -> str:
    """What a causal `vae.path` names: a .safetensors file as given, or the step folder of a `task=vae`
    checkpoint (a run folder means its latest), after checking its model.json has this architecture."""
    assert cfg.kind == "causal" and cfg.path
    if cfg.path.endswith(".safetensors"):
        return cfg.path
    from reelforge.train import checkpoint as ckpt

    try:
        folder = ckpt.resolve(cfg.path)
        meta = ckpt.read_model_meta(folder)
    except ckpt.CheckpointError as err:
        raise ConfigError(f"vae.path={cfg.path!r} is neither a .safetensors file nor a checkpoint of a task=vae "
                          f"run: {err}") from err
    if meta.get("task") != "vae":
        raise ConfigError(f"vae.path={cfg.path!r} is a checkpoint of a DiT run, which holds no trained VAE: point "
                          "it at a run trained with task=vae (or at its checkpoints/step_NNNNNNN folder).")
    for name in ("kind", *ARCHITECTURE_FIELDS):
        if meta["vae"][name] != getattr(cfg, name):
            raise ConfigError(f"vae.path={cfg.path!r} holds a VAE with vae.{name}={meta['vae'][name]}, but this run "
                              f"has vae.{name}={getattr(cfg, name)}: use the vae= preset that run trained (see "
                              f"{folder}/model.json) or set vae.{name}={meta['vae'][name]}.")
    return folder


def load_causal_weights(cfg: VAEConfig) -> dict[str, torch.Tensor]:
    """The causal VAE weights `vae.path` names (safetensors only: nothing is unpickled)."""
    where = resolve_weights(cfg)
    if where.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(where)
    from reelforge.train import checkpoint as ckpt

    return ckpt.load_weights(where)


def build_autoencoder(cfg: VAEConfig) -> AutoencoderBase:
    """The autoencoder `cfg` names, in eval mode; causal weights load from `path` (see `resolve_weights`) when set."""
    check_config(cfg)
    if cfg.kind == "identity":
        return IdentityAutoencoder().eval()
    if cfg.kind == "causal":
        from reelforge.train.models.causal_vae import CausalVAE

        vae = CausalVAE(cfg)
        if cfg.path:
            vae.load_state_dict(load_causal_weights(cfg))
        return vae.eval()
    from reelforge.train.models.vae_diffusers import DiffusersAutoencoder

    return DiffusersAutoencoder(cfg).eval()
