"""NIQE's pieces: the AGGD fit recovers known distributions, features have the model's layout."""

from __future__ import annotations

import numpy as np
import pytest

from reelforge.eval.metrics.niqe import aggd, frame_features, niqe, pristine_model


@pytest.mark.parametrize(("sample", "shape"), [("normal", 2.0), ("laplace", 1.0)])
def test_aggd_recovers_shape(sample: str, shape: float) -> None:
    rng = np.random.default_rng(0)
    values = getattr(rng, sample)(0.0, 1.0, 200_000)
    fitted, left, right = aggd(values)
    assert fitted == pytest.approx(shape, abs=0.05)
    assert left == pytest.approx(right, rel=0.03)


def test_aggd_sees_asymmetry() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(0, 1, 100_000)
    values[values > 0] *= 3
    _, left, right = aggd(values)
    assert right / left == pytest.approx(3, rel=0.05)


def test_features_match_the_pristine_model_layout(real_clips) -> None:
    import cv2

    mu, cov = pristine_model()
    assert mu.shape == (36,) and cov.shape == (36, 36)
    frame = real_clips["bikes"].frames[0]  # 640x272: 2 rows x 6 columns of 96-pixel blocks
    feats = frame_features(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float64))
    assert feats.shape == (12, 36)
    # Shape parameters of natural MSCN coefficients sit near the model's (about 2-3), not at the grid edges.
    assert 1.0 < feats[:, 0].mean() < 4.0 and 1.0 < feats[:, 18].mean() < 4.0
    assert niqe(frame[:150], (mu, cov)) is None


def test_diagonal_layout_follows_the_shipped_model(real_clips) -> None:
    import cv2

    mu, _ = pristine_model()
    # The shipped model has equal 3rd and 4th entries for the diagonal neighbours at both scales.
    for first in (12, 16, 30, 34):
        assert mu[first] == mu[first + 1]
    feats = frame_features(cv2.cvtColor(real_clips["bikes"].frames[0], cv2.COLOR_RGB2GRAY).astype(np.float64))
    assert np.array_equal(feats[:, 12], feats[:, 13]) and not np.array_equal(feats[:, 4], feats[:, 5])
