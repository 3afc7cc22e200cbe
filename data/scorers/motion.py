"""Motion: dense optical flow (Farneback) between the frames of each sampled pair.

Flow runs on the value channel (max of R, G, B), where a saturated object stands out from grey
surroundings of the same luma. `motion` is the mean flow speed over all pixels;
`motion_dx`/`motion_dy` the mean flow of the pixels that changed between the two frames, which
gives the direction of what moves over a still background. All three are in frame widths per second, so they compare across
resolutions and frame rates.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reelforge.data import schema
from reelforge.data.step import Resources, Row, Step

FLOW_WIDTH = 128  # pixels: flow is computed on frames scaled to this width (or less)
CHANGED_LEVEL = 8  # a pixel whose value moves more than this (of 255) between the frames has changed


def pair_flow(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flow (H, W, 2) in pixels, changed-pixel mask) from RGB frame a to b, at most FLOW_WIDTH wide."""
    import cv2

    scale = min(1.0, FLOW_WIDTH / a.shape[1])
    size = (max(8, round(a.shape[1] * scale)), max(8, round(a.shape[0] * scale)))
    # The value channel, max(R, G, B): np.maximum over the channels is ~30x faster than .max(axis=2).
    va, vb = (cv2.resize(np.maximum(np.maximum(x[..., 0], x[..., 1]), x[..., 2]), size, interpolation=cv2.INTER_AREA)
              for x in (a, b))
    flow = cv2.calcOpticalFlowFarneback(va, vb, None, 0.5, 3, 9, 3, 5, 1.1, 0)
    return flow, np.abs(va.astype(np.int16) - vb.astype(np.int16)) > CHANGED_LEVEL


def motion_scores(pairs: np.ndarray, fps: float) -> dict[str, float]:
    """Motion columns from (2K, H, W, 3) frame pairs of a clip at `fps`."""
    speeds, dxs, dys = [], [], []
    for a, b in zip(pairs[0::2], pairs[1::2], strict=True):
        flow, changed = pair_flow(a, b)
        per_s = fps / flow.shape[1]  # pixels per frame -> frame widths per second
        mag = np.hypot(flow[..., 0], flow[..., 1])
        speeds.append(float(mag.mean()) * per_s)
        moving = changed & (mag > 0.05)
        if moving.any():
            dxs.append(float(flow[..., 0][moving].mean()) * per_s)
            dys.append(float(flow[..., 1][moving].mean()) * per_s)
        else:
            dxs.append(0.0)
            dys.append(0.0)
    return {"motion": float(np.mean(speeds)), "motion_dx": float(np.mean(dxs)), "motion_dy": float(np.mean(dys))}


class Motion(Step):
    name = "motion"

    def __init__(self, cfg: Any = None, resources: Resources | None = None) -> None:
        super().__init__(resources or Resources(num_cpus=1, batch_size=8))

    def process(self, rows: list[Row]) -> list[Row]:
        for row in rows:
            row.update(motion_scores(schema.npy_load(row["samples"]), row["fps"]))
        return rows
