"""Model FLOPs of the video DiT per sample, for MFU: matmuls only, counted from the config.

Counts 2 * m * n * k for every matrix product of `DiT.forward` (patch embedding, conditioning
MLPs, attention projections, attention scores and values over the full padded token grid, MLPs,
output layer), the convention of PaLM's MFU and of torch's FlopCounterMode. Norms, activations
and softmax are left out (a fraction of a percent). A training step costs 3x the forward (the
backward computes gradients for inputs and weights); activation recomputation is not counted,
so MFU stays comparable with and without checkpointing.
"""

from __future__ import annotations

from reelforge.train.models.dit import DiTConfig
from reelforge.train.models.embed import patch_grid


def dit_forward_flops(cfg: DiTConfig, latent_size: tuple[int, int, int], text_tokens: int) -> int:
    """FLOPs of one forward pass for one sample of latent (T, H, W) with `text_tokens` caption tokens."""
    gt, gh, gw = patch_grid(latent_size, tuple(cfg.patch_size))
    n = gt * gh * gw  # video tokens
    d, p = cfg.hidden_dim, cfg.in_channels * cfg.patch_size[0] * cfg.patch_size[1] * cfg.patch_size[2]
    lc = text_tokens + 1  # caption tokens plus the always-visible null token
    mlp = int(d * cfg.mlp_ratio)

    embed = 2 * n * p * d + (2 * 256 * d + 2 * d * d)  # patches; timestep MLP
    embed += 2 * text_tokens * (cfg.text_dim * d + d * d)  # caption projection MLP
    if cfg.pooled_text:
        embed += 2 * (cfg.text_dim * d + d * d)
    if cfg.text_attention == "joint":  # both streams: adaLN, qkv + out, MLP; attention over L + N tokens
        m = n + lc
        block = 2 * (2 * d * 6 * d) + 2 * m * d * (4 * d) + 2 * 2 * m * m * d + 2 * 2 * m * d * mlp
        # The last block skips the text stream's output projection and MLP, and 4 of its 6 modulations.
        blocks = cfg.depth * block - (2 * lc * d * d + 2 * 2 * lc * d * mlp + 2 * d * 4 * d)
    else:
        self_attn = 2 * n * d * (4 * d) + 2 * 2 * n * n * d  # q, k, v, out; scores and values
        cross_attn = 2 * n * d * (2 * d) + 2 * lc * d * (2 * d) + 2 * 2 * n * lc * d  # q, out; k, v; scores, values
        blocks = cfg.depth * (2 * d * 6 * d + self_attn + cross_attn + 2 * 2 * n * d * mlp)
    final = 2 * d * 2 * d + 2 * n * d * p
    return embed + blocks + final


def dit_train_flops(cfg: DiTConfig, latent_size: tuple[int, int, int], text_tokens: int) -> int:
    """FLOPs of forward and backward for one sample (3x forward)."""
    return 3 * dit_forward_flops(cfg, latent_size, text_tokens)


def mfu(samples_per_second: float, flops_per_sample: float, peak_flops_per_second: float) -> float:
    """Model FLOPs utilisation: achieved model FLOP/s over the hardware's peak FLOP/s."""
    if peak_flops_per_second <= 0:
        raise ValueError("peak_flops_per_second must be positive (e.g. 989e12 for an H100's dense bf16)")
    return samples_per_second * flops_per_sample / peak_flops_per_second
