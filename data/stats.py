"""Accounting of an ingestion run, from the rows themselves, and the summary table.

Every source ends accepted (gave clips), filtered or failed (by reason); every clip written or
dropped (by reason). Per stage: rows in, out, dropped by reason, errors and seconds (the sum of
the `sec_<stage>` shares the steps stamped on their rows, i.e. worker seconds).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from reelforge.data import schema
from reelforge.data.step import Row, is_source


class RunStats:
    def __init__(self, stages: list[tuple[str, str]]) -> None:
        self.stages = stages  # (name, level) in pipeline order
        self.seconds: Counter[str] = Counter()
        self.rejected: dict[str, Counter[str]] = defaultdict(Counter)  # stage -> reason -> rows
        self.errors: Counter[str] = Counter()
        self.sources: dict[str, Counter[str]] = {"filtered": Counter(), "failed": Counter()}
        self.accepted: set[str] = set()
        self.sources_through: set[str] = set()  # sources whose rows have come out of the pipeline
        self.clips_made = self.clips_written = 0
        self.clip_drops: Counter[str] = Counter()
        self.skipped_known = self.skipped_stale = 0
        self.source_seconds = 0.0
        self.encode_seconds = 0.0  # part of the decode stage's seconds spent in the H.264 encoder

    def add_source_outcome(self, status: str, reason: str, stage: str) -> None:
        """A source settled before the pipeline (at fingerprinting or as a byte-identical copy)."""
        self.sources[status][reason] += 1
        self.rejected[stage][reason] += 1

    def add(self, rows: list[Row]) -> None:
        for row in rows:
            self.sources_through.add(row["source_hash"])
            for key, value in row.items():
                if key.startswith(schema.STAGE_SECONDS_PREFIX) and value:
                    self.seconds[key[len(schema.STAGE_SECONDS_PREFIX):]] += value
            self.encode_seconds += row.get("encode_s") or 0.0
            status, stage, reason = row.get("status"), row.get("stage"), row.get("reason")
            if status != schema.OK:
                self.rejected[stage][reason] += 1
                if status == schema.FAILED:
                    self.errors[stage] += 1
            if is_source(row):
                self.sources["failed" if status == schema.FAILED else "filtered"][reason] += 1
                continue
            if row["source_hash"] not in self.accepted:
                self.accepted.add(row["source_hash"])
                self.source_seconds += row.get("duration_s") or 0.0
            self.clips_made += 1
            if status == schema.OK:
                self.clips_written += 1
            else:
                self.clip_drops[reason] += 1

    def stage_table(self, sources_in: int) -> list[dict[str, Any]]:
        out, alive = [], sources_in
        for name, level in self.stages:
            dropped = dict(self.rejected.get(name, {}))
            n_out = self.clips_made if name == "decode" else alive - sum(dropped.values())
            out.append({"stage": name, "level": level, "in": alive, "out": n_out, "dropped": dropped,
                        "errors": self.errors.get(name, 0), "seconds": round(self.seconds.get(name, 0.0), 3)})
            alive = n_out
        return out

    def to_dict(self, seen: int, wall_s: float) -> dict[str, Any]:
        filtered, failed = sum(self.sources["filtered"].values()), sum(self.sources["failed"].values())
        dropped = sum(self.clip_drops.values())
        pipeline_in = seen - sum(self.rejected.get("fingerprint", {}).values()) - \
            sum(self.rejected.get("ledger", {}).values())
        return {
            "sources": {"seen": seen, "accepted": len(self.accepted), "filtered": filtered, "failed": failed,
                        "filtered_by_reason": dict(self.sources["filtered"]),
                        "failed_by_reason": dict(self.sources["failed"]),
                        "adds_up": len(self.accepted) + filtered + failed == seen,
                        "skipped_already_ingested": self.skipped_known, "skipped_other_config": self.skipped_stale},
            "clips": {"made": self.clips_made, "written": self.clips_written, "dropped": dropped,
                      "dropped_by_reason": dict(self.clip_drops), "adds_up": self.clips_written + dropped ==
                      self.clips_made},
            "stages": [{"stage": "fingerprint", "level": "source", "in": seen,
                        "out": seen - sum(self.rejected.get("fingerprint", {}).values()),
                        "dropped": dict(self.rejected.get("fingerprint", {})), "errors": 0,
                        "seconds": round(self.seconds.get("fingerprint", 0.0), 3)},
                       {"stage": "ledger", "level": "source", "in": seen - sum(self.rejected.get("fingerprint", {})
                                                                               .values()),
                        "out": pipeline_in, "dropped": dict(self.rejected.get("ledger", {})), "errors": 0,
                        "seconds": 0.0}]
            + self.stage_table(pipeline_in),
            "decode_encode_seconds": round(self.encode_seconds, 3),
            "source_seconds": round(self.source_seconds, 3),
            "wall_s": round(wall_s, 3),
            "throughput/clips_per_s": round(self.clips_made / wall_s, 3) if wall_s > 0 else None,
            "throughput/source_seconds_per_s": round(self.source_seconds / wall_s, 3) if wall_s > 0 else None,
        }


def print_summary(stats: dict[str, Any], dataset: str) -> None:
    """The table shown at the end of `reelforge ingest` (and by the demo)."""
    from rich.console import Console
    from rich.table import Table

    run = stats["last_run"]
    table = Table(title=f"ingest: {dataset}")
    for col in ("stage", "in", "out", "dropped (by reason)", "errors", "seconds"):
        table.add_column(col, justify="left" if col in ("stage", "dropped (by reason)") else "right")
    for s in run["stages"]:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(s["dropped"].items())) or "-"
        table.add_row(s["stage"], str(s["in"]), str(s["out"]), reasons, str(s["errors"]), f"{s['seconds']:.2f}")
    src, clips, ds = run["sources"], run["clips"], stats["dataset"]
    console = Console()
    console.print(table)
    console.print(
        f"sources: {src['seen']} seen = {src['accepted']} accepted + {src['filtered']} filtered + {src['failed']} "
        f"failed ({src['skipped_already_ingested']} already ingested, skipped) | clips: {clips['made']} made = "
        f"{clips['written']} written + {clips['dropped']} dropped | dataset: {ds['clips']} clips in "
        f"{ds['shards']} shards | {run['throughput/clips_per_s']} clips/s, "
        f"{run['throughput/source_seconds_per_s']} source s/s")
