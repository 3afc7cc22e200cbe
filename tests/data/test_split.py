from __future__ import annotations

import numpy as np

from reelforge.data.decode import choose_bucket, cover_size, sample_indices
from reelforge.data.split import ShotDetector, SplitConfig, Splitter, plan_windows
from reelforge.data.video import decode_frames


def test_plan_windows_equal_parts_within_limits() -> None:
    assert plan_windows(5, 8, 40) == []
    assert plan_windows(40, 8, 40) == [(0, 40)]
    assert plan_windows(100, 8, 40) == [(0, 33), (33, 67), (67, 100)]
    for n in range(8, 200):
        wins = plan_windows(n, 8, 40)
        assert all(8 <= b - a <= 40 for a, b in wins) and wins[0][0] == 0 and wins[-1][1] == n


def test_shot_detector_finds_the_real_cut(cut_video) -> None:
    frames = decode_frames(str(cut_video))
    det = ShotDetector(SplitConfig())
    cuts = [i for i, f in enumerate(frames) if det.is_cut(f)]
    assert cuts == [16]


def test_steady_motion_is_not_a_cut() -> None:
    frames = np.zeros((30, 64, 64, 3), np.uint8)
    for t in range(30):
        frames[t, :, (t * 2) % 64:(t * 2) % 64 + 16] = 255  # a bar sweeping right
    det = ShotDetector(SplitConfig())
    assert not any(det.is_cut(f) for f in frames)


def test_splitter_cuts_at_shots_and_windows_long_ones() -> None:
    cfg = SplitConfig(min_clip_seconds=1.0, max_clip_seconds=2.0)
    a = np.zeros((50, 32, 32, 3), np.uint8)  # 50 frames = 6.25 s at 8 fps: windows of <= 16 frames
    b = np.full((5, 32, 32, 3), 255, np.uint8)  # a 5-frame shot: shorter than 8 frames, no clip
    splitter = Splitter(cfg, fps=8.0)
    wins = [w for f in np.concatenate([a, b]) for w in splitter.push(f)] + splitter.finish()
    spans = [(w.start, w.start + len(w.frames)) for w in wins]
    assert spans[0] == (0, 16) and spans[-1][1] == 50
    assert all(8 <= e - s <= 16 for s, e in spans)
    assert [s for s, _ in spans[1:]] == [e for _, e in spans[:-1]]  # no gaps, no overlaps


def test_buckets_and_sampling() -> None:
    buckets = [(256, 144), (192, 192), (144, 256)]
    assert choose_bucket(1280, 720, buckets) == (256, 144)
    assert choose_bucket(176, 144, buckets) == (192, 192)
    assert choose_bucket(720, 1280, buckets) == (144, 256)
    w, h = cover_size(640, 272, (256, 144))
    assert w >= 256 and h == 144
    assert sample_indices(250, 25.0, 8.0)[:4] == [0, 3, 6, 9] and len(sample_indices(250, 25.0, 8.0)) == 80
    assert sample_indices(10, 5.0, 8.0) == list(range(10))  # never upsampled
