"""Prompt suites: named lists of prompts (conf/suite/*.yaml) and the metrics that judge them.

A suite's prompts are its own list plus, for the shapes suite, the held-out prompts that
`reelforge synth` wrote to `heldout.json` (attribute combinations never rendered, so a model's
compositional generalisation is measured on them). Scoring a folder of videos matches each
video's prompt to the suite, so the report says which suite prompts have no video.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from reelforge.eval.metrics import check_metrics
from reelforge.platform import storage
from reelforge.platform.config import ConfigError


def _general_metrics() -> list[str]:
    return ["temporal_consistency", "motion_smoothness", "dynamic_degree", "flicker", "sharpness", "brisque",
            "niqe"]


@dataclass
class SuitePromptConfig:
    # The prompt text, as it appears in a video's sidecar.
    prompt: str = ""
    # What the prompt tests (subject, action, camera, style, count, heldout, red-team area...).
    category: str = "general"


@dataclass
class SuiteConfig:
    # Suite name: names its wandb table and its section of the report.
    name: str = "general"
    # The suite's own prompts, each with a category ("subject", "camera", ...) for grouping.
    prompts: list[SuitePromptConfig] = field(default_factory=list)
    # A synth folder or its heldout.json: its held-out prompts join the suite (category "heldout").
    heldout: str | None = None
    # Metrics computed for every video (names in reelforge.eval.metrics.METRICS).
    metrics: list[str] = field(default_factory=_general_metrics)


@dataclass(frozen=True)
class SuitePrompt:
    prompt: str
    category: str


def heldout_path(path: str) -> str:
    """heldout.json itself, or the one in a synth output folder."""
    return path if path.endswith(".json") else storage.join(path, "heldout.json")


def check_suite(cfg: SuiteConfig) -> None:
    check_metrics(cfg.metrics, "suite.metrics")
    if not cfg.name or "/" in cfg.name:
        raise ConfigError(f"suite.name={cfg.name!r} must be a non-empty name without '/'")
    blank = [i for i, p in enumerate(cfg.prompts) if not p.prompt.strip()]
    if blank:
        raise ConfigError(f"suite.prompts entries {blank} have an empty prompt")
    if cfg.heldout is not None and not storage.exists(heldout_path(cfg.heldout)):
        raise ConfigError(f"suite.heldout={cfg.heldout!r}: {heldout_path(cfg.heldout)} does not exist; point it at "
                          "a `reelforge synth` output folder (written with holdout=[...]) or its heldout.json")


def suite_prompts(cfg: SuiteConfig) -> list[SuitePrompt]:
    """The suite's prompts, its own first, then held-out ones; each prompt once.

    synth never rendered a held-out prompt, so one the suite also lists (say as "seen") counts as held out.
    """
    heldout: list[str] = []
    if cfg.heldout is not None:
        heldout = [str(entry["prompt"]).strip() for entry in json.loads(storage.read_text(heldout_path(cfg.heldout)))]
    found = [SuitePrompt(p.prompt.strip(), "heldout" if p.prompt.strip() in heldout else p.category)
             for p in cfg.prompts]
    found += [SuitePrompt(prompt, "heldout") for prompt in heldout]
    seen: set[str] = set()
    unique = []
    for p in found:
        if p.prompt not in seen:
            seen.add(p.prompt)
            unique.append(p)
    return unique
