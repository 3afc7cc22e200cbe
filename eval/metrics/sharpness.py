"""Sharpness: variance of the Laplacian of the grey frame (ingestion's sharpness scorer), mean over
the clip's sampled image frames. Higher is sharper; blur lowers it. Its scale depends on content
and resolution, so compare it between videos of the same prompts."""

from __future__ import annotations

from typing import Any

import numpy as np

from reelforge.data.scorers.sharpness import laplacian_variance
from reelforge.eval.clip import Clip
from reelforge.eval.metrics.base import Column, Metric


class Sharpness(Metric):
    name = "sharpness"
    columns = (Column("sharpness", "higher", "variance of the Laplacian of grey frames (higher is sharper)"),)

    def score(self, clip: Clip) -> dict[str, Any]:
        return {"sharpness": float(np.mean([laplacian_variance(f) for f in clip.image_frames()]))}
