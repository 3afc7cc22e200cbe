"""The `sample` job: videos from a checkpoint's EMA weights for prompts, one mp4 and JSON sidecar each.

`reelforge sample checkpoint=RUN_OR_STEP_FOLDER prompt="a red circle moving right" output=DIR` (or
`prompts=FILE`, one prompt a line). Reads only the checkpoint's model.json, train_state.json and
ema.safetensors (no unpickling); a missing or corrupt checkpoint is reported as a config error.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from typing import Any

from reelforge.platform import storage
from reelforge.platform.config import ConfigError, JobConfig, check_choice
from reelforge.train import checkpoint as ckpt
from reelforge.train.loader import parse_bucket

log = logging.getLogger("reelforge.sample")


@dataclass
class SampleConfig(JobConfig):
    # A run folder (its latest checkpoint), its checkpoints/ folder, or a checkpoints/step_NNNNNNN folder.
    checkpoint: str = ""
    # One prompt; or use `prompts`.
    prompt: str | None = None
    # A text file of prompts, one a line (blank lines skipped).
    prompts: str | None = None
    # Video length in frames; null uses the first training bucket of the checkpoint.
    frames: int | None = None
    # Video height in pixels; null uses the first training bucket.
    height: int | None = None
    # Video width in pixels; null uses the first training bucket.
    width: int | None = None
    # Sampler steps from noise to data.
    steps: int = 30
    # Classifier-free guidance scale (1.0 turns guidance off).
    guidance_scale: float = 4.0
    # Noise seed of the first prompt; prompt i uses seed + i.
    seed: int = 0
    # "euler" or "heun".
    sampler: str = "euler"
    # Torch device to sample on ("cpu", "cuda").
    device: str = "cpu"
    # Frame rate written into the mp4s, in frames per second.
    fps: float = 8.0


CONFIG = SampleConfig


def read_prompts(cfg: SampleConfig) -> list[str]:
    if cfg.prompts:
        if not storage.exists(cfg.prompts):
            raise ConfigError(f"prompts={cfg.prompts!r} does not exist: give a text file with one prompt a line.")
        return [line.strip() for line in storage.read_text(cfg.prompts).splitlines() if line.strip()]
    return [cfg.prompt] if cfg.prompt else []


def check(cfg: SampleConfig) -> None:
    if not cfg.checkpoint:
        raise ConfigError("checkpoint= is required: a training run folder or one of its checkpoints/step_* folders.")
    if bool(cfg.prompt) == bool(cfg.prompts):
        raise ConfigError('give exactly one of prompt="..." or prompts=FILE.')
    check_choice(cfg.sampler, ("euler", "heun"), "sampler")
    for name in ("frames", "height", "width"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise ConfigError(f"{name}={value} must be positive (or null for the training size).")
    if cfg.steps < 1 or cfg.fps <= 0:
        raise ConfigError("steps must be at least 1 and fps positive.")
    folder = ckpt.resolve(cfg.checkpoint)
    ckpt.read_state(folder)  # a missing or corrupt checkpoint fails before any output
    if "model" not in ckpt.read_model_meta(folder):
        raise ConfigError(f"checkpoint={cfg.checkpoint!r} is a task=vae run (an autoencoder, no DiT to sample): "
                          "point checkpoint= at a DiT run, or use the VAE with vae.path= when training one.")


def run(cfg: SampleConfig, ctx: Any) -> dict[str, Any]:
    from reelforge.data.video import EncodeSettings, encode_mp4
    from reelforge.train.render import Renderer, RenderSettings

    prompts = read_prompts(cfg)
    if not prompts:
        raise ConfigError(f"prompts={cfg.prompts!r} holds no prompt.")
    folder = ckpt.resolve(cfg.checkpoint)
    state = ckpt.read_state(folder)
    meta = ckpt.read_model_meta(folder)
    renderer = Renderer(meta, ckpt.load_weights(folder), device=cfg.device)
    frames, height, width = parse_bucket(meta["loader"]["buckets"][0])
    settings = RenderSettings(frames=cfg.frames or frames, height=cfg.height or height, width=cfg.width or width,
                              steps=cfg.steps, guidance_scale=cfg.guidance_scale, sampler=cfg.sampler, seed=cfg.seed)
    written = []
    for i, prompt in enumerate(prompts):
        video = renderer.render(prompt, settings, i)
        name = f"{i:03d}"
        storage.write_bytes(storage.join(cfg.output or "", f"{name}.mp4"), encode_mp4(video, EncodeSettings(fps=cfg.fps)))
        sidecar = {"prompt": prompt, **dataclasses.asdict(settings), "seed": cfg.seed + i, "checkpoint": folder,
                   "checkpoint_step": state["step"], "fps": cfg.fps}
        storage.write_text(storage.join(cfg.output or "", f"{name}.json"), json.dumps(sidecar, indent=1))
        written.append(f"{name}.mp4")
        log.info("%s: %r", name, prompt)
    return {"videos": len(written), "checkpoint": folder, "checkpoint_step": state["step"]}
