"""Aesthetics: a small head over CLIP image embeddings predicts each frame's aesthetic score
(LAION's aesthetic predictor, Schuhmann et al., as in LAION-5B's filtering); the column is the mean
over the clip's image frames, on the head's own scale (LAION's: about 1 to 10).

The head file (`models.aesthetics`) is a safetensors file, read without unpickling anything:
  - tensors `layers.<i>.weight` (out, in) and `layers.<i>.bias` (out,), applied in ascending `i`
    (gaps allowed); the first takes CLIP's `projection_dim` inputs, the last gives 1 output;
  - optional metadata `activation`: "none" (default: LAION's v2 MLP has no nonlinearity between its
    linears; its dropouts do nothing at inference), "relu" or "gelu", applied between layers;
  - optional metadata `normalize`: "true" (default: embeddings are scaled to unit length first, as
    LAION trained it) or "false".
LAION's `sac+logos+ava1-l14-linearMSE.pth` already has these keys (layers.0/2/4/6/7): convert it once with
`safetensors.torch.save_file(torch.load(pth, weights_only=True), "head.safetensors")`; its CLIP is
ViT-L/14 (768-d). A single linear head (LAION v1: `weight`, `bias`) is saved as layers.0.weight/bias.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from reelforge.eval.clip import Clip
from reelforge.eval.metrics.base import Column, Metric
from reelforge.eval.metrics.clip_embed import ClipEmbedder, load_embedder, unit
from reelforge.eval.metrics.models import ModelContext
from reelforge.platform.config import ConfigError

ACTIVATIONS = ("none", "relu", "gelu")


@dataclass(frozen=True)
class HeadSettings:
    activation: str  # between layers: "none" | "relu" | "gelu"
    normalize: bool  # embeddings scaled to unit length before the first layer


def read_head(path: str) -> tuple[list[tuple[np.ndarray, np.ndarray]], HeadSettings]:
    """The head's (weight, bias) layers in order, as float64, and its settings; ConfigError when malformed."""
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file

    fix = "see the file format in reelforge/eval/metrics/aesthetics.py"
    try:
        tensors = load_file(path)
        with safe_open(path, framework="np") as f:
            meta = f.metadata() or {}
    except SafetensorError as err:
        raise ConfigError(f"models.aesthetics={path!r} is not a safetensors file ({err}); {fix}") from err
    indices = sorted({int(m.group(1)) for k in tensors if (m := re.fullmatch(r"layers\.(\d+)\.(weight|bias)", k))})
    extra = sorted(set(tensors) - {f"layers.{i}.{p}" for i in indices for p in ("weight", "bias")})
    if not indices or extra:
        raise ConfigError(f"models.aesthetics={path!r} has tensors {sorted(tensors)}; expected only "
                          f"layers.<i>.weight and layers.<i>.bias; {fix}")
    layers = []
    for i in indices:
        w, b = tensors.get(f"layers.{i}.weight"), tensors.get(f"layers.{i}.bias")
        if w is None or b is None or w.ndim != 2 or b.shape != (w.shape[0],):
            raise ConfigError(f"models.aesthetics={path!r}: layers.{i} needs a 2-d weight (out, in) and a bias "
                              f"(out,); {fix}")
        if layers and layers[-1][0].shape[0] != w.shape[1]:
            raise ConfigError(f"models.aesthetics={path!r}: layers.{i} takes {w.shape[1]} inputs but the layer "
                              f"before gives {layers[-1][0].shape[0]}")
        layers.append((w.astype(np.float64), b.astype(np.float64)))
    if layers[-1][0].shape[0] != 1:
        raise ConfigError(f"models.aesthetics={path!r}: the last layer gives {layers[-1][0].shape[0]} outputs, "
                          "not 1 score")
    activation, normalize = meta.get("activation", "none"), meta.get("normalize", "true")
    if activation not in ACTIVATIONS or normalize not in ("true", "false"):
        raise ConfigError(f"models.aesthetics={path!r}: metadata activation={activation!r} must be one of "
                          f"{ACTIVATIONS} and normalize={normalize!r} 'true' or 'false'")
    return layers, HeadSettings(activation=activation, normalize=normalize == "true")


def apply_head(layers: list[tuple[np.ndarray, np.ndarray]], settings: HeadSettings,
               embeddings: np.ndarray) -> np.ndarray:
    """(N,) scores of (N, D) CLIP image embeddings."""
    from scipy.special import erf

    x = unit(embeddings) if settings.normalize else embeddings
    for i, (w, b) in enumerate(layers):
        x = x @ w.T + b  # (N, out)
        if i < len(layers) - 1 and settings.activation == "relu":
            x = np.maximum(x, 0.0)
        elif i < len(layers) - 1 and settings.activation == "gelu":
            x = 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))
    return x[:, 0]


class Aesthetics(Metric):
    name = "aesthetics"
    columns = (Column("aesthetics", "higher",
                      "mean predicted aesthetic score of the image frames (CLIP + models.aesthetics head; LAION: 1-10)"),)
    needs = ("clip", "aesthetics")

    def __init__(self, context: ModelContext) -> None:
        self.folder, self.head_path = context.models.clip, context.models.aesthetics
        self.device = context.models.device
        self.embedder: ClipEmbedder | None = None
        self.layers: list[tuple[np.ndarray, np.ndarray]] = []
        self.settings = HeadSettings(activation="none", normalize=True)

    def setup(self) -> None:
        assert self.folder is not None and self.head_path is not None  # check_model_key has run
        self.layers, self.settings = read_head(self.head_path)
        self.embedder = load_embedder(self.folder, self.device)

    def score(self, clip: Clip) -> dict[str, Any]:
        assert self.embedder is not None, "call setup() first"
        scores = apply_head(self.layers, self.settings, self.embedder.images(clip.image_frames()))
        return {"aesthetics": float(np.mean(scores))}
