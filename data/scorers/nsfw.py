"""NSFW: NudeNet's detector (its ONNX model ships with the package) over the sampled frames.

`nsfw_scores` keeps, per detected class, the highest score over the frames (JSON); `nsfw` is the
highest score of an exposed-body class, 0.0 when none is detected (detection ran: that is known).

The model runs here rather than through `NudeDetector.detect_batch`: the same input (the frame
padded to a square and resized to 320x320) and the same thresholds and NMS, but NudeNet's Python
loop over its 2100 candidate boxes per frame, a fifth of the scorer's time, is array operations.
The results are NudeNet's own (tests/data/test_scorers.py compares them). A rectangular input
(320x192 for 16:9, as Ultralytics letterboxes) would save 40% of the model's time but moves
scores by up to 0.1 and drops weak detections, so it is not used.
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
INPUT_SIDE = 320  # NudeNet 320n: frames are padded to a square and resized to this side
BATCH = 8  # frames per model call (as the step called NudeNet's detect_batch before)
MIN_SCORE, NMS_SCORE, NMS_IOU = 0.2, 0.25, 0.45  # NudeNet's candidate threshold and NMS settings


def letterbox(frame: np.ndarray) -> np.ndarray:
    """(1, 3, 320, 320) float32 input in 0..1 for an RGB frame, exactly as NudeNet prepares it."""
    import cv2

    h, w = frame.shape[:2]
    side = max(h, w)
    square = cv2.copyMakeBorder(frame, 0, side - h, 0, side - w, cv2.BORDER_CONSTANT)
    return cv2.dnn.blobFromImage(square, 1 / 255.0, (INPUT_SIDE, INPUT_SIDE), (0, 0, 0), swapRB=False, crop=False)


def detections(output: np.ndarray, labels: list[str]) -> dict[str, float]:
    """{class: best score} from one image's (22, N) YOLOv8 output, after NudeNet's threshold and NMS."""
    import cv2

    cand = output.T  # (N, 4 + classes): centre x, centre y, w, h, class scores
    best = cand[:, 4:].max(axis=1)
    keep = best >= MIN_SCORE
    if not keep.any():
        return {}
    cand, best = cand[keep], best[keep]
    cls = cand[:, 4:].argmax(axis=1)
    boxes = np.stack([cand[:, 0] - cand[:, 2] / 2, cand[:, 1] - cand[:, 3] / 2, cand[:, 2], cand[:, 3]], axis=1)
    out: dict[str, float] = {}
    for i in np.asarray(cv2.dnn.NMSBoxes(boxes.tolist(), best.tolist(), NMS_SCORE, NMS_IOU)).reshape(-1):
        name = labels[cls[i]]
        out[name] = max(out.get(name, 0.0), round(float(best[i]), 4))
    return out


class Nsfw(Step):
    name = "nsfw"

    def __init__(self, cfg: Any, resources: Resources | None = None) -> None:
        super().__init__(resources or Resources(num_cpus=1, batch_size=8))
        self.frames: int = cfg.nsfw_frames  # sampled frames checked per clip
        self._session: Any = None
        self._labels: list[str] = []

    def setup(self) -> None:
        try:
            import nudenet
            import nudenet.nudenet as nudenet_module
            import onnxruntime
        except ImportError as err:
            raise ImportError("the nsfw scorer needs nudenet: pip install nudenet onnxruntime") from err
        # One thread per worker: Ray runs one worker per core already.
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        model = os.path.join(os.path.dirname(nudenet.__file__), "320n.onnx")
        self._session = onnxruntime.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        # The model's class names, in output order, from NudeNet itself (a module-private list).
        self._labels = list(nudenet_module.__dict__["__labels"])

    def detect(self, frames: list[np.ndarray]) -> list[dict[str, float]]:
        """{class: best score} NudeNet finds in each RGB frame, run in batches of BATCH."""
        out = []
        for i in range(0, len(frames), BATCH):
            blob = np.concatenate([letterbox(f) for f in frames[i:i + BATCH]])
            (output,) = self._session.run(None, {self._session.get_inputs()[0].name: blob})
            out += [detections(o, self._labels) for o in output]
        return out

    def process(self, rows: list[Row]) -> list[Row]:
        frames, owners = [], []
        for i, row in enumerate(rows):
            firsts = schema.npy_load(row["samples"])[0::2]
            for j in np.linspace(0, len(firsts) - 1, min(self.frames, len(firsts))).round().astype(int):
                frames.append(firsts[j])
                owners.append(i)
        per_row: list[dict[str, float]] = [{} for _ in rows]
        for i, found in zip(owners, self.detect(frames), strict=True):
            for name, score in found.items():
                per_row[i][name] = max(per_row[i].get(name, 0.0), score)
        for row, classes in zip(rows, per_row, strict=True):
            row["nsfw_scores"] = json.dumps(dict(sorted(classes.items())))
            row["nsfw"] = max([classes.get(c, 0.0) for c in UNSAFE_CLASSES])
        return rows
