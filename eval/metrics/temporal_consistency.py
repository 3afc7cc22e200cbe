"""Temporal consistency: how alike each frame is to the one before it and to the first frame.

After VBench's subject/background consistency (Huang et al., 2024), which averages a frame's
feature similarity to the previous frame and to the first; here the feature is a weightless one,
so it runs anywhere: the frame's grey levels on a 32x32 grid plus its 3x8-bin colour histogram,
each zero-mean and unit-norm, so their dot product is a normalised correlation in [-1, 1].
Higher is steadier; shuffled or cut frames lower it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reelforge.eval.clip import Clip
from reelforge.eval.metrics.base import Column, Metric

GRID = 32  # side of the grey thumbnail, in cells
BINS = 8  # histogram bins per colour channel


def frame_features(frames: np.ndarray) -> np.ndarray:
    """(T, D) unit-norm features: layout (grey thumbnail) and colour (histogram), equally weighted."""
    import cv2

    feats = []
    for frame in frames:
        thumb = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (GRID, GRID), interpolation=cv2.INTER_AREA)
        hist = np.concatenate([np.bincount((frame[..., c] // (256 // BINS)).ravel(), minlength=BINS)
                               for c in range(3)])
        parts = []
        for part in (thumb.astype(np.float64).ravel(), hist.astype(np.float64)):
            part = part - part.mean()
            parts.append(part / (np.linalg.norm(part) + 1e-8))
        feats.append(np.concatenate(parts) / np.sqrt(2.0))
    return np.stack(feats)


class TemporalConsistency(Metric):
    name = "temporal_consistency"
    columns = (Column("temporal_consistency", "higher",
                      "mean similarity of each frame to the previous and the first frame, -1..1"),)

    def score(self, clip: Clip) -> dict[str, Any]:
        if len(clip.frames) < 2:
            return {"temporal_consistency": None}
        f = frame_features(clip.frames)
        to_prev = np.einsum("td,td->t", f[1:], f[:-1])
        to_first = f[1:] @ f[0]
        return {"temporal_consistency": float(np.mean((to_prev + to_first) / 2))}
