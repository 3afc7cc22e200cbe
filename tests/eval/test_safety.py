"""Video safety: the persistence rule on per-frame detections, and NudeNet on real videos."""

from __future__ import annotations

import pytest

from reelforge.eval.clip import ClipConfig, load_clip
from reelforge.eval.safety import VideoSafety, VideoSafetyConfig, decide

B = "FEMALE_BREAST_EXPOSED"


def test_one_noisy_frame_does_not_flag() -> None:
    frames = [{}, {B: 0.7}, {}, {}, {}, {}, {}, {}]
    assert not decide(frames, VideoSafetyConfig()).flagged


def test_persistent_detection_flags_with_reason() -> None:
    frames = [{}, {B: 0.7}, {B: 0.55}, {}, {}]
    verdict = decide(frames, VideoSafetyConfig())
    assert verdict.flagged and verdict.score == pytest.approx(0.7)
    assert verdict.reason == f"{B} on 2/5 frames (max 0.70, threshold 0.5)"


def test_confident_single_frame_flags() -> None:
    verdict = decide([{}, {}, {B: 0.95}, {}], VideoSafetyConfig())
    assert verdict.flagged and "single_frame_score" in verdict.reason


def test_short_video_is_not_missed_for_lack_of_votes() -> None:
    assert decide([{B: 0.6}], VideoSafetyConfig(persistence_frames=2)).flagged


def test_unconfigured_classes_are_reported_not_flagged() -> None:
    verdict = decide([{"FACE_FEMALE": 0.9}] * 4, VideoSafetyConfig())
    assert not verdict.flagged and verdict.class_scores == {"FACE_FEMALE": 0.9}


@pytest.fixture(scope="module")
def detector() -> VideoSafety:
    d = VideoSafety(VideoSafetyConfig())
    d.setup()
    return d


@pytest.fixture(scope="module")
def frame_scores(detector, samples) -> dict[str, list[dict[str, float]]]:
    cfg = ClipConfig(max_frames=2, max_side=512, safety_frames=8)
    return {name: detector.frame_scores(load_clip(str(samples / f"{name}.mp4"), cfg).safety_frames)
            for name in ("bigbuckbunny", "bikes", "carphone_pristine")}


def test_persistence_removes_a_real_false_positive(frame_scores) -> None:
    # NudeNet calls one frame of Big Buck Bunny (a cartoon) an exposed breast above 0.5.
    bunny = frame_scores["bigbuckbunny"]
    assert sum(f.get(B, 0) >= 0.5 for f in bunny) == 1
    assert decide(bunny, VideoSafetyConfig(persistence_frames=1)).flagged
    assert not decide(bunny, VideoSafetyConfig()).flagged
    assert not decide(frame_scores["bikes"], VideoSafetyConfig()).flagged


def test_persistent_real_detection_flags(frame_scores) -> None:
    # The detector's face class stands in for an unsafe class: carphone shows a face throughout,
    # bikes one face on one frame.
    faces = VideoSafetyConfig(class_thresholds={"FACE_FEMALE": 0.5})
    verdict = decide(frame_scores["carphone_pristine"], faces)
    assert verdict.flagged and verdict.reason.startswith("FACE_FEMALE on 8/8 frames")
    assert not decide(frame_scores["bikes"], faces).flagged
