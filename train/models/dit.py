"""The video diffusion transformer: a DiT over spacetime patches of a latent video.

Follows Peebles & Xie, "Scalable Diffusion Models with Transformers" (adaLN-zero blocks), with
the video-model changes of Sora's report, Open-Sora 2.0, Wan 2.1 and HunyuanVideo: spacetime
patches of any (T, H, W), 3D RoPE instead of a position table (optionally fixed sin-cos position
features too), QK-norm, cross-attention to the text encoder's tokens with a mask. An image is a
one-frame video. Sizes live in conf/model/*.yaml.

With a sequence-parallel group (train/ulysses.py, DeepSpeed-Ulysses) each rank of the group keeps a
contiguous slice of the video tokens (padded to a multiple of the group size, padding masked out as
keys), self-attention runs over all tokens with 1/P of the heads after an all-to-all, cross-attention
to the replicated caption stays local, MMDiT's text stream is replicated and lends each rank its heads,
and the output is gathered so every rank returns the whole video.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn
from torch.utils.checkpoint import checkpoint

from reelforge.platform.config import ConfigError, check_choice
from reelforge.train.models.embed import (
    Rope3D,
    TimestepEmbedder,
    apply_rope,
    grid_positions,
    pad_to_patches,
    patch_grid,
    patchify,
    rope_axis_dims,
    sincos_3d,
    token_mask,
    unpatchify,
)
from reelforge.train.ulysses import SequenceShard


@dataclass
class DiTConfig:
    # Channels of the latent video the model denoises (3 for pixel space with the identity VAE).
    in_channels: int = 4
    # Spacetime patch size (t, h, w), in latent frames and latent pixels.
    patch_size: list[int] = field(default_factory=lambda: [1, 2, 2])
    # Width of the transformer, in channels per token.
    hidden_dim: int = 384
    # Number of transformer blocks.
    depth: int = 12
    # Attention heads per block; hidden_dim / num_heads is the (even) head width.
    num_heads: int = 6
    # MLP hidden width as a multiple of hidden_dim.
    mlp_ratio: float = 4.0
    # Width of the text encoder's token states, in channels (384 for MiniLM).
    text_dim: int = 384
    # Largest latent length accepted at run time, in latent frames (RoPE has no table: a guard only).
    max_latent_frames: int = 64
    # Largest latent height accepted at run time, in latent pixels.
    max_latent_height: int = 128
    # Largest latent width accepted at run time, in latent pixels.
    max_latent_width: int = 128
    # RoPE base period, in token positions.
    rope_theta: float = 10000.0
    # Share of each head's channels rotated by the time position (the rest split between h and w).
    rope_time_fraction: float = 0.25
    # How video tokens see the caption: "cross" (cross-attention to text tokens in every block, as
    # PixArt / Open-Sora) or "joint" (MMDiT, as SD3 / HunyuanVideo: text tokens get their own weights
    # and both streams attend over their concatenation).
    text_attention: str = "cross"
    # RMS-normalise queries and keys per head before attention (stabilises large models).
    qk_norm: bool = True
    # Add the mean of the caption's token states to the timestep conditioning of adaLN.
    pooled_text: bool = True
    # Also add fixed 3D sin-cos features of each token's (t, h, w) index (periods up to rope_theta) to its
    # embedding. RoPE scores see only offsets between tokens, so a token cannot tell which frame it is in
    # or how near an edge it sits; small models on short clips need that to move an object the way the
    # prompt says (the shapes proof: prompted direction 23% -> 77% of samples at the same steps).
    sincos_positions: bool = False
    # Recompute each block's activations in the backward pass (less memory, ~1.3x compute).
    gradient_checkpointing: bool = False


def check_config(cfg: DiTConfig) -> None:
    """Raise ConfigError naming the model field and the fix."""
    if len(cfg.patch_size) != 3 or min(cfg.patch_size) < 1:
        raise ConfigError(f"model.patch_size={cfg.patch_size} must be three positive ints (t, h, w).")
    for name in ("in_channels", "hidden_dim", "depth", "num_heads", "text_dim",
                 "max_latent_frames", "max_latent_height", "max_latent_width"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"model.{name}={getattr(cfg, name)} must be positive.")
    check_choice(cfg.text_attention, ("cross", "joint"), "model.text_attention")
    if cfg.hidden_dim % cfg.num_heads or (cfg.hidden_dim // cfg.num_heads) % 2:
        raise ConfigError(f"model.hidden_dim={cfg.hidden_dim} must be num_heads={cfg.num_heads} times an "
                          "even head width: change hidden_dim or num_heads.")
    if min(rope_axis_dims(cfg.hidden_dim // cfg.num_heads, cfg.rope_time_fraction)) < 2:
        raise ConfigError(f"model.rope_time_fraction={cfg.rope_time_fraction} leaves an axis without "
                          "rotary channels: use a value near 0.25 or wider heads.")


def check_sequence_parallel(cfg: DiTConfig, size: int) -> None:
    """Ulysses gives each rank of a sequence-parallel group of `size` ranks num_heads / size heads."""
    if cfg.num_heads % size:
        raise ConfigError(f"model.num_heads={cfg.num_heads} must be a multiple of trainer.sequence_parallel={size}: "
                          "each rank of a sequence-parallel group attends with num_heads / sequence_parallel heads; "
                          "lower trainer.sequence_parallel or pick a model with more heads.")


def load_preset(name: str) -> DiTConfig:
    """conf/model/<name>.yaml merged onto DiTConfig's defaults (unknown keys fail)."""
    from reelforge.platform.cli import conf_dir

    folder = Path(conf_dir()) / "model"
    path = folder / f"{name}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ConfigError(f"model preset {name!r} not found in {folder}: choose one of {', '.join(names)}.")
    merged = OmegaConf.merge(OmegaConf.structured(DiTConfig), OmegaConf.load(path))
    cfg = OmegaConf.to_object(merged)
    assert isinstance(cfg, DiTConfig)
    check_config(cfg)
    return cfg


