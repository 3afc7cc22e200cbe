"""Sharpness: variance of the Laplacian of the grey frames (higher is sharper), mean over samples."""

from __future__ import annotations

from typing import Any

import numpy as np

from reelforge.data import schema
from reelforge.data.step import Resources, Row, Step


def laplacian_variance(frame: np.ndarray) -> float:
    import cv2

    return float(cv2.Laplacian(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


class Sharpness(Step):
    name = "sharpness"

    def __init__(self, cfg: Any = None, resources: Resources | None = None) -> None:
        super().__init__(resources or Resources(num_cpus=1, batch_size=8))

    def process(self, rows: list[Row]) -> list[Row]:
        for row in rows:
            frames = schema.npy_load(row["samples"])[0::2]
            row["sharpness"] = float(np.mean([laplacian_variance(f) for f in frames]))
        return rows
