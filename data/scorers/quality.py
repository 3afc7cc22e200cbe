"""No-reference image quality: BRISQUE (Mittal, Moorthy and Bovik, 2012), mean over sampled frames.

Lower is better (about 0-100). The `brisque` package ships its SVM model, so nothing downloads.
Its features are computed here rather than by the package's `score`, which spends most of its time
in scipy's direct 2-D convolution and on a full-size MSCN map it then throws away: the same
features (same Gaussian window, same zero-padded borders, same AGGD fit and root finder) and the
same SVR, in about a sixth of the time. Scores match the package's to 1e-9 on most frames and to
0.1 (of 0-100) on blocky ones, where MSCN values that are zero in exact arithmetic fall either side
of 0 with the convolution's rounding (tests/data/test_scorers.py compares the two).
A frame BRISQUE cannot score (flat frames give NaN features) is left out; with none left the
score is null.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np

from reelforge.data import schema
from reelforge.data.step import Resources, Row, Step

KERNEL_SIDE, KERNEL_SIGMA = 7, 7 / 6  # the package's MSCN window
GREY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721])  # skimage.color.rgb2gray, which the package uses


def _window() -> np.ndarray:
    y, x = np.indices((KERNEL_SIDE, KERNEL_SIDE)) - KERNEL_SIDE // 2
    k = 1 / (2 * np.pi * KERNEL_SIGMA ** 2) * np.exp(-(x ** 2 + y ** 2) / (2 * KERNEL_SIGMA ** 2))
    return k / k.sum()


def _aggd_fit(x: np.ndarray) -> tuple[float, float, float, float]:
    """Asymmetric generalised Gaussian fit (alpha, mean, sigma_l, sigma_r), as the package does it."""
    from scipy import optimize, special

    sq = x * x
    neg = x < 0
    n_neg = int(neg.sum())
    left = float(sq[neg].sum()) / n_neg if n_neg else float("nan")
    right = float(sq[~neg].sum()) / (x.size - n_neg) if x.size - n_neg else float("nan")
    r_hat = (float(np.abs(x).sum()) / x.size) ** 2 / (float(sq.sum()) / x.size)
    gamma = math.sqrt(left) / math.sqrt(right) if right > 0 else float("nan")
    big_r = r_hat * (gamma ** 3 + 1) * (gamma + 1) / (gamma ** 2 + 1) ** 2

    def phi(a: np.ndarray) -> np.ndarray:
        return special.gamma(2 / a) ** 2 / (special.gamma(1 / a) * special.gamma(3 / a)) - big_r

    alpha = optimize.root(phi, [0.2]).x[0]
    sigma_l, sigma_r = math.sqrt(left), math.sqrt(right)
    const = np.sqrt(special.gamma(1 / alpha) / special.gamma(3 / alpha))
    mean = (sigma_r - sigma_l) * const * (special.gamma(2 / alpha) / special.gamma(1 / alpha))
    return float(alpha), float(mean), sigma_l, sigma_r


def _scale_features(grey: np.ndarray, window: np.ndarray) -> list[float]:
    import cv2

    # scipy's convolve2d(..., "same") pads with zeros; the window is symmetric, so correlation = convolution.
    mu = cv2.filter2D(grey, cv2.CV_64F, window, borderType=cv2.BORDER_CONSTANT)
    var = cv2.filter2D(grey * grey, cv2.CV_64F, window, borderType=cv2.BORDER_CONSTANT)
    mscn = (grey - mu) / (np.sqrt(np.abs(mu * mu - var)) + 1 / 255)
    out: list[float] = []
    alpha, _, sl, sr = _aggd_fit(mscn)
    out += [alpha, (sl ** 2 + sr ** 2) / 2]
    for prod in (mscn[:, :-1] * mscn[:, 1:], mscn[:-1, :] * mscn[1:, :], mscn[:-1, :-1] * mscn[1:, 1:],
                 mscn[1:, :-1] * mscn[:-1, 1:]):
        alpha, mean, sl, sr = _aggd_fit(prod)
        out += [alpha, mean, sl ** 2, sr ** 2]
    return out


def brisque_features(frame: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features of an RGB uint8 frame: 18 at full size, 18 at half size."""
    import cv2

    grey = (frame.astype(np.float64) / 255.0) @ GREY_WEIGHTS
    window = _window()
    half = cv2.resize(grey, None, fx=1 / 2, fy=1 / 2, interpolation=cv2.INTER_CUBIC)
    return np.array(_scale_features(grey, window) + _scale_features(half, window))