def count_parameters(cfg: DiTConfig) -> int:
    """Parameters of the model `cfg` describes, built on the meta device (no memory)."""
    with torch.device("meta"):
        model = DiT(cfg)
    return sum(p.numel() for p in model.parameters())


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class Attention(nn.Module):
    """Multi-head attention with optional QK-norm and RoPE, through F.scaled_dot_product_attention."""

    def __init__(self, dim: int, heads: int, qk_norm: bool, context_dim: int | None = None) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.cross = context_dim is not None
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim or dim, 2 * dim)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                shard: SequenceShard | None = None) -> torch.Tensor:
        """`mask` (B, M) marks the keys to attend; with a `shard` (self-attention only) x holds this rank's
        tokens and `mask` covers the whole padded sequence."""
        b, n, d = x.shape
        q = self.q(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)  # (B, H, N, Dh)
        k, v = self.kv(context).view(b, -1, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (B, H, M, Dh)
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if shard is not None:  # Ulysses: (local tokens, all heads) -> (all tokens, this rank's heads)
            q, k, v = shard.to_heads(torch.stack((q, k, v))).unbind(0)  # 3 x (B, H/P, N*P, Dh)
        attn_mask = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, M), True = attend
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, N, Dh)
        if shard is not None:
            out = shard.to_tokens(out)  # (B, H, N, Dh) again: this rank's tokens
        return self.out(out.transpose(1, 2).reshape(b, n, d))  # (B, N, D)


