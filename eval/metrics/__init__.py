"""Quality metrics, one per file, registered here by name ("module:Class", imported when used).

METRICS run anywhere without weights; MODEL_METRICS load local weights named in the eval settings'
`models:` block (eval/metrics/models.py), so they run only where those paths are given, and
`check_models` says which key is missing before anything is written.
"""

from __future__ import annotations

import importlib

from reelforge.eval.clip import ClipConfig
from reelforge.eval.metrics.base import Column, Metric
from reelforge.eval.metrics.models import ModelContext, ModelsConfig, check_model_key
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
MODEL_METRICS: dict[str, str] = {
    "clip_score": "reelforge.eval.metrics.clip_score:ClipScore",
    "aesthetics": "reelforge.eval.metrics.aesthetics:Aesthetics",
    "fvd": "reelforge.eval.metrics.fvd:Fvd",
}


def check_metrics(names: list[str], key: str = "suite.metrics") -> None:
    unknown = [n for n in names if n not in METRICS and n not in MODEL_METRICS]
    if unknown:
        raise ConfigError(f"{key} has unknown metric(s) {unknown}; known: {', '.join([*METRICS, *MODEL_METRICS])}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{key} lists a metric twice: {names}")


def metric_class(name: str) -> type[Metric]:
    module, cls = (METRICS.get(name) or MODEL_METRICS[name]).split(":")
    return getattr(importlib.import_module(module), cls)


def check_models(names: list[str], models: ModelsConfig, clip: ClipConfig) -> None:
    """Every `models.*` key the named metrics need is set and points at the right kind of file (ConfigError)."""
    for name in names:
        for key in metric_class(name).needs:
            check_model_key(name, key, models, clip)


def build_metrics(names: list[str], context: ModelContext | None = None) -> list[Metric]:
    """Instantiate and set up the named metrics, in order; those that load weights get `context`."""
    check_metrics(names, "metrics")
    classes = [metric_class(n) for n in names]
    needy = [c.name for c in classes if c.needs]
    if needy and context is None:
        raise ValueError(f"metrics {needy} load weights: build them with a ModelContext (the models: block)")
    metrics = [c(context) if c.needs else c() for c in classes]  # type: ignore[call-arg]
    for m in metrics:
        m.setup()
    return metrics


__all__ = ["METRICS", "MODEL_METRICS", "Column", "Metric", "ModelContext", "ModelsConfig", "build_metrics",
           "check_metrics", "check_models", "metric_class"]
