"""CLIP score: how well a video's frames match its prompt (CLIPScore, Hessel et al., 2021).

As text-to-video papers report it (and torchmetrics' CLIPScore): for each of the clip's image
frames, 100 x the cosine similarity between the frame's CLIP image embedding and the prompt's text
embedding, floored at 0; the score is their mean. Frame-level CLIP, not a video encoder (ViCLIP
and the like are not loaded). A video without a prompt gets None. The model is the local CLIP
folder of `models.clip`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reelforge.eval.clip import Clip
from reelforge.eval.metrics.base import Column, Metric
from reelforge.eval.metrics.clip_embed import ClipEmbedder, load_embedder, unit
from reelforge.eval.metrics.models import ModelContext


class ClipScore(Metric):
    name = "clip_score"
    columns = (Column("clip_score", "higher",
                      "mean over image frames of 100 x max(cos(CLIP frame, CLIP prompt), 0), 0..100"),)
    needs = ("clip",)

    def __init__(self, context: ModelContext) -> None:
        self.folder = context.models.clip
        self.device = context.models.device
        self.embedder: ClipEmbedder | None = None
        self._text: dict[str, np.ndarray] = {}  # prompt -> unit text embedding (a suite repeats its prompts)

    def setup(self) -> None:
        assert self.folder is not None  # check_model_key has run
        self.embedder = load_embedder(self.folder, self.device)

    def text_embedding(self, prompt: str) -> np.ndarray:
        assert self.embedder is not None, "call setup() first"
        if prompt not in self._text:
            self._text[prompt] = unit(self.embedder.texts([prompt]))[0]
        return self._text[prompt]

    def score(self, clip: Clip) -> dict[str, Any]:
        if not clip.prompt:
            return {"clip_score": None}
        assert self.embedder is not None, "call setup() first"
        cosines = unit(self.embedder.images(clip.image_frames())) @ self.text_embedding(clip.prompt)
        return {"clip_score": float(np.mean(np.maximum(100.0 * cosines, 0.0)))}
