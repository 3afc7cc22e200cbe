"""Spacetime patches, 3D rotary position embeddings and timestep embeddings for the video DiT.

Positions are never a learned table: each token's (t, h, w) grid index rotates its queries and
keys (RoPE, Su et al. 2021, split across the three axes as in HunyuanVideo and Wan 2.1), so one
model takes any T, H, W and attention scores depend only on relative offsets. Optionally the same
index also adds fixed sin-cos features to each token (`sincos_3d`, as Latte, Open-Sora 1.x and
CogVideoX-2B), which tells a token where in the clip it is: which frame, how far from the edges.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def patch_grid(size: tuple[int, int, int], patch: tuple[int, int, int]) -> tuple[int, int, int]:
    """Tokens along (t, h, w) for a latent of `size`, padding each axis up to a patch multiple."""
    return tuple(-(-s // p) for s, p in zip(size, patch, strict=True))  # type: ignore[return-value]


def pad_to_patches(x: torch.Tensor, patch: tuple[int, int, int]) -> torch.Tensor:
    """Zero-pad (B, C, T, H, W) at the end of T, H and W up to multiples of the patch size."""
    t, h, w = x.shape[-3:]
    gt, gh, gw = patch_grid((t, h, w), patch)
    pads = (0, gw * patch[2] - w, 0, gh * patch[1] - h, 0, gt * patch[0] - t)
    return F.pad(x, pads) if any(pads) else x


def patchify(x: torch.Tensor, patch: tuple[int, int, int]) -> torch.Tensor:
    """(B, C, T, H, W) with T, H, W multiples of `patch` -> (B, N, C*pt*ph*pw), N in (t, h, w) order."""
    b, c, t, h, w = x.shape
    pt, ph, pw = patch
    x = x.reshape(b, c, t // pt, pt, h // ph, ph, w // pw, pw)
    x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)  # (B, gt, gh, gw, C, pt, ph, pw)
    return x.reshape(b, (t // pt) * (h // ph) * (w // pw), c * pt * ph * pw)


def unpatchify(x: torch.Tensor, grid: tuple[int, int, int], patch: tuple[int, int, int], channels: int) -> torch.Tensor:
    """Inverse of `patchify`: (B, N, C*pt*ph*pw) -> (B, C, gt*pt, gh*ph, gw*pw)."""
    b = x.shape[0]
    gt, gh, gw = grid
    pt, ph, pw = patch
    x = x.reshape(b, gt, gh, gw, channels, pt, ph, pw)
    x = x.permute(0, 4, 1, 5, 2, 6, 3, 7)  # (B, C, gt, pt, gh, ph, gw, pw)
    return x.reshape(b, channels, gt * pt, gh * ph, gw * pw)


def token_mask(sizes: torch.Tensor, grid: tuple[int, int, int], patch: tuple[int, int, int]) -> torch.Tensor:
    """(B, N) bool: True where a token's patch overlaps the sample's real (T, H, W) region in `sizes` (B, 3)."""
    axes = []
    for i in range(3):
        valid = -(-sizes[:, i] // patch[i])  # (B,) tokens along axis i
        axes.append(torch.arange(grid[i], device=sizes.device)[None, :] < valid[:, None])  # (B, g_i)
    mask = axes[0][:, :, None, None] & axes[1][:, None, :, None] & axes[2][:, None, None, :]
    return mask.flatten(1)


def grid_positions(grid: tuple[int, int, int], device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, 3) float (t, h, w) indices of each token, in patchify order."""
    axes = [torch.arange(g, device=device, dtype=torch.float32) for g in grid]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)


def rope_axis_dims(head_dim: int, time_fraction: float) -> tuple[int, int, int]:
    """Even numbers of head channels rotated by the t, h and w positions; any rest stays unrotated."""
    dt = 2 * int(head_dim * time_fraction / 2)
    dh = 2 * ((head_dim - dt) // 4)
    return dt, dh, dh


def axis_frequencies(width: int, theta: float) -> torch.Tensor:
    """(width/2,) float64 angular frequencies theta^(-i / (width/2)) of one axis's channel pairs (RoPE's)."""
    return theta ** (-torch.arange(0, width, 2, dtype=torch.float64) / width)


def sincos_3d(positions: torch.Tensor, dim: int, time_fraction: float, theta: float) -> torch.Tensor:
    """(N, 3) (t, h, w) positions -> (N, dim) fixed features: per axis, sines and cosines of the position
    at RoPE's frequencies (`axis_frequencies`); the axes split `dim` as RoPE splits a head (`rope_axis_dims`)."""
    feats = []
    for axis, width in enumerate(rope_axis_dims(dim, time_fraction)):
        freqs = axis_frequencies(width, theta).float().to(positions.device)  # (width/2,)
        angles = positions[:, axis:axis + 1].float() * freqs[None, :]  # (N, width/2)
        feats += [angles.sin(), angles.cos()]
    out = torch.cat(feats, dim=-1)  # (N, dt + 2 dh)
    return F.pad(out, (0, dim - out.shape[-1]))


class Rope3D(nn.Module):
    """Rotary angles for 3D positions: channel pairs split into time, height and width groups."""

    def __init__(self, head_dim: int, time_fraction: float, theta: float) -> None:
        super().__init__()
        self.dims = rope_axis_dims(head_dim, time_fraction)
        freqs = [axis_frequencies(d, theta) for d in self.dims]
        self.register_buffer("freqs", torch.cat(freqs).float(), persistent=False)  # (sum(dims)/2,)
        self.splits = [d // 2 for d in self.dims]

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3) positions -> cos, sin of shape (N, R) with R = rotated pairs."""
        per_axis = torch.split(self.freqs, self.splits)
        angles = torch.cat([positions[:, i:i + 1] * f[None, :] for i, f in enumerate(per_axis)], dim=-1)
        return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (2i, 2i+1) of (B, H, N, Dh) by per-token angles; channels past 2R pass through."""
    r2 = 2 * cos.shape[-1]
    rot, rest = x[..., :r2].float(), x[..., r2:]
    even, odd = rot[..., 0::2], rot[..., 1::2]  # (B, H, N, R)
    out = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)  # (B, H, N, 2R)
    return torch.cat((out.to(x.dtype), rest), dim=-1)


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of t in [0, 1] (scaled by 1000, as DiT) followed by a two-layer MLP."""

    def __init__(self, dim: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        for layer in (self.mlp[0], self.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        args = 1000.0 * t.float()[:, None] * freqs[None, :]  # (B, half)
        emb = torch.cat((args.cos(), args.sin()), dim=-1)  # (B, freq_dim)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))  # (B, D)
