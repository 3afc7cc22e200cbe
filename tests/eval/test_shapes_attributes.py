"""The shapes attribute scorer agrees with synth's ground truth on real synth videos, and catches
videos that do not show what their prompt asks for."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reelforge.data import vocab
from reelforge.eval.clip import ClipConfig, clip_from_frames, load_clip, read_prompt
from reelforge.eval.metrics.shapes_attributes import ShapesAttributes


@pytest.fixture(scope="module")
def synth_clips(synth_dir):
    out = []
    for path in sorted(synth_dir.glob("*.mp4")):
        prompt, source = read_prompt(str(path))
        assert source == "json:caption"
        truth = json.loads(path.with_suffix(".json").read_text())["attributes"]
        out.append((load_clip(str(path), ClipConfig(), prompt), truth))
    return out


def test_reads_synth_ground_truth(synth_clips) -> None:
    metric = ShapesAttributes()
    assert len(synth_clips) == 24
    for clip, truth in synth_clips:
        seen = metric.read(clip.frames)
        assert seen == {k: truth[k] for k in ("color", "shape", "direction", "speed")}, clip.path
        scored = metric.score(clip)
        assert scored["shapes_attributes"] == 1.0
        assert scored["shapes_color_ok"] and scored["shapes_shape_ok"] and scored["shapes_direction_ok"]


def test_wrong_prompt_and_reversed_video(synth_clips) -> None:
    metric = ShapesAttributes()
    clip, truth = synth_clips[0]
    other_color = next(c for c in vocab.COLORS if c != truth["color"])
    wrong = vocab.Scene(**{**truth, "color": other_color}).caption()
    scored = metric.score(clip_from_frames(clip.frames, clip.fps, prompt=wrong))
    assert scored["shapes_color_ok"] is False and scored["shapes_attributes"] == pytest.approx(2 / 3)
    # Played backwards, the object moves the opposite way: the direction check fails.
    backwards = metric.score(clip_from_frames(clip.frames[::-1].copy(), clip.fps, prompt=clip.prompt))
    assert backwards["shapes_direction_ok"] is False and backwards["shapes_color_ok"] is True


def test_no_object_and_other_prompts(synth_clips) -> None:
    metric = ShapesAttributes()
    clip, _ = synth_clips[0]
    grey = np.full_like(clip.frames, 90)
    blank = metric.score(clip_from_frames(grey, clip.fps, prompt=clip.prompt))
    assert blank["shapes_attributes"] == 0.0 and blank["shapes_seen"] == "None None None None"
    other = metric.score(clip_from_frames(clip.frames, clip.fps, prompt="a dog running on a beach"))
    assert all(v is None for v in other.values())
