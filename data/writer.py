"""The shard writer: webdataset tars of bounded size with deterministic names, committed by the ledger.

Rows stream in, in source order. Clips that pass go into the open shard (`shards/shard-NNNNNN.tar`,
numbered on from the ledger's last shard), written under a temporary name and renamed when full;
then one ledger transaction records the shard, its clips and every source now complete. A clip
already in the ledger (written before a run was killed) is not written again, so a resumed run
leaves neither duplicates nor gaps. Tars are written with fixed metadata (mtime 0, root owner),
so the same rows give the same bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from dataclasses import dataclass
from typing import IO, Any

from reelforge.data import schema
from reelforge.data.ledger import Ledger, SourceRecord
from reelforge.data.neardup import NearDuplicates
from reelforge.data.step import Row, is_source
from reelforge.platform import storage
from reelforge.platform.config import ConfigError

MANIFEST_COLUMNS = ("clip_id", "source_uri", "source_hash", "clip_index", "start_s", "end_s", "fps", "frames",
                    "width", "height", "bucket", "mp4_bytes", "caption", "source_caption", "source_title",
                    "captioner", *schema.SCORE_COLUMNS, "source_duration_s", "src_fps", "src_width", "src_height",
                    "codec", "text_tokens")
REJECTED_COLUMNS = ("kind", "id", "source_uri", "source_hash", "stage", "reason", "detail", "duplicate_of",
                    "start_s", "end_s", *schema.SCORE_COLUMNS)


@dataclass
class WriterConfig:
    # A shard is closed before it would pass this many bytes (one clip larger than this gets its own shard).
    shard_max_bytes: int = 256 * 1024 * 1024
    # ...or once it holds this many clips.
    shard_max_clips: int = 2000


def check_writer(cfg: WriterConfig) -> None:
    if cfg.shard_max_bytes < 1024 or cfg.shard_max_clips < 1:
        raise ConfigError(f"writer: shard_max_bytes={cfg.shard_max_bytes} must be at least 1024 and "
                          f"shard_max_clips={cfg.shard_max_clips} at least 1")


def shard_name(seq: int) -> str:
    return f"shard-{seq:06d}.tar"


def manifest_row(row: Row) -> dict[str, Any]:
    out = {k: row.get(k) for k in MANIFEST_COLUMNS if k not in ("source_duration_s", "text_tokens")}
    out["source_duration_s"] = row.get("duration_s")
    tokens = row.get("text_tokens")
    out["text_tokens"] = None if tokens is None else int(schema.npy_load(tokens).shape[0])
    return out


def rejected_row(row: Row) -> dict[str, Any]:
    clip = not is_source(row)
    out = {k: row.get(k) for k in REJECTED_COLUMNS if k not in ("kind", "id")}
    out.update(kind="clip" if clip else "source", id=row["clip_id"] if clip else row["source_uri"])
    return out


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uname, info.gname = len(data), 0, 0o644, "root", "root"
    tar.addfile(info, io.BytesIO(data))


class ShardWriter:
    def __init__(self, dataset: str, ledger: Ledger, run_id: int, version: str, cfg: WriterConfig,
                 neardup: NearDuplicates) -> None:
        self.dataset, self.ledger, self.run_id, self.version, self.cfg = dataset, ledger, run_id, version, cfg
        self.neardup = neardup
        self.committed = set(ledger.clip_hashes())
        self.seq = ledger.next_shard_seq()
        self._stack: contextlib.ExitStack | None = None
        self._tar: tarfile.TarFile | None = None
        self._file: IO[bytes] | None = None
        self._clips: list[dict[str, Any]] = []
        self._bytes = 0
        self._open_sources: dict[str, dict[str, Any]] = {}  # source hash -> counts so far
        self._complete: list[SourceRecord] = []  # complete sources waiting for the next commit
        self.shards_written: list[str] = []
        self.clips_written = 0
        self.clips_already = 0

    def add(self, rows: list[Row]) -> list[Row]:
        """Write the rows that pass; returns them with near-duplicate decisions applied."""
        for row in rows:
            if is_source(row):
                self._complete.append(SourceRecord(row["source_hash"], row["source_uri"], row["status"],
                                                   row.get("reason"), 0, 0, [rejected_row(row)]))
                continue
            self.neardup.judge(row)
            state = self._open_sources.setdefault(row["source_hash"], {"written": 0, "dropped": 0, "rejected": [],
                                                                       "seen": 0})
            state["seen"] += 1
            if row["status"] != schema.OK:
                state["dropped"] += 1
                state["rejected"].append(rejected_row(row))
            else:
                state["written"] += 1
                self._write(row)
            if state["seen"] == row["clips_in_source"]:
                del self._open_sources[row["source_hash"]]
                self._complete.append(SourceRecord(row["source_hash"], row["source_uri"], "accepted", None,
                                                   state["written"], state["dropped"], state["rejected"]))
        return rows

    def _write(self, row: Row) -> None:
        if row["clip_id"] in self.committed:  # committed by an earlier run that was cut short
            self.clips_already += 1
            return
        size = len(row["mp4"]) + len(row.get("text_tokens") or b"") + 4096
        if self._tar is not None and (self._bytes + size > self.cfg.shard_max_bytes
                                      or len(self._clips) >= self.cfg.shard_max_clips):
            self._close_shard()
        if self._tar is None:
            self._open_shard()
        assert self._tar is not None
        meta = manifest_row(row)
        key = row["clip_id"]
        _add(self._tar, f"{key}.{schema.SAMPLE_VIDEO}", row["mp4"])
        _add(self._tar, f"{key}.{schema.SAMPLE_CAPTION}", row["caption"].encode("utf-8"))
        _add(self._tar, f"{key}.{schema.SAMPLE_META}", json.dumps(meta, sort_keys=True, default=str).encode())
        if row.get("text_tokens") is not None:
            _add(self._tar, f"{key}.{schema.SAMPLE_TEXT_TOKENS}", row["text_tokens"])
        meta["shard"] = shard_name(self.seq)
        self._clips.append({"clip_id": key, "source_hash": row["source_hash"], "shard": meta["shard"],
                            "position": len(self._clips), "phash": row.get("phash"),
                            "row": json.dumps(meta, default=str)})
        self._bytes += size
        self.clips_written += 1

    def _open_shard(self) -> None:
        self._stack = contextlib.ExitStack()
        uri = storage.join(self.dataset, "shards", shard_name(self.seq))
        self._file = self._stack.enter_context(storage.open_atomic(uri, "wb"))
        self._tar = self._stack.enter_context(tarfile.TarFile(fileobj=self._file, mode="w", format=tarfile.USTAR_FORMAT))
        self._clips, self._bytes = [], 0

    def _close_shard(self) -> None:
        assert self._tar is not None and self._stack is not None
        self._tar.close()
        size = self._file.tell() if self._file is not None else 0
        self._stack.close()  # the rename: the shard is on disk under its name, not yet committed
        name = shard_name(self.seq)
        done, self._complete = self._complete, []
        self.ledger.commit(self.run_id, self.version, {"name": name, "seq": self.seq, "clips": len(self._clips),
                                                       "bytes": size}, self._clips, done)
        self.committed.update(c["clip_id"] for c in self._clips)
        self.shards_written.append(name)
        self.seq += 1
        self._tar = self._stack = self._file = None
        self._clips = []

    def close(self) -> None:
        """Commit the open shard and every complete source; sources still open stay uncommitted."""
        if self._tar is not None:
            self._close_shard()
        if self._complete:
            done, self._complete = self._complete, []
            self.ledger.commit(self.run_id, self.version, None, [], done)

    def abort(self) -> None:
        """Drop the open shard's temporary file (a failed run leaves nothing half-written)."""
        if self._stack is not None:
            self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)
            self._stack = self._tar = self._file = None