class _PlainDataUnpickler(pickle.Unpickler):
    """Reads brisque's shipped normaliser (a dict of float lists) and refuses any class or function."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"normalize.pickle refers to {module}.{name}; only plain data is read")


class Svr:
    """The package's epsilon-SVR (RBF kernel) with its feature scaling, evaluated with NumPy.

    libsvm's own predict walks its 770 support vectors one sparse node at a time, which costs more
    than the features; this is the same sum, sum_i coef_i * exp(-gamma * |sv_i - x|^2) - rho.
    """

    def __init__(self, sv: np.ndarray, coef: np.ndarray, gamma: float, rho: float, lo: np.ndarray,
                 hi: np.ndarray) -> None:
        self.sv, self.coef, self.gamma, self.rho, self.lo, self.hi = sv, coef, gamma, rho, lo, hi

    @classmethod
    def load(cls) -> Svr:
        import importlib.util
        import os

        # Only the package's model files are used: finding them without importing the package spares
        # each worker its imports (scikit-image, requests, libsvm), most of a second.
        spec = importlib.util.find_spec("brisque")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("the quality scorer needs brisque: pip install brisque")
        models = os.path.join(spec.submodule_search_locations[0], "models")
        head: dict[str, str] = {}
        coef, rows = [], []
        with open(os.path.join(models, "svm.txt")) as f:
            for line in f:
                if line.strip() == "SV":
                    break
                key, _, value = line.strip().partition(" ")
                head[key] = value
            for line in f:
                first, *nodes = line.split()
                coef.append(float(first))
                rows.append({int(k): float(v) for k, v in (n.split(":") for n in nodes)})
        if head.get("svm_type") != "epsilon_svr" or head.get("kernel_type") != "rbf":
            raise ValueError(f"brisque's model is {head.get('svm_type')}/{head.get('kernel_type')}, expected "
                             "epsilon_svr/rbf: this brisque version is not supported")
        with open(os.path.join(models, "normalize.pickle"), "rb") as f:
            scale = _PlainDataUnpickler(f).load()
        lo = np.asarray(scale["min_"], np.float64).reshape(-1)
        hi = np.asarray(scale["max_"], np.float64).reshape(-1)
        sv = np.zeros((len(rows), len(lo)))
        for i, nodes in enumerate(rows):
            for k, v in nodes.items():
                sv[i, k - 1] = v
        return cls(sv, np.asarray(coef), float(head["gamma"]), float(head["rho"]), lo, hi)

    def predict(self, features: np.ndarray) -> float:
        x = -1 + 2.0 / (self.hi - self.lo) * (features - self.lo)
        if not np.isfinite(x).all():
            return float("nan")
        d2 = ((self.sv - x) ** 2).sum(axis=1)
        return float(self.coef @ np.exp(-self.gamma * d2) - self.rho)


class Quality(Step):
    name = "quality"

    def __init__(self, cfg: Any, resources: Resources | None = None) -> None:
        super().__init__(resources or Resources(num_cpus=1, batch_size=8))
        self.frames: int = cfg.quality_frames  # sampled frames scored per clip
        self._svr: Svr | None = None

    def setup(self) -> None:
        self._svr = Svr.load()

    def score(self, frame: np.ndarray) -> float:
        """BRISQUE score of one RGB frame (NaN when its features are undefined)."""
        return self._svr.predict(brisque_features(frame))

    def process(self, rows: list[Row]) -> list[Row]:
        for row in rows:
            firsts = schema.npy_load(row["samples"])[0::2]
            picks = np.linspace(0, len(firsts) - 1, min(self.frames, len(firsts))).round().astype(int)
            scores = [self.score(firsts[i]) for i in picks]
            finite = [s for s in scores if math.isfinite(s)]
            row["brisque"] = float(np.mean(finite)) if finite else None
        return rows
