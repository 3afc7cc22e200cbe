"""The dataset folder's files besides the shards: recovery after a killed run, the parquet views
and stats.json (all rewritten atomically from the ledger), and replacing re-processed sources.

Layout: shards/shard-NNNNNN.tar, manifest.parquet, rejected.parquet, stats.json, ledger.sqlite.
"""

from __future__ import annotations

import json
import logging
import posixpath
import tarfile
from typing import Any

from reelforge.data.ledger import Ledger
from reelforge.data.writer import MANIFEST_COLUMNS, REJECTED_COLUMNS, shard_name
from reelforge.platform import storage
from reelforge.platform.config import ConfigError

log = logging.getLogger(__name__)


def default_ledger_url(dataset: str) -> str:
    if not storage.is_local(dataset):
        raise ConfigError(f"output={dataset!r} is on an object store, where SQLite cannot live: set ledger_url= "
                          "to a SQLAlchemy URL of a shared database (e.g. postgresql://host/db)")
    storage.makedirs(dataset)
    return f"sqlite:///{storage.local_path(storage.join(dataset, 'ledger.sqlite'))}"


def _raw_files(folder: str) -> list[str]:
    """Every file in `folder`, temporary ones included (storage.listdir hides those)."""
    fs, path = storage.filesystem(folder)
    if not fs.exists(path):
        return []
    return [storage.join(folder, posixpath.basename(p.rstrip("/"))) for p in fs.ls(path, detail=False)
            if fs.isfile(p)]


def recover(dataset: str, ledger: Ledger) -> None:
    """Delete what a killed run left: temporary files, and shards whose commit never reached the ledger."""
    committed = ledger.shard_names()
    for folder, shards in ((dataset, False), (storage.join(dataset, "shards"), True)):
        for uri in _raw_files(folder):
            name = posixpath.basename(uri.replace("\\", "/"))
            if storage.TMP_MARKER in name:
                log.info("removing the unfinished file %s of an interrupted run", uri)
                storage.remove(uri)
            elif shards and name.endswith(".tar") and name not in committed:
                log.warning("removing shard %s: an interrupted run wrote it but never committed it", uri)
                storage.remove(uri)


def forget(dataset: str, ledger: Ledger, hashes: list[str], run_id: int) -> None:
    """Remove sources from the dataset (to re-process them): rewrite the shards holding their clips."""
    by_shard = ledger.clips_by_shard(hashes)
    seq = ledger.next_shard_seq()
    replaced: dict[str, dict[str, Any] | None] = {}
    for old, drop in sorted(by_shard.items()):
        keep = [c for c in ledger.shard_clips(old) if c not in drop]
        if not keep:
            replaced[old] = None
            continue
        new = shard_name(seq)
        src_fs, src_path = storage.filesystem(storage.join(dataset, "shards", old))
        with storage.open_atomic(storage.join(dataset, "shards", new), "wb") as f, src_fs.open(src_path, "rb") as raw:
            with tarfile.open(fileobj=raw, mode="r") as src, \
                    tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as dst:
                for member in src.getmembers():
                    if member.name.split(".", 1)[0] not in drop:
                        dst.addfile(member, src.extractfile(member))
            size = f.tell()
        replaced[old] = {"name": new, "seq": seq, "clips": len(keep), "bytes": size}
        seq += 1
    ledger.forget_sources(hashes, replaced, run_id)
    for old in replaced:
        storage.remove(storage.join(dataset, "shards", old))
    log.info("re-processing %d sources: removed their clips from %d shards", len(hashes), len(replaced))


def _frame(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=list(columns))


def rewrite(dataset: str, ledger: Ledger, last_run: dict[str, Any]) -> dict[str, Any]:
    """manifest.parquet, rejected.parquet and stats.json from the ledger; returns stats.json's content."""
    manifest = _frame(ledger.manifest_rows(), (*MANIFEST_COLUMNS, "shard"))
    rejected = _frame(ledger.rejected_rows(), REJECTED_COLUMNS)
    for name, frame in (("manifest.parquet", manifest), ("rejected.parquet", rejected)):
        with storage.open_atomic(storage.join(dataset, name), "wb") as f:
            frame.to_parquet(f, index=False)
    sources = ledger.sources()
    by_status: dict[str, int] = {}
    for s in sources.values():
        by_status[s["status"]] = by_status.get(s["status"], 0) + 1
    runs = [{"run_id": r["id"], "status": r["status"], "version": r["version"],
             "clips_written": (r["stats"] or {}).get("clips", {}).get("written")} for r in ledger.runs()]
    stats = {"dataset": {"clips": len(manifest), "shards": len(ledger.shard_names()),
                         "bytes": int(manifest["mp4_bytes"].sum()) if len(manifest) else 0,
                         "sources_by_status": by_status, "rejected_rows": len(rejected)},
             "last_run": last_run, "runs": runs}
    storage.write_text(storage.join(dataset, "stats.json"), json.dumps(stats, indent=1, default=str))
    return stats
