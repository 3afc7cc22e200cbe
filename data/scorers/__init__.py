"""Scorers: each a step that reads a clip's sampled frame pairs and writes score columns (null when unknown).

`SCORERS` maps a name (as listed in `scorers.enabled`) to "module:Class"; modules load only when used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from reelforge.data.step import Step
from reelforge.platform.config import ConfigError

SCORERS: dict[str, str] = {
    "motion": "reelforge.data.scorers.motion:Motion",
    "sharpness": "reelforge.data.scorers.sharpness:Sharpness",
    "quality": "reelforge.data.scorers.quality:Quality",
    "nsfw": "reelforge.data.scorers.nsfw:Nsfw",
    "dedup": "reelforge.data.scorers.dedup:DedupHash",
}


def _all_scorers() -> list[str]:
    return list(SCORERS)


@dataclass
class ScorersConfig:
    # Scorers to run, in order (motion, sharpness, quality, nsfw, dedup).
    enabled: list[str] = field(default_factory=_all_scorers)
    # Sampled frames BRISQUE scores per clip (its cost grows with this).
    quality_frames: int = 1
    # Sampled frames NudeNet checks per clip.
    nsfw_frames: int = 1


def check_scorers(cfg: ScorersConfig) -> None:
    unknown = [n for n in cfg.enabled if n not in SCORERS]
    if unknown:
        raise ConfigError(f"scorers.enabled has unknown scorer(s) {unknown}; known: {', '.join(SCORERS)}")
    if len(set(cfg.enabled)) != len(cfg.enabled):
        raise ConfigError(f"scorers.enabled lists a scorer twice: {cfg.enabled}")
    if cfg.quality_frames < 1 or cfg.nsfw_frames < 1:
        raise ConfigError("scorers.quality_frames and scorers.nsfw_frames must be at least 1")


def build_scorer(name: str, cfg: ScorersConfig) -> Step:
    module, cls = SCORERS[name].split(":")
    return getattr(importlib.import_module(module), cls)(cfg)
