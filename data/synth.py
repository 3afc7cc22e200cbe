"""`reelforge synth`: a real video source of moving shapes with controlled attributes.

Each video is one coloured shape crossing a plain or textured background in one direction at
one speed, encoded as H.264 mp4 with a caption sidecar (`.txt`) and an attribute sidecar
(`.json`). Held-out attribute combinations (e.g. "green+up") are never rendered; their prompts go
to `heldout.json` so a model's compositional generalisation can be measured. Video `i` depends
only on (seed, i), so the same seed gives the same files whatever `num_videos` is.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reelforge.data import vocab
from reelforge.data.video import EncodeSettings, encode_mp4
from reelforge.platform import storage
from reelforge.platform.config import ConfigError, JobConfig
from reelforge.platform.logs import progress

log = logging.getLogger(__name__)


@dataclass
class SynthSettings:
    """What to render; `reelforge synth` and the demo both carry these."""

    # How many videos to write.
    num_videos: int = 24
    # Seed of every random choice; video i depends only on (seed, i).
    seed: int = 0
    # Frame width in pixels (even, at least 16).
    width: int = 64
    # Frame height in pixels (even, at least 16).
    height: int = 64
    # Frames per second of the written videos.
    fps: float = 8.0
    # Length of each video in seconds.
    seconds: float = 4.0
    # Held-out attribute combinations, e.g. ["green+up", "red+square"]: never rendered, listed in heldout.json.
    holdout: list[str] = field(default_factory=list)
    # Render only scenes matching one of these combinations (e.g. ["plain"] for plain backgrounds only);
    # held-out prompts are limited the same way. [] renders every scene the vocabulary allows.
    only: list[str] = field(default_factory=list)
    # x264 constant rate factor of the written mp4s (lower: better quality, bigger files).
    crf: int = 18
    # File name prefix: files are <prefix>_<index:06d>.mp4/.txt/.json.
    name_prefix: str = "shapes"


@dataclass
class SynthConfig(JobConfig, SynthSettings):
    """Root of `reelforge synth`: the render settings plus output, tracking and logging."""


CONFIG = SynthConfig


def check(cfg: SynthSettings) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Validate the settings (ConfigError names the field); returns the parsed held-out and `only` combinations."""
    if cfg.num_videos < 0:
        raise ConfigError(f"num_videos={cfg.num_videos} must be zero or more")
    for key in ("width", "height"):
        value = getattr(cfg, key)
        if value < 16 or value % 2:
            raise ConfigError(f"{key}={value} must be an even number of pixels, at least 16 (H.264 needs even sizes)")
    if cfg.fps <= 0 or cfg.seconds <= 0:
        raise ConfigError(f"fps={cfg.fps} and seconds={cfg.seconds} must both be positive")
    if round(cfg.fps * cfg.seconds) < 2:
        raise ConfigError(f"fps*seconds={cfg.fps * cfg.seconds:g} gives fewer than 2 frames; raise fps or seconds")
    if not 0 <= cfg.crf <= 51:
        raise ConfigError(f"crf={cfg.crf} must be within 0..51 (x264's range)")
    parsed = {}
    for key in ("holdout", "only"):
        try:
            parsed[key] = [vocab.parse_combo(text) for text in getattr(cfg, key)]
        except ValueError as err:
            raise ConfigError(f"{key}: {err}") from err
    combos, only = parsed["holdout"], parsed["only"]
    if not allowed_scenes(combos, only)[0]:
        raise ConfigError(f"holdout={cfg.holdout} with only={cfg.only} leaves no attribute combination to render")
    return combos, only


def allowed_scenes(combos: list[dict[str, str]], only: list[dict[str, str]] | None = None
                   ) -> tuple[list[vocab.Scene], list[vocab.Scene]]:
    """(scenes that may be rendered, held-out scenes), both in vocabulary order, within `only` when given."""
    keep, held = [], []
    for scene in vocab.all_scenes():
        if only and not any(vocab.matches(scene, c) for c in only):
            continue
        (held if any(vocab.matches(scene, c) for c in combos) else keep).append(scene)
    return keep, held


# --- rendering ---------------------------------------------------------------------------------


