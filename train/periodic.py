"""Things the trainer does on their own cadence besides logging and checkpoints: sample videos, inject faults.

A disabled feature is a no-op object with the same methods, so the training loop has no `if`s for them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any

from reelforge.platform import storage
from reelforge.platform.tracking import Tracker
from reelforge.train.config import TrainJobConfig
from reelforge.train.ema import WeightAverage
from reelforge.train.engine import DistInfo
from reelforge.train.loader import parse_bucket

log = logging.getLogger("reelforge.train")


class NoSampler:
    def maybe(self, step: int, ema: WeightAverage, last: bool) -> None:
        pass


class PeriodicSampler:
    """Every `sample_every_steps` steps (and at the end): EMA weights -> one mp4 per fixed prompt on rank 0.

    Videos go to <run>/samples/step_NNNNNNN/ with JSON sidecars and to the tracker. Every rank calls
    `maybe` (gathering weights under ZeRO-3 is collective); only rank 0 renders.
    """

    def __init__(self, cfg: TrainJobConfig, info: DistInfo, tracker: Tracker) -> None:
        self.cfg, self.info, self.tracker = cfg, info, tracker
        self.every_steps = cfg.trainer.sample_every_steps
        frames, height, width = parse_bucket(cfg.loader.buckets[0])
        from reelforge.train.render import RenderSettings

        self.settings = RenderSettings(frames=frames, height=height, width=width, steps=cfg.trainer.sample_steps,
                                       guidance_scale=cfg.trainer.sample_guidance, sampler=cfg.diffusion.sampler,
                                       seed=cfg.trainer.seed)
        self.renderer: Any = None

    def maybe(self, step: int, ema: WeightAverage, last: bool) -> None:
        if step % self.every_steps and not last:
            return
        weights = ema.state_dict()
        if not self.info.is_main:
            return
        from reelforge.data.video import EncodeSettings, encode_mp4
        from reelforge.train.render import Renderer

        if self.renderer is None:
            meta = {k: dataclasses.asdict(getattr(self.cfg, k)) for k in ("model", "vae", "text_encoder", "diffusion")}
            self.renderer = Renderer(meta, weights)
        self.renderer.load_weights(weights)
        folder = storage.join(self.cfg.output or "", "samples", f"step_{step:07d}")
        local = os.path.join(self.cfg.output or "", "samples", f"step_{step:07d}") if storage.is_local(folder) else None
        for i, prompt in enumerate(self.cfg.trainer.sample_prompts):
            frames = self.renderer.render(prompt, self.settings, i)
            uri = storage.join(folder, f"{i:03d}.mp4")
            storage.write_bytes(uri, encode_mp4(frames, EncodeSettings(fps=8.0)))
            side = {"prompt": prompt, **dataclasses.asdict(self.settings), "seed": self.settings.seed + i, "step": step}
            storage.write_text(storage.join(folder, f"{i:03d}.json"), json.dumps(side, indent=1))
            if local is not None:
                self.tracker.log_video(f"samples/{i:03d}", os.path.join(local, f"{i:03d}.mp4"), prompt, step=step)
        log.info("step %d: %d sample videos in %s", step, len(self.cfg.trainer.sample_prompts), folder)


def make_sampler(cfg: TrainJobConfig, info: DistInfo, tracker: Tracker) -> NoSampler | PeriodicSampler:
    if cfg.trainer.sample_every_steps == 0 or not cfg.trainer.sample_prompts:
        return NoSampler()
    return PeriodicSampler(cfg, info, tracker)


class FaultInjector:
    """Kills rank 0's process the first time it reaches `fail_at_step` (tests of restart and resume).

    A marker file in the run folder records that the fault happened, so the restarted run goes on.
    """

    def __init__(self, run: str, fail_at_step: int, is_main: bool) -> None:
        self.marker = storage.join(run, "faults", f"killed_at_step_{fail_at_step}")
        self.fail_at_step, self.is_main = fail_at_step, is_main

    def maybe_fail(self, step: int) -> None:
        if not self.fail_at_step or step != self.fail_at_step or not self.is_main or storage.exists(self.marker):
            return
        storage.write_text(self.marker, "killed by trainer.fail_at_step\n")
        log.warning("trainer.fail_at_step=%d: killing this process", step)
        logging.shutdown()
        os._exit(17)
