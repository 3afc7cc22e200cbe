"""Compare several result sets (eval output folders, later one per checkpoint) metric by metric.

The first result set is the reference; every other one's mean is compared to it, relative to the
reference's size, and called a regression when it moved the wrong way (per the metric's declared
direction) by more than `tolerance`, an improvement when the right way. Metrics without a
direction ("none", e.g. dynamic degree) are shown but never called either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cell:
    value: float | None  # the result set's mean, None when it has no value for this metric
    change: float | None  # relative change from the reference, None for the reference itself or no value
    status: str  # "reference" | "regression" | "improvement" | "same" | "missing"


@dataclass(frozen=True)
class MetricRow:
    metric: str
    better: str
    cells: list[Cell]


@dataclass(frozen=True)
class Comparison:
    labels: list[str]  # one per result set, the reference first
    rows: list[MetricRow]

    @property
    def regressions(self) -> list[tuple[str, str, float]]:
        """(label, metric, relative change) of every regression."""
        return [(self.labels[i], row.metric, cell.change) for row in self.rows
                for i, cell in enumerate(row.cells) if cell.status == "regression" and cell.change is not None]


def _status(ref: float | None, value: float | None, better: str, tolerance: float) -> tuple[float | None, str]:
    if value is None:
        return None, "missing"
    if ref is None:
        return None, "same"
    change = (value - ref) / max(abs(ref), 1e-12)
    if better == "none" or abs(change) <= tolerance:
        return change, "same"
    worse = change < 0 if better == "higher" else change > 0
    return change, "regression" if worse else "improvement"


def compare(summaries: list[dict[str, Any]], tolerance: float) -> Comparison:
    """Metric-by-metric comparison of summary.json dicts; the first is the reference."""
    if not summaries:
        raise ValueError("compare needs at least one summary")
    names: list[str] = []
    for s in summaries:
        names += [m for m in s["metrics"] if m not in names]
    rows = []
    for name in names:
        found = [s["metrics"].get(name) for s in summaries]
        better = next(f["better"] for f in found if f is not None)
        means = [f["mean"] if f is not None else None for f in found]
        cells = [Cell(means[0], None, "reference" if means[0] is not None else "missing")]
        for value in means[1:]:
            change, status = _status(means[0], value, better, tolerance)
            cells.append(Cell(value, change, status))
        rows.append(MetricRow(name, better, cells))
    return Comparison(labels=[str(s["label"]) for s in summaries], rows=rows)
