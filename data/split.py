"""Shot detection and splitting: content-based cuts on downsampled frames, long shots in windows.

A cut is where the colour histograms (hue, saturation, value) of consecutive thumbnails differ by
more than `cut_threshold` (half the L1 distance, 0..1) and by `cut_ratio` times the recent average
difference, so motion, which moves pixels but keeps their colours, does not read as a cut (the
adaptive rule of PySceneDetect's AdaptiveDetector, on its ContentDetector's colour features). Shots shorter than
`min_clip_seconds` give no clip; longer than `max_clip_seconds` are cut into equal windows.
Frames stream through `Splitter`, which holds at most two windows of frames at a time.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from reelforge.platform.config import ConfigError


@dataclass
class SplitConfig:
    # Shortest clip, in seconds; shorter shots (and remainders) make no clip.
    min_clip_seconds: float = 1.0
    # Longest clip, in seconds; longer shots are cut into equal windows no longer than this.
    max_clip_seconds: float = 5.0
    # Colour-histogram distance (0..1) of consecutive frames above which they may be a cut.
    cut_threshold: float = 0.2
    # ...and which must also exceed the recent average difference by this factor.
    cut_ratio: float = 3.0
    # Side of the square thumbnails compared for cuts, in pixels.
    thumb_size: int = 64
    # Histogram bins per HSV channel.
    bins: int = 16


def check_split(cfg: SplitConfig) -> None:
    if not 0 < cfg.min_clip_seconds <= cfg.max_clip_seconds:
        raise ConfigError(f"split: need 0 < min_clip_seconds ({cfg.min_clip_seconds}) <= max_clip_seconds "
                          f"({cfg.max_clip_seconds})")
    if not 0 < cfg.cut_threshold <= 1 or cfg.cut_ratio < 1 or cfg.thumb_size < 4 or not 2 <= cfg.bins <= 256:
        raise ConfigError(f"split: cut_threshold={cfg.cut_threshold} must be in (0, 1], cut_ratio="
                          f"{cfg.cut_ratio} at least 1, thumb_size={cfg.thumb_size} at least 4, bins={cfg.bins} "
                          "in 2..256")


class ShotDetector:
    """Feed frames in order; `is_cut(frame)` says whether a new shot starts at that frame."""

    def __init__(self, cfg: SplitConfig, history: int = 8) -> None:
        self.cfg = cfg
        self.prev: np.ndarray | None = None
        self.recent: deque[float] = deque(maxlen=history)

    def features(self, frame: np.ndarray) -> np.ndarray:
        """Concatenated normalised H, S and V histograms of the frame's thumbnail."""
        import cv2

        s, bins = self.cfg.thumb_size, self.cfg.bins
        hsv = cv2.cvtColor(cv2.resize(frame, (s, s), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2HSV_FULL)
        scaled = (hsv.reshape(-1, 3).astype(np.int32) * bins) >> 8
        return np.concatenate([np.bincount(scaled[:, c], minlength=bins) for c in range(3)]) / (s * s)

    def is_cut(self, frame: np.ndarray) -> bool:
        t = self.features(frame)
        prev, self.prev = self.prev, t
        if prev is None:
            return False
        diff = float(np.abs(t - prev).sum() / 6)  # three histograms, each at most 2 apart
        base = float(np.mean(self.recent)) if self.recent else 0.0
        cut = diff > self.cfg.cut_threshold and diff > self.cfg.cut_ratio * base
        if not cut:
            self.recent.append(diff)
        else:
            self.recent.clear()
        return cut


def plan_windows(n: int, min_n: int, max_n: int) -> list[tuple[int, int]]:
    """[start, end) windows covering a shot of `n` frames: equal parts of at most `max_n`, at least `min_n`."""
    if n < min_n or n == 0:
        return []
    parts = math.ceil(n / max_n)
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b - a >= min_n]


@dataclass
class Window:
    start: int  # index of the first frame among the sampled frames of the source
    frames: np.ndarray  # (T, H, W, 3) uint8


class Splitter:
    """Streams sampled frames into clip windows, cutting at shots and bounding memory."""

    def __init__(self, cfg: SplitConfig, fps: float) -> None:
        self.max_n = max(1, math.floor(cfg.max_clip_seconds * fps + 1e-6))
        self.min_n = max(2, math.ceil(cfg.min_clip_seconds * fps - 1e-6))
        self.detector = ShotDetector(cfg)
        self.buf: list[np.ndarray] = []
        self.start = 0
        self.shots = 0

    def push(self, frame: np.ndarray) -> list[Window]:
        out = self._close_shot() if self.detector.is_cut(frame) else []
        self.buf.append(frame)
        if len(self.buf) >= 2 * self.max_n:  # a long shot: emit a full window now, keep memory bounded
            out.append(Window(self.start, np.stack(self.buf[: self.max_n])))
            self.buf = self.buf[self.max_n:]
            self.start += self.max_n
        return out

    def finish(self) -> list[Window]:
        return self._close_shot()

    def _close_shot(self) -> list[Window]:
        out = [Window(self.start + a, np.stack(self.buf[a:b])) for a, b in plan_windows(len(self.buf), self.min_n,
                                                                                       self.max_n)]
        self.start += len(self.buf)
        self.buf = []
        self.shots += 1
        return out
