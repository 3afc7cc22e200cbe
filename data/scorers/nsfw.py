"""NSFW: NudeNet's detector (its ONNX model ships with the package) over the sampled frames.

`nsfw_scores` keeps, per detected class, the highest score over the frames (JSON); `nsfw` is the
highest score of an exposed-body class, 0.0 when none is detected (detection ran: that is known).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from reelforge.data import schema
from reelforge.data.step import Resources, Row, Step

UNSAFE_CLASSES = ("FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED",
                  "BUTTOCKS_EXPOSED", "ANUS_EXPOSED")


class Nsfw(Step):
    name = "nsfw"

    def __init__(self, cfg: Any, resources: Resources | None = None) -> None:
        super().__init__(resources or Resources(num_cpus=1, batch_size=8))
        self.frames: int = cfg.nsfw_frames  # sampled frames checked per clip
        self._detector: Any = None

    def setup(self) -> None:
        try:
            import nudenet
            import onnxruntime
        except ImportError as err:
            raise ImportError("the nsfw scorer needs nudenet: pip install nudenet onnxruntime") from err
        self._detector = nudenet.NudeDetector()
        # One thread per worker: Ray runs one worker per core already.
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        model = os.path.join(os.path.dirname(nudenet.__file__), "320n.onnx")
        self._detector.onnx_session = onnxruntime.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    def process(self, rows: list[Row]) -> list[Row]:
        frames, owners = [], []
        for i, row in enumerate(rows):
            firsts = schema.npy_load(row["samples"])[0::2]
            for j in np.linspace(0, len(firsts) - 1, min(self.frames, len(firsts))).round().astype(int):
                f = firsts[j]
                # NudeNet reads an array as RGBA and converts it to BGR itself.
                frames.append(np.dstack([f, np.full(f.shape[:2], 255, np.uint8)]))
                owners.append(i)
        found = self._detector.detect_batch(frames, batch_size=8)
        per_row: list[dict[str, float]] = [{} for _ in rows]
        for i, detections in zip(owners, found, strict=True):
            for d in detections:
                per_row[i][d["class"]] = max(per_row[i].get(d["class"], 0.0), round(float(d["score"]), 4))
        for row, classes in zip(rows, per_row, strict=True):
            row["nsfw_scores"] = json.dumps(dict(sorted(classes.items())))
            row["nsfw"] = max([classes.get(c, 0.0) for c in UNSAFE_CLASSES])
        return rows
