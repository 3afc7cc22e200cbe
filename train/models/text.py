"""Text conditioning for the trainer: the frozen encoders of `reelforge.data.text_encoder`, as tensors.

The encoder lives in data/ because ingestion embeds captions with it too. The trainer either reads
those precomputed token states from the shards (`from_shard_rows`) or encodes captions on the fly
(`CaptionEncoder`); both give the (B, L, D) states and (B, L) mask the DiT takes.
"""

from __future__ import annotations

import numpy as np
import torch

from reelforge.data.text_encoder import (
    TextEmbedding,
    TextEncoder,
    TextEncoderConfig,
    build_text_encoder,
    pad_token_states,
)

__all__ = ["CaptionEncoder", "TextEmbedding", "TextEncoder", "TextEncoderConfig", "build_text_encoder",
           "from_shard_rows", "pad_token_states"]


def from_shard_rows(rows: list[np.ndarray], max_tokens: int | None = None,
                    device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-clip float16 (n_i, D) token states from shards -> float32 (B, L, D) and bool (B, L) tensors."""
    tokens, mask = pad_token_states(rows, max_tokens)
    return torch.from_numpy(tokens).to(device), torch.from_numpy(mask).to(device)


class CaptionEncoder:
    """Encodes captions on the fly for batches whose shards carry no token states; frozen, no grad."""

    def __init__(self, cfg: TextEncoderConfig) -> None:
        self.encoder = build_text_encoder(cfg)
        self.dim = self.encoder.dim

    def __call__(self, captions: list[str], device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        tokens, mask = self.encoder.encode_tensors(captions)
        return tokens.to(device), mask.to(device)  # (B, L, D), (B, L)
