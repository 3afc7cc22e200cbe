"""A decoded video as the scorers see it: consecutive frames, the frame rate, sampled frames, its prompt.

Each video is decoded once (decord, resized so its long side is at most `max_side`): a run of
consecutive frames from the start (every `frame_stride`-th, at most `max_frames`) for the temporal
metrics, plus `safety_frames` frames spread over the whole video for the safety check, in one call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from reelforge.data.video import decode_frames, video_info
from reelforge.platform import storage

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi")


@dataclass
class ClipConfig:
    # Most consecutive frames decoded per video for the temporal metrics (from the start).
    max_frames: int = 48
    # Take every Nth frame of the video (1: all); the metrics see the video at fps / N.
    frame_stride: int = 1
    # Long side of decoded frames in pixels; larger videos are scaled down while decoding.
    max_side: int = 512
    # Frames (spread over the decoded run) the per-image metrics (sharpness, BRISQUE, NIQE) score.
    image_frames: int = 4
    # Frames spread over the whole video that the safety check reads.
    safety_frames: int = 8


@dataclass
class Clip:
    """One decoded video; `frames` are consecutive (at `fps`), uint8 (T, H, W, 3) RGB."""

    path: str
    prompt: str | None
    frames: np.ndarray
    fps: float
    safety_frames: np.ndarray
    image_frame_count: int
    source_frames: int
    source_width: int
    source_height: int

    def image_frames(self) -> np.ndarray:
        """Up to `image_frame_count` frames evenly spread over `frames` (first and last included)."""
        picks = np.linspace(0, len(self.frames) - 1, min(self.image_frame_count, len(self.frames)))
        return self.frames[np.unique(picks.round().astype(int))]


def find_videos(folder: str) -> list[str]:
    """Sorted video files directly in `folder`."""
    return [p for p in storage.listdir(folder) if p.lower().endswith(VIDEO_SUFFIXES)]


def read_prompt(video: str) -> tuple[str | None, str]:
    """(prompt, where it came from): the JSON sidecar's `prompt` (or `caption`), else the .txt sidecar."""
    stem = video.rsplit(".", 1)[0]
    if storage.exists(stem + ".json"):
        meta = json.loads(storage.read_text(stem + ".json"))
        for key in ("prompt", "caption"):
            if isinstance(meta, dict) and isinstance(meta.get(key), str) and meta[key].strip():
                return meta[key].strip(), f"json:{key}"
    if storage.exists(stem + ".txt"):
        text = storage.read_text(stem + ".txt").strip()
        if text:
            return text, "txt"
    return None, "none"


def decoded_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(height, width) after scaling the long side down to `max_side`, kept even for the encoder."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, round(height * scale / 2) * 2), max(2, round(width * scale / 2) * 2)


def load_clip(path: str, cfg: ClipConfig, prompt: str | None = None) -> Clip:
    """Decode `path` once into a Clip (see the module docstring)."""
    data = storage.read_bytes(path)
    info = video_info(data)
    total, width, height = int(info["frames"]), int(info["width"]), int(info["height"])
    if total < 1:
        raise ValueError(f"{path} has no frames")
    run = list(range(0, total, cfg.frame_stride))[: cfg.max_frames]
    spread = np.linspace(0, total - 1, min(cfg.safety_frames, total)).round().astype(int).tolist()
    wanted = sorted(set(run) | set(spread))
    size = decoded_size(width, height, cfg.max_side)
    decoded = decode_frames(data, wanted, size=None if size == (height, width) else size)
    at = {index: i for i, index in enumerate(wanted)}
    return Clip(path=path, prompt=prompt, frames=decoded[[at[i] for i in run]],
                fps=float(info["fps"]) / cfg.frame_stride, safety_frames=decoded[[at[i] for i in spread]],
                image_frame_count=cfg.image_frames, source_frames=total, source_width=width,
                source_height=height)


def clip_from_frames(frames: np.ndarray, fps: float, prompt: str | None = None, image_frames: int = 4,
                     path: str = "<frames>") -> Clip:
    """A Clip over frames already in memory (a sampler's output, or a test's corrupted video)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    return Clip(path=path, prompt=prompt, frames=frames, fps=fps, safety_frames=frames,
                image_frame_count=image_frames, source_frames=len(frames), source_width=frames.shape[2],
                source_height=frames.shape[1])