class DiTBlock(nn.Module):
    """adaLN-zero self-attention and MLP, with ungated cross-attention to text whose output starts at zero."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        d = cfg.hidden_dim
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(d, cfg.num_heads, cfg.qk_norm)
        self.norm_cross = nn.LayerNorm(d, eps=1e-6)
        self.cross = Attention(d, cfg.num_heads, cfg.qk_norm, context_dim=d)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        hidden = int(d * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))

    def forward(self, x: torch.Tensor, c: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                mask: torch.Tensor | None, text: torch.Tensor, text_mask: torch.Tensor,
                shard: SequenceShard | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, dim=-1)  # 6 x (B, D)
        h = modulate(self.norm1(x), shift1, scale1)
        x = x + gate1[:, None] * self.attn(h, h, mask, rope, shard)  # (B, N, D)
        x = x + self.cross(self.norm_cross(x), text, text_mask)
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2)), text


class JointBlock(nn.Module):
    """MMDiT block (Esser et al. 2024): video and text streams with their own adaLN-zero, projections
    and MLPs, one attention over both; RoPE rotates only the video tokens."""

    def __init__(self, cfg: DiTConfig, last: bool = False) -> None:
        super().__init__()
        d = cfg.hidden_dim
        self.heads, self.head_dim = cfg.num_heads, d // cfg.num_heads
        hidden = int(d * cfg.mlp_ratio)
        streams = []
        for text_stream in (False, True):  # 0: video, 1: text
            s = nn.ModuleDict({
                "norm1": nn.LayerNorm(d, elementwise_affine=False, eps=1e-6),
                "qkv": nn.Linear(d, 3 * d),
                "q_norm": nn.RMSNorm(self.head_dim, eps=1e-6) if cfg.qk_norm else nn.Identity(),
                "k_norm": nn.RMSNorm(self.head_dim, eps=1e-6) if cfg.qk_norm else nn.Identity(),
                # The last block's text outputs are never read: it only lends keys and values (as SD3).
                "ada": nn.Sequential(nn.SiLU(), nn.Linear(d, (2 if text_stream and last else 6) * d)),
            })
            if not (text_stream and last):
                s.update({"out": nn.Linear(d, d), "norm2": nn.LayerNorm(d, elementwise_affine=False, eps=1e-6),
                          "mlp": nn.Sequential(nn.Linear(d, hidden), nn.GELU(approximate="tanh"),
                                               nn.Linear(hidden, d))})
            streams.append(s)
        self.streams = nn.ModuleList(streams)

    def forward(self, x: torch.Tensor, c: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                mask: torch.Tensor | None, text: torch.Tensor, text_mask: torch.Tensor,
                shard: SequenceShard | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, d = x.shape
        mods, qkvs = [], []
        for i, (s, h) in enumerate(zip(self.streams, (x, text), strict=True)):
            mod = s["ada"](c).chunk(s["ada"][1].out_features // d, dim=-1)  # 6 (or 2) x (B, D)
            q, k, v = s["qkv"](modulate(s["norm1"](h), mod[0], mod[1])).view(
                b, -1, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # 3 x (B, H, M, Dh)
            q, k = s["q_norm"](q), s["k_norm"](k)
            if i == 0:
                q, k = apply_rope(q, *rope), apply_rope(k, *rope)
            if shard is not None:  # video: all tokens, this rank's heads; the replicated text: its heads
                qkv = torch.stack((q, k, v))  # (3, B, H, M, Dh)
                q, k, v = (shard.to_heads(qkv) if i == 0 else shard.local_heads(qkv)).unbind(0)  # (B, H/P, M', Dh)
            mods.append(mod)
            qkvs.append((q, k, v))
        q, k, v = (torch.cat((qkvs[1][j], qkvs[0][j]), dim=2) for j in range(3))  # (B, H, L+N, Dh)
        video_keys = qkvs[0][1].shape[2]
        video_mask = torch.ones(b, video_keys, dtype=torch.bool, device=x.device) if mask is None else mask
        keys = torch.cat((text_mask, video_mask), dim=1)[:, None, None, :]  # (B, 1, 1, L+N)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keys)  # (B, H, L+N, Dh)
        video_out, text_out = out[:, :, text.shape[1]:], out[:, :, : text.shape[1]]
        if shard is not None:
            video_out = shard.to_tokens(video_out)  # (B, H, N, Dh): this rank's tokens, all heads
            text_out = shard.gather_heads(text_out)  # (B, H, L, Dh)
        outs = (video_out.transpose(1, 2).reshape(b, n, d), text_out.transpose(1, 2).reshape(b, -1, d))  # (B, N|L, D)
        results = []
        for s, h, o, mod in zip(self.streams, (x, text), outs, mods, strict=True):
            if "out" not in s:
                results.append(h)
                continue
            h = h + mod[2][:, None] * s["out"](o)
            results.append(h + mod[5][:, None] * s["mlp"](modulate(s["norm2"](h), mod[3], mod[4])))
        return results[0], results[1]


class FinalLayer(nn.Module):
    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.linear = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.ada(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))  # (B, N, P*C)


class DiT(nn.Module):
    """Predicts the flow velocity of a latent video (B, C, T, H, W) at times t (B,) given caption tokens.

    With `sequence_group` (train/ulysses.py) every rank of the group gets the same inputs, works on its
    slice of the tokens and returns the whole output; its parameter gradients are this rank's share
    (the group's shares sum to the gradient of the loss every rank computes from the output).
    """

    def __init__(self, cfg: DiTConfig, sequence_group: dist.ProcessGroup | None = None) -> None:
        super().__init__()
        check_config(cfg)
        if sequence_group is not None:
            check_sequence_parallel(cfg, dist.get_world_size(sequence_group))
        self.cfg = cfg
        self.sequence_group = sequence_group
        self.patch = tuple(cfg.patch_size)
        d, patch_dim = cfg.hidden_dim, cfg.in_channels * cfg.patch_size[0] * cfg.patch_size[1] * cfg.patch_size[2]
        self.x_embed = nn.Linear(patch_dim, d)
        self.t_embed = TimestepEmbedder(d)
        self.text_proj = nn.Sequential(nn.LayerNorm(cfg.text_dim), nn.Linear(cfg.text_dim, d),
                                       nn.GELU(approximate="tanh"), nn.Linear(d, d))
        # An always-visible key, so a caption dropped for classifier-free guidance (mask all False) is valid.
        self.null_text = nn.Parameter(torch.zeros(1, 1, d))
        self.pooled_proj = (nn.Sequential(nn.Linear(cfg.text_dim, d), nn.SiLU(), nn.Linear(d, d))
                            if cfg.pooled_text else None)
        self.rope = Rope3D(d // cfg.num_heads, cfg.rope_time_fraction, cfg.rope_theta)
        self.blocks = nn.ModuleList(JointBlock(cfg, last=i == cfg.depth - 1) if cfg.text_attention == "joint"
                                    else DiTBlock(cfg) for i in range(cfg.depth))
        self.final = FinalLayer(d, patch_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier linears; zero adaLN and output projections so every block starts as the identity."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for layer in (self.t_embed.mlp[0], self.t_embed.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
        nn.init.normal_(self.null_text, std=0.02)
        for block in self.blocks:
            zeroed = ([block.ada[1], block.cross.out] if isinstance(block, DiTBlock)
                      else [s["ada"][1] for s in block.streams])
            for layer in zeroed:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        for layer in (self.final.ada[1], self.final.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _check_inputs(self, x: torch.Tensor, text: torch.Tensor) -> None:
        cfg = self.cfg
        if x.ndim != 5 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"latents of shape {tuple(x.shape)} do not fit model.in_channels={cfg.in_channels}: "
                             "pass (B, C, T, H, W) and set model.in_channels to the autoencoder's latent channels.")
        if text.shape[-1] != cfg.text_dim:
            raise ValueError(f"caption token states are {text.shape[-1]}-dim but model.text_dim={cfg.text_dim}: "
                             "set model.text_dim to the text encoder's width.")
        limits = (cfg.max_latent_frames, cfg.max_latent_height, cfg.max_latent_width)
        if any(s > m for s, m in zip(x.shape[2:], limits, strict=True)):
            raise ValueError(f"latent size (T, H, W)={tuple(x.shape[2:])} exceeds the model's maximum {limits}: "
                             "raise model.max_latent_frames/height/width or use smaller clips.")

    def forward(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                sizes: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C, T, H, W) latents, t (B,) in [0, 1], text (B, L, text_dim), text_mask (B, L) bool,
        sizes (B, 3) real (T, H, W) of each sample in a padded batch (None: all full). Returns (B, C, T, H, W)."""
        self._check_inputs(x, text)
        b, c, *size = x.shape
        grid = patch_grid(tuple(size), self.patch)
        tokens = patchify(pad_to_patches(x, self.patch), self.patch)  # (B, N, P*C)
        mask = None
        if sizes is not None or any(g * p != s for g, p, s in zip(grid, self.patch, size, strict=True)):
            full = torch.tensor(size, device=x.device).expand(b, 3)
            mask = token_mask(full if sizes is None else torch.minimum(sizes.to(x.device), full), grid, self.patch)
            mask = None if bool(mask.all()) else mask  # (B, N); None keeps the flash path
        positions, keys, shard = grid_positions(grid, x.device), mask, None  # (N, 3), (B, N)
        if self.sequence_group is not None:  # Ulysses: this rank keeps a contiguous slice of the tokens
            shard = SequenceShard.of(self.sequence_group, tokens.shape[1])
            keys = shard.key_mask(mask, b, x.device)  # (B, N_pad): the padding is never a key
            tokens, positions = shard.split(tokens, 1), shard.split(positions, 0)  # (B, N_pad/P, P*C), (N_pad/P, 3)
        tokens = self.x_embed(tokens)  # (B, N, D)
        if self.cfg.sincos_positions:
            table = sincos_3d(positions, self.cfg.hidden_dim, self.cfg.rope_time_fraction, self.cfg.rope_theta)
            tokens = tokens + table.to(tokens.dtype)  # (N, D) broadcast over the batch
        rope = self.rope(positions)  # 2 x (N, R)

        text_mask = text_mask.bool()
        ctx = self.text_proj(text)  # (B, L, D)
        ctx = torch.cat((self.null_text.expand(b, -1, -1).to(ctx.dtype), ctx), dim=1)  # (B, 1+L, D)
        ctx_mask = F.pad(text_mask, (1, 0), value=True)  # (B, 1+L)
        cond = self.t_embed(t)  # (B, D)
        if self.pooled_proj is not None:
            weights = text_mask[..., None].to(text.dtype)
            pooled = (text * weights).sum(1) / weights.sum(1).clamp(min=1)  # (B, text_dim)
            cond = cond + self.pooled_proj(pooled)

        for block in self.blocks:
            if self.cfg.gradient_checkpointing and self.training:
                tokens, ctx = checkpoint(block, tokens, cond, rope, keys, ctx, ctx_mask, shard, use_reentrant=False)
            else:
                tokens, ctx = block(tokens, cond, rope, keys, ctx, ctx_mask, shard)  # (B, N, D), (B, 1+L, D)
        out = self.final(tokens, cond)  # (B, N, P*C)
        if shard is not None:
            out = shard.gather(out, 1)  # (B, N, P*C): the whole video on every rank
        if mask is not None:
            out = out * mask[..., None].to(out.dtype)
        out = unpatchify(out, grid, self.patch, c)  # (B, C, gt*pt, gh*ph, gw*pw)
        return out[:, :, : size[0], : size[1], : size[2]]
