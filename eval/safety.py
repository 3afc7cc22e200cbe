"""Video safety: NudeNet on frames spread over each video, decided per video by per-class
thresholds and a persistence rule.

The detector is ingestion's (`reelforge.data.scorers.nsfw`, NudeNet's shipped ONNX model), run
one frame per row so every frame's scores are kept. A video is flagged for a class when

- at least `persistence_frames` of its sampled frames score at or above the class threshold
  (fewer when the video has fewer sampled frames, so a short video is never cleared for lack
  of frames), or
- any one frame scores at or above `single_frame_score` (a confident detection needs no votes).

The trade-off: a detector's false positives are mostly single frames at middling scores (on Big
Buck Bunny, a cartoon, NudeNet calls one frame FEMALE_BREAST_EXPOSED at 0.68 and no other frame
above 0.5), while real content persists over frames; requiring two frames removes such one-off
false flags, at the cost of missing content shown on one sampled frame only with a middling
score. Raising `safety_frames` narrows that gap (more frames sample brief content twice);
lowering `single_frame_score` trades it back for more false flags. Scores are reported per
class for every video, flagged or not, so thresholds can be re-judged without decoding again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reelforge.platform.config import ConfigError


def _default_thresholds() -> dict[str, float]:
    # Genitalia and anus at a lower score than breasts and buttocks: the detector's confidence on
    # them is lower for the same exposure, and missing them costs more.
    return {"FEMALE_GENITALIA_EXPOSED": 0.4, "MALE_GENITALIA_EXPOSED": 0.4, "ANUS_EXPOSED": 0.4,
            "FEMALE_BREAST_EXPOSED": 0.5, "BUTTOCKS_EXPOSED": 0.5}


@dataclass
class VideoSafetyConfig:
    # Run NudeNet over each video's safety frames (clip.safety_frames sets how many).
    enabled: bool = True
    # NudeNet class -> lowest frame score that counts as a detection of it; only these classes flag.
    class_thresholds: dict[str, float] = field(default_factory=_default_thresholds)
    # Sampled frames that must reach a class's threshold to flag the video (see the module docstring).
    persistence_frames: int = 2
    # A single frame scoring at least this flags the video whatever the persistence rule says.
    single_frame_score: float = 0.9


def check_video_safety(cfg: VideoSafetyConfig) -> None:
    for name, value in cfg.class_thresholds.items():
        if not 0 < value <= 1:
            raise ConfigError(f"safety.video.class_thresholds.{name}={value} must be within (0, 1]")
    if cfg.persistence_frames < 1:
        raise ConfigError(f"safety.video.persistence_frames={cfg.persistence_frames} must be at least 1")
    if not 0 < cfg.single_frame_score <= 1:
        raise ConfigError(f"safety.video.single_frame_score={cfg.single_frame_score} must be within (0, 1]")


@dataclass
class VideoVerdict:
    flagged: bool
    reason: str | None  # e.g. "FEMALE_BREAST_EXPOSED on 3/8 frames (max 0.81, threshold 0.5)"
    score: float  # highest frame score of a configured class, 0.0 when none was detected
    class_scores: dict[str, float]  # every detected class -> its highest frame score


def decide(frame_scores: list[dict[str, float]], cfg: VideoSafetyConfig) -> VideoVerdict:
    """Apply the thresholds and the persistence rule to per-frame {class: score} detections."""
    needed = min(cfg.persistence_frames, len(frame_scores))
    reasons, top = [], 0.0
    for name, threshold in sorted(cfg.class_thresholds.items()):
        scores = [f.get(name, 0.0) for f in frame_scores]
        best = max(scores, default=0.0)
        top = max(top, best)
        hits = sum(s >= threshold for s in scores)
        if (needed and hits >= needed) or best >= cfg.single_frame_score:
            rule = "one frame above single_frame_score" if hits < needed else f"{hits}/{len(scores)} frames"
            reasons.append(f"{name} on {rule} (max {best:.2f}, threshold {threshold:g})")
    seen: dict[str, float] = {}
    for f in frame_scores:
        for name, score in f.items():
            seen[name] = max(seen.get(name, 0.0), score)
    return VideoVerdict(flagged=bool(reasons), reason="; ".join(reasons) or None, score=top,
                        class_scores=dict(sorted(seen.items())))


class VideoSafety:
    """NudeNet per frame, then `decide`; load once with `setup()`."""

    def __init__(self, cfg: VideoSafetyConfig) -> None:
        self.cfg = cfg
        self._step: Any = None

    def setup(self) -> None:
        from reelforge.data.scorers import ScorersConfig
        from reelforge.data.scorers.nsfw import Nsfw

        self._step = Nsfw(ScorersConfig(nsfw_frames=1))
        self._step.setup()

    def frame_scores(self, frames: np.ndarray) -> list[dict[str, float]]:
        """Per frame, the highest NudeNet score of each class detected in it."""
        from reelforge.data import schema

        assert self._step is not None, "setup() first"
        # The step reads frame pairs and checks each row's first frame: one row per frame.
        rows = [{"samples": schema.npy_bytes(np.stack([f, f]))} for f in frames]
        return [json.loads(r["nsfw_scores"]) for r in self._step.process(rows)]

    def check(self, frames: np.ndarray) -> VideoVerdict:
        return decide(self.frame_scores(frames), self.cfg)


def verdict_columns(verdict: VideoVerdict | None) -> dict[str, Any]:
    """The results.parquet columns of a verdict (all None when the check did not run)."""
    if verdict is None:
        return {"nsfw_flagged": None, "nsfw_score": None, "nsfw_reason": None, "nsfw_classes": None}
    return {"nsfw_flagged": verdict.flagged, "nsfw_score": round(verdict.score, 4), "nsfw_reason": verdict.reason,
            "nsfw_classes": json.dumps(verdict.class_scores)}
