"""Comparing result sets: regressions follow each metric's direction and the tolerance."""

from __future__ import annotations

from reelforge.eval.compare import compare


def summary(label: str, **means: float | None) -> dict:
    better = {"sharpness": "higher", "flicker": "lower", "dynamic_degree": "none"}
    return {"label": label, "metrics": {k: {"mean": v, "better": better[k]} for k, v in means.items()}}


def test_regressions_and_improvements() -> None:
    c = compare([summary("ckpt-1000", sharpness=100.0, flicker=1.0, dynamic_degree=0.2),
                 summary("ckpt-2000", sharpness=90.0, flicker=0.5, dynamic_degree=0.4),
                 summary("ckpt-3000", sharpness=101.0, flicker=1.5, dynamic_degree=None)], tolerance=0.02)
    assert c.labels == ["ckpt-1000", "ckpt-2000", "ckpt-3000"]
    status = {row.metric: [cell.status for cell in row.cells] for row in c.rows}
    assert status == {"sharpness": ["reference", "regression", "same"],
                      "flicker": ["reference", "improvement", "regression"],
                      "dynamic_degree": ["reference", "same", "missing"]}
    assert c.regressions == [("ckpt-2000", "sharpness", -0.1), ("ckpt-3000", "flicker", 0.5)]


def test_metric_only_in_later_sets() -> None:
    c = compare([summary("a", sharpness=1.0), summary("b", sharpness=1.0, flicker=2.0)], tolerance=0.0)
    flicker = next(r for r in c.rows if r.metric == "flicker")
    assert [cell.status for cell in flicker.cells] == ["missing", "same"]