def _background(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A static grey background (H, W, 3) float32 in 0..255; textures are two grey levels."""
    base = rng.uniform(25, 70)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "plain":
        level = np.full((h, w), base, np.float32)
    else:
        period = max(4, int(min(h, w) // rng.choice([6, 8])))
        if kind == "striped":
            along = [yy, xx, (xx + yy) / np.sqrt(2)][rng.integers(3)]
            on = (along // (period / 2)) % 2 == 0
        else:  # checkered
            on = ((yy // period) + (xx // period)) % 2 == 0
        level = np.where(on, base, base + rng.uniform(35, 60)).astype(np.float32)
    return np.repeat(level[..., None], 3, axis=2)


def _signed_distance(shape: str, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    """Distance in pixels outside the shape's edge (negative inside)."""
    dy, dx = yy - cy, xx - cx
    if shape == "circle":
        return np.sqrt(dx * dx + dy * dy) - r
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - r * 0.85
    # Upward equilateral triangle inscribed in radius r: the largest of its three edge distances.
    k = np.sqrt(3.0) / 2
    return np.maximum.reduce([dy - r / 2, -k * dx - dy / 2 - r / 2, k * dx - dy / 2 - r / 2])


def render(scene: vocab.Scene, *, width: int, height: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 of `scene`; the shape stays wholly inside the frame throughout."""
    bg = _background(scene.background, height, width, rng)
    side = min(height, width)
    radius = side * rng.uniform(0.12, 0.17)
    dx, dy = vocab.DIRECTIONS[scene.direction]
    travel = vocab.SPEEDS[scene.speed][1] * side
    margin = radius + 1.0

    def start(extent: float, step: int) -> float:
        if step == 0:
            return rng.uniform(margin, extent - margin)
        lo, hi = margin, extent - margin - travel
        pos = rng.uniform(lo, max(lo, hi))
        return pos if step > 0 else extent - pos

    x0, y0 = start(width, dx), start(height, dy)
    color = np.asarray(vocab.COLORS[scene.color], np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        f = t / max(1, frames - 1)
        cx, cy = x0 + dx * travel * f, y0 + dy * travel * f
        # One-pixel soft edge: sub-pixel motion moves the shape smoothly rather than in jumps.
        alpha = np.clip(0.5 - _signed_distance(scene.shape, yy, xx, cy, cx, radius), 0.0, 1.0)[..., None]
        out[t] = np.rint(bg * (1 - alpha) + color * alpha).astype(np.uint8)
    return out


def heldout_prompts(held: list[vocab.Scene], combos: list[str], seed: int) -> list[dict[str, Any]]:
    prompts = []
    for i, scene in enumerate(held):
        names = [c for c in combos if vocab.matches(scene, vocab.parse_combo(c))]
        prompts.append({"prompt": scene.caption(), "attributes": scene.as_dict(), "holdout": names,
                        "seed": seed * 1_000_003 + i})
    return prompts


def run(cfg: SynthConfig, ctx: Any) -> dict[str, Any]:
    summary = write_videos(cfg, cfg.output)
    ctx.tracker.summary({"synth/videos": summary["videos"], "synth/heldout_prompts": summary["heldout_prompts"]})
    return summary


def write_videos(cfg: SynthSettings, output: str) -> dict[str, Any]:
    """Render and write `cfg.num_videos` videos, their sidecars, heldout.json and synth.json to `output`."""
    combos, only = check(cfg)
    keep, held = allowed_scenes(combos, only)
    frames = round(cfg.fps * cfg.seconds)
    settings = EncodeSettings(fps=cfg.fps, crf=cfg.crf)
    storage.makedirs(output)
    counts: dict[str, dict[str, int]] = {attr: {} for attr in vocab.ATTRIBUTES}
    total_bytes = 0
    for i in progress(range(cfg.num_videos), total=cfg.num_videos, description="synth"):
        rng = np.random.default_rng([cfg.seed, i])
        scene = keep[int(rng.integers(len(keep)))]
        video = render(scene, width=cfg.width, height=cfg.height, frames=frames, rng=rng)
        data = encode_mp4(video, settings)
        stem = storage.join(output, f"{cfg.name_prefix}_{i:06d}")
        side = {"caption": scene.caption(), "attributes": scene.as_dict(), "seed": cfg.seed, "index": i,
                "fps": cfg.fps, "frames": frames, "width": cfg.width, "height": cfg.height}
        # The video is written last: a reader that finds the mp4 also finds its sidecars.
        storage.write_text(stem + ".txt", scene.caption() + "\n")
        storage.write_text(stem + ".json", json.dumps(side, indent=1))
        storage.write_bytes(stem + ".mp4", data)
        total_bytes += len(data)
        for attr, value in scene.as_dict().items():
            counts[attr][value] = counts[attr].get(value, 0) + 1
    prompts = heldout_prompts(held, cfg.holdout, cfg.seed)
    storage.write_text(storage.join(output, "heldout.json"), json.dumps(prompts, indent=1))
    summary = {"videos": cfg.num_videos, "frames_per_video": frames, "bytes": total_bytes,
               "heldout_prompts": len(prompts), "attribute_counts": counts, "output": output}
    storage.write_text(storage.join(output, "synth.json"), json.dumps(summary, indent=1))
    log.info("wrote %d videos (%.1f KiB) and %d held-out prompts to %s", cfg.num_videos, total_bytes / 1024,
             len(prompts), output)
    return summary
