"""Dynamic degree: how much moves, from dense optical flow (Farneback) between consecutive frames.

After VBench's dynamic degree, which averages the largest 5% of RAFT flow magnitudes per frame
pair; here the flow is OpenCV's (as in ingestion's motion scorer). A still or frozen video scores
near 0. Reported in frame widths per second, so it compares across resolutions and frame rates.
VBench's yes/no "is dynamic" is a threshold on this score, left to the reader of the results.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reelforge.data.scorers.motion import pair_flow
from reelforge.eval.clip import Clip
from reelforge.eval.metrics.base import Column, Metric

TOP_FRACTION = 0.05  # share of the fastest pixels averaged per frame pair


class DynamicDegree(Metric):
    name = "dynamic_degree"
    columns = (Column("dynamic_degree", "none",
                      "mean speed of the fastest 5% of pixels, frame widths per second"),)

    def score(self, clip: Clip) -> dict[str, Any]:
        f = clip.frames
        if len(f) < 2:
            return {"dynamic_degree": None}
        speeds = []
        for a, b in zip(f[:-1], f[1:], strict=True):
            flow, _ = pair_flow(a, b)
            mag = np.hypot(flow[..., 0], flow[..., 1]).ravel()
            top = max(1, int(len(mag) * TOP_FRACTION))
            # Pixels per frame at the flow's width -> frame widths per second.
            speeds.append(float(np.partition(mag, len(mag) - top)[-top:].mean()) * clip.fps / flow.shape[1])
        return {"dynamic_degree": float(np.mean(speeds))}
