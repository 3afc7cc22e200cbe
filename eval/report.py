"""report.html: one self-contained page (styles, previews and all) a person opens in a browser.

Headline metrics, the comparison with earlier result sets (regressions in red), every flagged
video and prompt with its reason and score, suite coverage, and per-prompt cards with each video's
preview playing (small H.264 mp4s embedded as data URIs) next to its scores.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any

from reelforge.eval.compare import Comparison
from reelforge.eval.metrics import Column
from reelforge.platform import storage

TEMPLATE = "report.html.j2"


@dataclass
class ReportConfig:
    # Earlier eval output folders to compare with, oldest (the reference) first; this run comes last.
    compare: list[str] = field(default_factory=list)
    # Relative change of a metric's mean beyond which a worse value is a regression (0.02: 2%).
    regression_tolerance: float = 0.02
    # Most videos whose previews are embedded (the page grows by ~20-100 KiB per preview).
    max_previews: int = 64


@dataclass
class PromptGroup:
    prompt: str | None
    category: str | None
    action: str | None
    flagged: bool
    videos: list[dict[str, Any]]


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def prompt_groups(rows: list[dict[str, Any]], previews: dict[str, bytes], metric_columns: list[Column],
                  max_previews: int) -> list[PromptGroup]:
    """Rows grouped by prompt (in first-seen order), flagged groups first, previews up to the cap."""
    groups: dict[str | None, PromptGroup] = {}
    shown = 0
    for r in rows:
        g = groups.setdefault(r["prompt"], PromptGroup(r["prompt"], r["suite_category"], r["prompt_action"], False, []))
        g.flagged = g.flagged or bool(r["nsfw_flagged"]) or r["prompt_action"] in ("flag", "block")
        data = previews.get(r["video"])
        embed = data is not None and shown < max_previews
        shown += embed
        note = "no preview: the video could not be decoded" if data is None else "preview left out (report.max_previews)"
        g.videos.append({"name": r["video"], "preview": base64.b64encode(data).decode() if embed else None,
                         "note": note, "error": r["error"], "nsfw_reason": r["nsfw_reason"],
                         "scores": [(c.name, r[c.name]) for c in metric_columns]})
    return sorted(groups.values(), key=lambda g: not g.flagged)


def render_report(summary: dict[str, Any], rows: list[dict[str, Any]], previews: dict[str, bytes],
                  metric_columns: list[Column], comparison: Comparison, cfg: ReportConfig) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("reelforge.eval", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    env.filters["fmt"] = _fmt
    groups = prompt_groups(rows, previews, metric_columns, cfg.max_previews)
    return env.get_template(TEMPLATE).render(s=summary, comparison=comparison, groups=groups,
                                             tolerance=cfg.regression_tolerance)


def write_report(html: str, output: str) -> str:
    path = storage.join(output, "report.html")
    storage.write_text(path, html)
    return path
