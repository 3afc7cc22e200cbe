"""The threshold step: drops clips whose scores fall outside configured limits, with a drop_reason.

Scoring is separate from deciding (datatrove's filters): scorers only write columns, this step
only reads them. A null score is unknown, and an unknown score never drops a clip. A dropped
clip keeps its scores, so new thresholds can be judged on `rejected.parquet` without decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

from reelforge.data import schema
from reelforge.data.step import Resources, Row, Step, reject
from reelforge.platform.config import ConfigError


@dataclass
class FilterConfig:
    # Drop clips slower than this mean flow speed, in frame widths per second (null: keep all).
    min_motion: float | None = 0.002
    # Drop clips faster than this, in frame widths per second (null: keep all).
    max_motion: float | None = None
    # Drop clips whose Laplacian variance is below this (blurry); null keeps all.
    min_sharpness: float | None = 2.0
    # Drop clips whose BRISQUE score is above this (lower is better); null keeps all.
    max_brisque: float | None = None
    # Drop clips whose highest NudeNet exposed-class score is above this; null keeps all.
    max_nsfw: float | None = 0.8
    # Near duplicates: clips whose dHashes differ in at most this many of 256 bits keep one copy; null: off.
    # 5 catches copies and rescales (0-4 bits); heavy re-encodes of flat content move 5-15 bits, as far
    # as two different shapes on plain backgrounds can be, so a higher limit merges distinct synth scenes.
    dedup_max_bits: int | None = 5


def check_filter(cfg: FilterConfig) -> None:
    if cfg.min_motion is not None and cfg.max_motion is not None and cfg.min_motion > cfg.max_motion:
        raise ConfigError(f"filter.min_motion={cfg.min_motion} is above filter.max_motion={cfg.max_motion}: "
                          "no clip could pass")
    if cfg.max_nsfw is not None and not 0 < cfg.max_nsfw <= 1:
        raise ConfigError(f"filter.max_nsfw={cfg.max_nsfw} must be in (0, 1] (a detector score), or null")
    if cfg.dedup_max_bits is not None and not 0 <= cfg.dedup_max_bits < 256:
        raise ConfigError(f"filter.dedup_max_bits={cfg.dedup_max_bits} must be in 0..255, or null to keep duplicates")


# (config field, score column, "min" or "max", reason)
RULES = (
    ("min_motion", "motion", "min", "motion_below_min"),
    ("max_motion", "motion", "max", "motion_above_max"),
    ("min_sharpness", "sharpness", "min", "sharpness_below_min"),
    ("max_brisque", "brisque", "max", "brisque_above_max"),
    ("max_nsfw", "nsfw", "max", "nsfw"),
)


class Threshold(Step):
    name = "threshold"

    def __init__(self, cfg: FilterConfig, resources: Resources | None = None) -> None:
        super().__init__(resources or Resources(num_cpus=1, batch_size=32))
        self.cfg = cfg

    def process(self, rows: list[Row]) -> list[Row]:
        for row in rows:
            for key, column, side, reason in RULES:
                limit, value = getattr(self.cfg, key), row.get(column)
                if limit is None or value is None:
                    continue
                if value < limit if side == "min" else value > limit:
                    reject(row, schema.DROPPED, reason, f"{column}={value:.4g} is outside filter.{key}={limit:g}")
                    break
        return rows
