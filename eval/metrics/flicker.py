"""Flicker: brightness that jumps up and down between frames rather than changing smoothly.

Each frame's mean luma is taken on a 4x4 grid of cells; flicker is the mean absolute second
difference over time, |L(t-1) - 2 L(t) + L(t+1)| / 2, in luma levels (0..255). Steady lighting and
smooth motion give a small value (a moving edge changes a cell's mean gradually); frame-to-frame
brightness pumping, as diffusion samplers sometimes produce, raises it. Lower is better.
(VBench's temporal flickering uses the first difference on static scenes; the second difference
lets moving scenes be scored too.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reelforge.eval.clip import Clip
from reelforge.eval.metrics.base import Column, Metric

CELLS = 4  # grid side: flicker is measured per cell so a local flicker is not averaged away


def cell_luma(frames: np.ndarray) -> np.ndarray:
    """(T, CELLS*CELLS) mean luma per grid cell."""
    import cv2

    return np.stack([
        cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (CELLS, CELLS), interpolation=cv2.INTER_AREA)
        .astype(np.float64).ravel()
        for f in frames
    ])


class Flicker(Metric):
    name = "flicker"
    columns = (Column("flicker", "lower", "mean |second difference| of cell brightness over time, luma levels"),)

    def score(self, clip: Clip) -> dict[str, Any]:
        if len(clip.frames) < 3:
            return {"flicker": None}
        luma = cell_luma(clip.frames)
        return {"flicker": float(np.abs(luma[:-2] - 2 * luma[1:-1] + luma[2:]).mean() / 2)}
