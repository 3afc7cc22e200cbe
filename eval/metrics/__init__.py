"""Quality metrics, one per file, registered here by name ("module:Class", imported when used)."""

from __future__ import annotations

import importlib

from reelforge.eval.metrics.base import Column, Metric
from reelforge.platform.config import ConfigError

METRICS: dict[str, str] = {
    "temporal_consistency": "reelforge.eval.metrics.temporal_consistency:TemporalConsistency",
    "motion_smoothness": "reelforge.eval.metrics.motion_smoothness:MotionSmoothness",
    "dynamic_degree": "reelforge.eval.metrics.dynamic_degree:DynamicDegree",
    "flicker": "reelforge.eval.metrics.flicker:Flicker",
    "sharpness": "reelforge.eval.metrics.sharpness:Sharpness",
    "brisque": "reelforge.eval.metrics.brisque:Brisque",
    "niqe": "reelforge.eval.metrics.niqe:Niqe",
    "shapes_attributes": "reelforge.eval.metrics.shapes_attributes:ShapesAttributes",
}


def check_metrics(names: list[str], key: str = "suite.metrics") -> None:
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ConfigError(f"{key} has unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{key} lists a metric twice: {names}")


def metric_class(name: str) -> type[Metric]:
    module, cls = METRICS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_metrics(names: list[str]) -> list[Metric]:
    """Instantiate and set up the named metrics, in order."""
    check_metrics(names, "metrics")
    metrics = [metric_class(n)() for n in names]
    for m in metrics:
        m.setup()
    return metrics


__all__ = ["METRICS", "Column", "Metric", "build_metrics", "check_metrics", "metric_class"]
