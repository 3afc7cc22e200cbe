"""Captioners: pluggable steps that write a new `caption` (the source's own stays in `source_caption`).

`attributes` (default, no weights) describes what can be measured; `source` keeps the given
caption; `vlm` runs a Hugging Face image-text-to-text model from a local folder.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from reelforge.data.captioners.attributes import AttributesConfig
from reelforge.data.captioners.vlm import VlmConfig, check_vlm
from reelforge.data.step import Step
from reelforge.platform.config import check_choice

CAPTIONERS: dict[str, str] = {
    "attributes": "reelforge.data.captioners.attributes:AttributeCaptioner",
    "source": "reelforge.data.captioners.source:SourceCaptioner",
    "vlm": "reelforge.data.captioners.vlm:VlmCaptioner",
}


@dataclass
class CaptionConfig:
    # Which captioner writes `caption`: attributes | source | vlm.
    captioner: str = "attributes"
    # Settings of the attributes captioner.
    attributes: AttributesConfig = field(default_factory=AttributesConfig)
    # Settings of the vlm captioner (a local Hugging Face model folder).
    vlm: VlmConfig = field(default_factory=VlmConfig)


def check_caption(cfg: CaptionConfig) -> None:
    check_choice(cfg.captioner, tuple(CAPTIONERS), "caption.captioner")
    if cfg.captioner == "vlm":
        check_vlm(cfg.vlm)


def build_captioner(cfg: CaptionConfig) -> Step:
    module, cls = CAPTIONERS[cfg.captioner].split(":")
    return getattr(importlib.import_module(module), cls)(cfg)
