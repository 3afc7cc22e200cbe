"""Fréchet video distance (Unterthiner et al., 2018, "Towards accurate generative models of video"):
the Fréchet distance between Gaussians fitted to I3D features of the scored videos and of a reference
set of real videos, |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)). Lower is better; a set-level
score: one value per result set, in summary.json and the report's headline table.

FVD is biased upward with few videos (the mean and covariance of 400-d features are estimated from
them; StyleGAN-V uses 2048 per side): compare values only at equal video counts, and read a value
from a dozen videos as a smoke test, not a measurement.

The I3D (`models.fvd.i3d`) is a TorchScript file loaded with torch.jit.load (no arbitrary Python
objects are unpickled). The only contract relied on is StyleGAN-V's `i3d_torchscript.pt` call:
`i3d(x, rescale=False, resize=False, return_features=True) -> (N, D)` features, where x is float32
(N, 3, T, S, S) in [-1, 1]; D is taken from the output (400 for that model). Each video's input is its
first `fvd.frames` decoded frames (clip.frame_stride applies), the short side resized to `fvd.size`
(bilinear, as common FVD code), centre-cropped, scaled to [-1, 1]; shorter videos are left out and counted.
Reference videos are decoded with the same clip settings. Their features are cached in the output
folder (`fvd_reference/<key>.npz`), keyed by the reference files' and the I3D file's hashes and the settings.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
from typing import Any

import numpy as np

from reelforge.eval.clip import Clip, find_videos, load_clip
from reelforge.eval.metrics.base import Column, Metric
from reelforge.eval.metrics.models import ModelContext
from reelforge.platform import storage
from reelforge.platform.config import ConfigError
from reelforge.platform.logs import progress

log = logging.getLogger(__name__)


def i3d_input(frames: np.ndarray, length: int, size: int) -> np.ndarray | None:
    """float32 (3, length, size, size) in [-1, 1] from uint8 (T, H, W, 3) frames; None when T < length."""
    import cv2

    if len(frames) < length:
        return None
    h, w = frames.shape[1:3]
    scale = size / min(h, w)
    rh, rw = max(size, math.ceil(h * scale)), max(size, math.ceil(w * scale))
    top, left = (rh - size) // 2, (rw - size) // 2
    out = np.stack([cv2.resize(f, (rw, rh), interpolation=cv2.INTER_LINEAR)[top:top + size, left:left + size]
                    for f in frames[:length]])  # (T, S, S, 3)
    return (out.astype(np.float32) / 127.5 - 1.0).transpose(3, 0, 1, 2)  # (3, T, S, S)


def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of (N, D) features (N >= 2)."""
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, s1) and N(mu2, s2). tr((S1 S2)^(1/2)) is computed as the trace of the
    symmetric PSD root (S1^(1/2) S2 S1^(1/2))^(1/2), from eigenvalues: real and stable even for the singular
    covariances of fewer videos than feature dimensions, where scipy.linalg.sqrtm turns complex."""
    r1 = _psd_sqrt(s1)
    middle = r1 @ s2 @ r1
    tr_root = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum())
    return max(0.0, float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * tr_root))


def _sha256(path: str) -> str:
    return hashlib.sha256(storage.read_bytes(path)).hexdigest()


class Fvd(Metric):
    name = "fvd"
    columns = ()
    set_columns = (Column("fvd", "lower", "set-level Fréchet video distance (I3D features) to models.fvd.reference; "
                                          "biased upward with few videos"),)
    needs = ("fvd.i3d", "fvd.reference")

    def __init__(self, context: ModelContext) -> None:
        self.cfg, self.clip_cfg, self.cache = context.models.fvd, context.clip, context.cache
        self.device = context.models.device
        self.i3d: Any = None
        self.reference = np.zeros((0, 0))  # (R, D) reference features
        self.reference_skipped: list[str] = []  # reference videos left out (undecodable or too short)
        self.features: dict[str, np.ndarray] = {}  # scored video path -> (D,) features
        self.too_short: set[str] = set()  # scored videos with fewer than `frames` decoded frames
        self._pending: list[tuple[str, np.ndarray]] = []  # inputs waiting for a full batch

    def setup(self) -> None:
        import torch

        assert self.cfg.i3d is not None and self.cfg.reference is not None  # check_model_key has run
        self.i3d = torch.jit.load(self.cfg.i3d, map_location=self.device).eval()
        self.reference, self.reference_skipped = self.reference_features()

    def embed(self, inputs: list[np.ndarray]) -> np.ndarray:
        """(N, D) I3D features of (3, T, S, S) inputs, `batch_size` videos per call."""
        import torch

        out = []
        for i in range(0, len(inputs), self.cfg.batch_size):
            x = torch.from_numpy(np.stack(inputs[i:i + self.cfg.batch_size])).to(self.device)
            with torch.inference_mode():
                feats = self.i3d(x, rescale=False, resize=False, return_features=True)
            if feats.ndim != 2 or feats.shape[0] != len(x):
                raise ValueError(f"models.fvd.i3d={self.cfg.i3d!r} returned shape {tuple(feats.shape)} for "
                                 f"{len(x)} videos; it must return (N, D) features (see eval/metrics/fvd.py)")
            out.append(feats.double().cpu().numpy())
        return np.concatenate(out)

    def cache_key(self, videos: list[str]) -> str:
        settings = {"frames": self.cfg.frames, "size": self.cfg.size, "max_frames": self.clip_cfg.max_frames,
                    "frame_stride": self.clip_cfg.frame_stride, "max_side": self.clip_cfg.max_side,
                    "i3d": _sha256(str(self.cfg.i3d))}
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
        for path in videos:
            digest.update(f"{os.path.basename(path)}\0{_sha256(path)}\0".encode())
        return digest.hexdigest()[:20]

    def reference_features(self) -> tuple[np.ndarray, list[str]]:
        """(R, D) features of the reference videos and the names left out: from the cache, or computed and cached."""
        assert self.cfg.reference is not None
        videos = find_videos(self.cfg.reference)
        cached = storage.join(self.cache, f"{self.cache_key(videos)}.npz")
        if storage.exists(cached):
            with np.load(io.BytesIO(storage.read_bytes(cached)), allow_pickle=False) as npz:
                return npz["features"], [str(s) for s in npz["skipped"]]
        inputs, skipped = [], []
        for path in progress(videos, total=len(videos), description="fvd reference"):
            try:
                x = i3d_input(load_clip(path, self.clip_cfg).frames, self.cfg.frames, self.cfg.size)
            except Exception as err:  # a broken reference video is left out and listed, as a scored one would be
                log.warning("fvd: reference %s left out: %s: %s", path, type(err).__name__, err)
                x = None
            if x is None:
                skipped.append(os.path.basename(path))
            else:
                inputs.append(x)
        if len(inputs) < 2:
            raise ConfigError(f"models.fvd.reference={self.cfg.reference!r}: only {len(inputs)} of {len(videos)} "
                              f"videos decode with at least models.fvd.frames={self.cfg.frames} frames; FVD needs 2 "
                              "or more (hundreds for a trustworthy value)")
        features = self.embed(inputs)
        buf = io.BytesIO()
        np.savez(buf, features=features, skipped=np.array(skipped, dtype=str))
        storage.write_bytes(cached, buf.getvalue())
        log.info("fvd: %d reference videos embedded (%d left out), cached in %s", len(features), len(skipped), cached)
        return features, skipped

    def _flush(self) -> None:
        if self._pending:
            feats = self.embed([x for _, x in self._pending])
            self.features.update({path: f for (path, _), f in zip(self._pending, feats, strict=True)})
            self._pending = []

    def score(self, clip: Clip) -> dict[str, Any]:
        x = i3d_input(clip.frames, self.cfg.frames, self.cfg.size)
        if x is None:
            self.too_short.add(clip.path)
        else:
            self._pending.append((clip.path, x))
            if len(self._pending) >= self.cfg.batch_size:
                self._flush()
        return {}

    def summarize(self, paths: list[str]) -> dict[str, dict[str, Any]]:
        self._flush()
        feats = [self.features[p] for p in paths if p in self.features]
        value = None
        if len(feats) >= 2:
            value = frechet_distance(*gaussian(np.stack(feats)), *gaussian(self.reference))
        return {"fvd": {"value": value, "count": len(feats), "too_short": sum(p in self.too_short for p in paths),
                        "reference_videos": len(self.reference), "reference_skipped": self.reference_skipped,
                        "frames": self.cfg.frames, "size": self.cfg.size}}
