"""Motion smoothness: how well each middle frame is predicted by interpolating its neighbours.

After VBench's motion smoothness, which drops every other frame, re-creates it with a frame
interpolation model and compares; here the interpolator is optical flow (Farneback, the same
flow as ingestion's motion scorer): frame t-1 and t+1 are each warped half way along the flow
between them and averaged. Smooth, physical motion is predicted well; jerky, shuffled or
teleporting content is not. Score = 1 - mean absolute error / 255, in [0, 1], higher is smoother.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reelforge.data.scorers.motion import pair_flow
from reelforge.eval.clip import Clip
from reelforge.eval.metrics.base import Column, Metric


def _warp(frame: np.ndarray, flow: np.ndarray, fraction: float) -> np.ndarray:
    """Sample `frame` at p + fraction * flow(p) (backward warp), float32."""
    import cv2

    h, w = flow.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(frame.astype(np.float32), xx + fraction * flow[..., 0], yy + fraction * flow[..., 1],
                     interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def interpolation_error(before: np.ndarray, middle: np.ndarray, after: np.ndarray) -> float:
    """Mean absolute error (0..255) of the flow-interpolated middle frame, at the flow's resolution."""
    import cv2

    flow, _ = pair_flow(before, after)  # (h, w, 2) pixels from `before` to `after`
    size = (flow.shape[1], flow.shape[0])
    a, m, b = (cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in (before, middle, after))
    # The middle frame at p came from `before` at p - flow/2 and goes to `after` at p + flow/2
    # (the flow at p stands in for the flow through p, fine for the small steps between frames).
    guess = (_warp(a, flow, -0.5) + _warp(b, flow, 0.5)) / 2
    return float(np.abs(guess - m.astype(np.float32)).mean())


class MotionSmoothness(Metric):
    name = "motion_smoothness"
    columns = (Column("motion_smoothness", "higher",
                      "1 - error of flow-interpolated middle frames / 255, 0..1"),)

    def score(self, clip: Clip) -> dict[str, Any]:
        f = clip.frames
        if len(f) < 3:
            return {"motion_smoothness": None}
        errors = [interpolation_error(f[t - 1], f[t], f[t + 1]) for t in range(1, len(f) - 1, 2)]
        return {"motion_smoothness": 1.0 - float(np.mean(errors)) / 255.0}
