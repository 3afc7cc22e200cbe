"""No-reference image quality: BRISQUE (Mittal, Moorthy and Bovik, 2012), mean over sampled frames.

Lower is better (about 0-100). The `brisque` package ships its SVM model, so nothing downloads.
A frame BRISQUE cannot score (flat frames give NaN features) is left out; with none left the
score is null.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from reelforge.data import schema
from reelforge.data.step import Resources, Row, Step


class Quality(Step):
    name = "quality"

    def __init__(self, cfg: Any, resources: Resources | None = None) -> None:
        super().__init__(resources or Resources(num_cpus=1, batch_size=8))
        self.frames: int = cfg.quality_frames  # sampled frames scored per clip
        self._model: Any = None

    def setup(self) -> None:
        try:
            from brisque import BRISQUE
        except ImportError as err:
            raise ImportError("the quality scorer needs brisque: pip install brisque opencv-python-headless") from err

        class _Brisque(BRISQUE):
            # brisque 0.1.x calls float() on 1-element arrays, which NumPy 2 rejects; flatten them first.
            def scale_features(self, features: Any) -> np.ndarray:
                flat = np.array([np.asarray(f, np.float64).reshape(-1)[0] for f in features])
                lo = np.asarray(self.scale_params["min_"], np.float64).reshape(-1)
                hi = np.asarray(self.scale_params["max_"], np.float64).reshape(-1)
                return -1 + 2.0 / (hi - lo) * (flat - lo)

        self._model = _Brisque(url=False)

    def process(self, rows: list[Row]) -> list[Row]:
        for row in rows:
            firsts = schema.npy_load(row["samples"])[0::2]
            picks = np.linspace(0, len(firsts) - 1, min(self.frames, len(firsts))).round().astype(int)
            scores = [float(self._model.score(firsts[i])) for i in picks]
            finite = [s for s in scores if math.isfinite(s)]
            row["brisque"] = float(np.mean(finite)) if finite else None
        return rows
