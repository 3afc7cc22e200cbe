"""Score a list of videos: decode each once, run the metrics and the video safety check, and keep a
small preview for the report. One row per video; a video that cannot be decoded or scored becomes a
row with its `error` and null scores, never a missing row."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from reelforge.data.video import EncodeSettings, encode_mp4
from reelforge.eval.clip import Clip, ClipConfig, decoded_size, load_clip
from reelforge.eval.metrics import Metric
from reelforge.eval.safety import VideoSafety, verdict_columns
from reelforge.platform.logs import progress

log = logging.getLogger(__name__)


@dataclass
class PreviewConfig:
    # Long side of the preview videos embedded in the report and logged to wandb, in pixels.
    side: int = 160
    # x264 constant rate factor of the previews (higher: smaller files, lower quality).
    crf: int = 28


@dataclass
class VideoInput:
    path: str  # the video file
    name: str  # its name in results (the file name)
    prompt: str | None  # from its sidecar, None when it has none
    prompt_source: str  # "json:prompt", "json:caption", "txt" or "none"


@dataclass
class Scored:
    row: dict[str, Any]  # one results.parquet row
    preview: bytes | None  # a small H.264 mp4 of the scored frames, None when decoding failed


def preview_mp4(clip: Clip, cfg: PreviewConfig) -> bytes:
    """The clip's decoded frames scaled to `cfg.side` and encoded small, for the report."""
    import cv2

    h, w = decoded_size(clip.frames.shape[2], clip.frames.shape[1], cfg.side)
    frames = clip.frames
    if (h, w) != frames.shape[1:3]:
        frames = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
    return encode_mp4(frames, EncodeSettings(fps=clip.fps, crf=cfg.crf))


def score_one(video: VideoInput, metrics: list[Metric], safety: VideoSafety | None, clip_cfg: ClipConfig,
              preview_cfg: PreviewConfig) -> Scored:
    row: dict[str, Any] = {"video": video.name, "path": video.path, "prompt": video.prompt,
                           "prompt_source": video.prompt_source}
    clip = load_clip(video.path, clip_cfg, video.prompt)
    row.update({"frames": clip.source_frames, "width": clip.source_width, "height": clip.source_height,
                "fps": clip.fps * clip_cfg.frame_stride, "scored_frames": len(clip.frames)})
    for metric in metrics:
        values = metric.score(clip)
        assert set(values) == {c.name for c in metric.columns}, f"{metric.name} returned {sorted(values)}"
        row.update(values)
    row.update(verdict_columns(safety.check(clip.safety_frames) if safety is not None else None))
    return Scored(row=row, preview=preview_mp4(clip, preview_cfg))


def score_videos(videos: list[VideoInput], metrics: list[Metric], safety: VideoSafety | None,
                 clip_cfg: ClipConfig, preview_cfg: PreviewConfig) -> Iterator[Scored]:
    """Score each video in order; a failure is recorded in the row's `error` and scoring goes on."""
    for video in progress(videos, total=len(videos), description="eval"):
        try:
            scored = score_one(video, metrics, safety, clip_cfg, preview_cfg)
            scored.row["error"] = None
        except Exception as err:  # a broken video is a result (an error row), not the end of the run
            log.warning("could not score %s: %s: %s", video.path, type(err).__name__, err)
            scored = Scored(row={"video": video.name, "path": video.path, "prompt": video.prompt,
                                 "prompt_source": video.prompt_source,
                                 "error": f"{type(err).__name__}: {err}"}, preview=None)
        yield scored
