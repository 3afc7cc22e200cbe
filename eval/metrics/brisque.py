"""BRISQUE no-reference image quality (Mittal, Moorthy and Bovik, 2012), mean over the clip's image
frames. Lower is better (about 0-100). The model and its NumPy-2 fix-up are ingestion's
(`reelforge.data.scorers.quality`), run through that step's own interface; frames BRISQUE cannot
score (flat frames) are left out, and with none left the score is None."""

from __future__ import annotations

from typing import Any

import numpy as np

from reelforge.data import schema
from reelforge.data.scorers import ScorersConfig
from reelforge.data.scorers.quality import Quality
from reelforge.eval.clip import Clip
from reelforge.eval.metrics.base import Column, Metric


class Brisque(Metric):
    name = "brisque"
    columns = (Column("brisque", "lower", "BRISQUE no-reference quality, about 0..100 (lower is better)"),)

    def __init__(self) -> None:
        self._step: Quality | None = None

    def setup(self) -> None:
        self._step = Quality(ScorersConfig(quality_frames=1))
        self._step.setup()

    def score(self, clip: Clip) -> dict[str, Any]:
        assert self._step is not None, "setup() first"
        frames = clip.image_frames()
        self._step.frames = len(frames)  # score every image frame of this clip
        # The step reads frame pairs (first, second); each image frame is its own pair's first.
        row = {"samples": schema.npy_bytes(np.repeat(frames, 2, axis=0))}
        score = self._step.process([row])[0]["brisque"]
        # libsvm's prediction varies in the last bits from call to call (about 1e-11 on the same
        # frames); six decimals keep results.parquet identical across runs of the same input.
        return {"brisque": None if score is None else round(score, 6)}
