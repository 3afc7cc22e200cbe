"""Fingerprint each source: its content hash (the source's identity) and size.

The hash is BLAKE2b-128 over the file's bytes, read in chunks, so a renamed or copied file keeps
its identity and a changed file gets a new one. Missing, unreadable and zero-byte files fail
here with a reason; nothing later sees them.
"""

from __future__ import annotations

import hashlib

from reelforge.data import schema
from reelforge.data.step import Resources, Row, Step, reject
from reelforge.platform import storage

CHUNK_BYTES = 4 * 1024 * 1024


def content_hash(uri: str) -> tuple[str, int]:
    """(hex BLAKE2b-128 digest, size in bytes) of the file at `uri`."""
    fs, path = storage.filesystem(uri)
    digest = hashlib.blake2b(digest_size=16)
    size = 0
    with fs.open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def fingerprint_all(rows: list[Row], threads: int = 8) -> list[Row]:
    """Fingerprint every source in this process with a few threads (hashing waits on I/O, not the GIL).

    This runs before the pipeline because which sources go through it depends on the ledger.
    """
    import concurrent.futures

    step = Fingerprint()
    chunks = [rows[i:i + step.resources.batch_size] for i in range(0, len(rows), step.resources.batch_size)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        done = list(pool.map(step.run_rows, [[{**r, "status": r.get("status") or schema.OK} for r in c]
                                             for c in chunks]))
    return [r for chunk in done for r in chunk]


class Fingerprint(Step):
    name = "fingerprint"
    level = "source"

    def __init__(self, resources: Resources | None = None) -> None:
        super().__init__(resources or Resources(num_cpus=0.5, batch_size=16))

    def process(self, rows: list[Row]) -> list[Row]:
        for row in rows:
            uri = row["source_uri"]
            try:
                row["source_hash"], row["source_bytes"] = content_hash(uri)
            except FileNotFoundError:
                reject(row, schema.FAILED, "missing", f"{uri} does not exist (listed, but not found when read)")
                continue
            except (OSError, PermissionError) as err:
                reject(row, schema.FAILED, "unreadable", f"cannot read {uri}: {err}")
                continue
            if row["source_bytes"] == 0:
                reject(row, schema.FAILED, "empty_file", f"{uri} is a zero-byte file")
        return rows
