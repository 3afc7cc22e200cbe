"""report.html: one self-contained page (styles, previews and all) a person opens in a browser.

Headline metrics, the comparison with earlier result sets (regressions in red), every flagged
video and prompt with its reason and score, suite coverage, and per-prompt cards with each video's
preview playing (small H.264 mp4s embedded as data URIs) next to its scores. A checkpoint eval's
top page (checkpoints.html.j2) has the checkpoints, their comparison (the first is the reference),
every blocked or flagged prompt, and one row per suite prompt with each checkpoint's videos side by side.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any

from reelforge.eval.compare import Comparison
from reelforge.eval.metrics import Column
from reelforge.eval.prompt_filter import PromptVerdict
from reelforge.eval.results import ScoredSet
from reelforge.eval.suites import SuitePrompt
from reelforge.platform import storage

TEMPLATE = "report.html.j2"
CHECKPOINTS_TEMPLATE = "checkpoints.html.j2"


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


def video_card(r: dict[str, Any], data: bytes | None, embed: bool, metric_columns: list[Column]) -> dict[str, Any]:
    """What a report shows of one results row: its preview (when embedded), state and scores."""
    note = "no preview: the video could not be decoded" if data is None else "preview left out (report.max_previews)"
    return {"name": r["video"], "preview": base64.b64encode(data).decode() if data is not None and embed else None,
            "note": note, "error": r["error"], "nsfw_reason": r["nsfw_reason"],
            "scores": [(c.name, r[c.name]) for c in metric_columns]}


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
        g.videos.append(video_card(r, data, embed, metric_columns))
    return sorted(groups.values(), key=lambda g: not g.flagged)


@dataclass
class GridRow:
    prompt: str
    category: str
    verdict: PromptVerdict | None  # None when the prompt filter is off
    cells: list[list[dict[str, Any]]]  # per checkpoint, this prompt's video cards (none when blocked)


def checkpoint_grid(prompts: list[SuitePrompt], verdicts: list[PromptVerdict], sets: list[ScoredSet],
                    max_previews: int) -> list[GridRow]:
    """One row per suite prompt, one cell per checkpoint; previews embedded up to the cap, prompt by prompt."""
    by_prompt = {v.prompt: v for v in verdicts}
    rows_by = [{} for _ in sets]  # per set: prompt -> its rows
    for found, s in zip(rows_by, sets, strict=True):
        for r in s.rows:
            found.setdefault(r["prompt"], []).append(r)
    grid, shown = [], 0
    for p in prompts:
        cells = []
        for found, s in zip(rows_by, sets, strict=True):
            cell = []
            for r in found.get(p.prompt, []):
                data = s.previews.get(r["video"])
                embed = data is not None and shown < max_previews
                shown += embed
                cell.append(video_card(r, data, embed, s.columns))
            cells.append(cell)
        grid.append(GridRow(p.prompt, p.category, by_prompt.get(p.prompt), cells))
    return grid


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("reelforge.eval", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    env.filters["fmt"] = _fmt
    return env


def render_report(summary: dict[str, Any], rows: list[dict[str, Any]], previews: dict[str, bytes],
                  metric_columns: list[Column], comparison: Comparison, cfg: ReportConfig) -> str:
    groups = prompt_groups(rows, previews, metric_columns, cfg.max_previews)
    return _environment().get_template(TEMPLATE).render(s=summary, comparison=comparison, groups=groups,
                                                        tolerance=cfg.regression_tolerance)


def render_checkpoints_report(summary: dict[str, Any], sets: list[ScoredSet], prompts: list[SuitePrompt],
                              verdicts: list[PromptVerdict], comparison: Comparison, cfg: ReportConfig) -> str:
    """The top report.html of a checkpoint eval (`summary`: results.checkpoints_summary)."""
    grid = checkpoint_grid(prompts, verdicts, sets, cfg.max_previews)
    return _environment().get_template(CHECKPOINTS_TEMPLATE).render(
        s=summary, comparison=comparison, grid=grid, labels=[c["label"] for c in summary["checkpoints"]],
        tolerance=cfg.regression_tolerance)


def write_report(html: str, output: str) -> str:
    path = storage.join(output, "report.html")
    storage.write_text(path, html)
    return path
