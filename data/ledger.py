"""The ingestion ledger: what this dataset holds, and the commit marker of every shard and source.

SQLite in the dataset folder by default (`ledger.sqlite`), or any SQLAlchemy URL for a database
shared by many writers' hosts. A shard exists only once its row is here: the writer renames the
tar into place first and then, in one transaction, records the shard, its clips and the sources
it completed. A tar without a row is the leftover of a killed run and is deleted on the next
start (`orphan_shards`), and its sources, never recorded, are processed again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

META = sa.MetaData()
SOURCES = sa.Table(
    "sources", META,
    sa.Column("source_hash", sa.String(64), primary_key=True),
    sa.Column("source_uri", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # accepted | filtered | failed
    sa.Column("reason", sa.String(64)),
    sa.Column("version", sa.String(32), nullable=False),  # pipeline version that processed it
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("clips_written", sa.Integer, nullable=False),
    sa.Column("clips_dropped", sa.Integer, nullable=False),
)
CLIPS = sa.Table(
    "clips", META,
    sa.Column("clip_id", sa.String(64), primary_key=True),
    sa.Column("source_hash", sa.String(64), nullable=False, index=True),
    sa.Column("shard", sa.String(64), nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),  # order inside the shard
    sa.Column("phash", sa.String(64)),
    sa.Column("row", sa.Text, nullable=False),  # JSON manifest row
)
SHARDS = sa.Table(
    "shards", META,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False, unique=True),
    sa.Column("clips", sa.Integer, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("run_id", sa.Integer, nullable=False),
)
REJECTED = sa.Table(
    "rejected", META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source_hash", sa.String(64), index=True),
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("row", sa.Text, nullable=False),  # JSON rejected.parquet row
)
RUNS = sa.Table(
    "runs", META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("started", sa.Float, nullable=False),
    sa.Column("finished", sa.Float),
    sa.Column("status", sa.String(16), nullable=False),  # running | done
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("stats", sa.Text),  # JSON of the run's accounting
)


@dataclass
class SourceRecord:
    """A source's outcome, committed together with the shard that completes it."""

    source_hash: str
    source_uri: str
    status: str
    reason: str | None
    clips_written: int
    clips_dropped: int
    rejected: list[dict[str, Any]] = field(default_factory=list)


class Ledger:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = sa.create_engine(url)
        META.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- runs --------------------------------------------------------------------------------------

    def start_run(self, version: str) -> int:
        with self.engine.begin() as db:
            return int(db.execute(RUNS.insert().values(started=time.time(), status="running", version=version))
                       .inserted_primary_key[0])

    def finish_run(self, run_id: int, stats: dict[str, Any]) -> None:
        with self.engine.begin() as db:
            db.execute(RUNS.update().where(RUNS.c.id == run_id)
                       .values(finished=time.time(), status="done", stats=json.dumps(stats)))

    def runs(self) -> list[dict[str, Any]]:
        with self.engine.connect() as db:
            rows = db.execute(sa.select(RUNS).order_by(RUNS.c.id)).mappings().all()
        return [{**r, "stats": json.loads(r["stats"]) if r["stats"] else None} for r in rows]

    # -- what is known -----------------------------------------------------------------------------

    def sources(self) -> dict[str, dict[str, Any]]:
        """Committed sources by content hash."""
        with self.engine.connect() as db:
            return {r["source_hash"]: dict(r) for r in db.execute(sa.select(SOURCES)).mappings()}

    def clip_hashes(self) -> dict[str, str]:
        """clip id -> phash of every committed clip (for near-duplicate checks and resumes)."""
        with self.engine.connect() as db:
            return {r.clip_id: r.phash for r in db.execute(sa.select(CLIPS.c.clip_id, CLIPS.c.phash))}

    def shard_names(self) -> set[str]:
        with self.engine.connect() as db:
            return {r.name for r in db.execute(sa.select(SHARDS.c.name))}

    def next_shard_seq(self) -> int:
        with self.engine.connect() as db:
            top = db.execute(sa.select(sa.func.max(SHARDS.c.seq))).scalar()
        return 0 if top is None else int(top) + 1

    def manifest_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as db:
            q = sa.select(CLIPS.c.row).join(SHARDS, SHARDS.c.name == CLIPS.c.shard).order_by(SHARDS.c.seq,
                                                                                            CLIPS.c.position)
            return [json.loads(r.row) for r in db.execute(q)]

    def rejected_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as db:
            return [json.loads(r.row) for r in db.execute(sa.select(REJECTED.c.row).order_by(REJECTED.c.id))]

    def shard_clips(self, shard: str) -> list[str]:
        with self.engine.connect() as db:
            return [r.clip_id for r in db.execute(sa.select(CLIPS.c.clip_id).where(CLIPS.c.shard == shard))]

    def clips_by_shard(self, hashes: list[str]) -> dict[str, set[str]]:
        """shard -> clip ids in it that belong to the given sources."""
        out: dict[str, set[str]] = {}
        with self.engine.connect() as db:
            q = sa.select(CLIPS.c.shard, CLIPS.c.clip_id).where(CLIPS.c.source_hash.in_(hashes))
            for r in db.execute(q):
                out.setdefault(r.shard, set()).add(r.clip_id)
        return out

    # -- commits -----------------------------------------------------------------------------------

    def commit(self, run_id: int, version: str, shard: dict[str, Any] | None, clips: list[dict[str, Any]],
               sources: Iterable[SourceRecord]) -> None:
        """One transaction: a finished shard (already renamed into place), its clips, completed sources."""
        with self.engine.begin() as db:
            if shard is not None:
                db.execute(SHARDS.insert().values(run_id=run_id, **shard))
            if clips:
                db.execute(CLIPS.insert(), clips)
            for s in sources:
                db.execute(SOURCES.insert().values(
                    source_hash=s.source_hash, source_uri=s.source_uri, status=s.status, reason=s.reason,
                    version=version, run_id=run_id, clips_written=s.clips_written, clips_dropped=s.clips_dropped))
                if s.rejected:
                    db.execute(REJECTED.insert(), [{"source_hash": s.source_hash, "run_id": run_id,
                                                    "row": json.dumps(r, default=str)} for r in s.rejected])

    def record_rejected(self, run_id: int, rows: list[dict[str, Any]]) -> None:
        """Rejections that belong to no committed source (a byte-identical copy under another name)."""
        if rows:
            with self.engine.begin() as db:
                db.execute(REJECTED.insert(), [{"source_hash": None, "run_id": run_id,
                                                "row": json.dumps(r, default=str)} for r in rows])

    def forget_sources(self, hashes: list[str], replaced_shards: dict[str, dict[str, Any] | None],
                       run_id: int) -> None:
        """Drop sources (to re-process them) with their clips and rejections; swap rewritten shards."""
        with self.engine.begin() as db:
            for old, new in replaced_shards.items():
                if new is not None:
                    db.execute(SHARDS.insert().values(run_id=run_id, **new))
                    db.execute(CLIPS.update().where(CLIPS.c.shard == old).values(shard=new["name"]))
                db.execute(SHARDS.delete().where(SHARDS.c.name == old))
            for h in hashes:
                db.execute(CLIPS.delete().where(CLIPS.c.source_hash == h))
                db.execute(REJECTED.delete().where(REJECTED.c.source_hash == h))
                db.execute(SOURCES.delete().where(SOURCES.c.source_hash == h))
