"""Where videos come from: a folder (recursive), a glob, an object-store URI, or a manifest file.

A manifest (`.parquet`, `.csv`, `.jsonl`, `.txt`) lists video URIs, one per row, with optional
columns such as `caption` or `title`; relative paths are read against the manifest's folder.
Videos found in a folder pick up sidecars written next to them (`name.txt` caption, `name.json`
metadata with an optional `caption` or `title`), as `reelforge synth` writes.
"""

from __future__ import annotations

import io
import json
import posixpath
from typing import Any

from reelforge.data.step import Row
from reelforge.platform import storage
from reelforge.platform.config import ConfigError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp")
MANIFEST_SUFFIXES = (".parquet", ".csv", ".jsonl", ".txt")
URI_COLUMNS = ("uri", "url", "path", "video", "file", "filename")
CAPTION_COLUMNS = ("caption", "text", "description")
TITLE_COLUMNS = ("title", "name")


def discover(spec: str) -> list[Row]:
    """Source rows (uri, caption, title, meta, index) for `input=`, sorted by URI."""
    if not spec:
        raise ConfigError("input= is required: a folder, a glob, an object-store URI or a manifest file")
    lower = spec.lower()
    if lower.endswith(MANIFEST_SUFFIXES) and not lower.endswith(VIDEO_SUFFIXES):
        if not storage.exists(spec):
            raise ConfigError(f"input={spec!r}: manifest file not found")
        found = _from_manifest(spec)
    elif any(ch in spec for ch in "*?["):
        fs, _ = storage.filesystem(spec)
        found = [_with_sidecars(_uri(spec, p)) for p in fs.glob(storage.filesystem(spec)[1])
                 if p.lower().endswith(VIDEO_SUFFIXES)]
    elif lower.endswith(VIDEO_SUFFIXES) and storage.exists(spec) and not _isdir(spec):
        found = [_with_sidecars(spec)]
    else:
        if not storage.exists(spec):
            raise ConfigError(f"input={spec!r} does not exist (give a folder, a glob, a URI or a manifest file)")
        found = [_with_sidecars(p) for p in storage.listdir(spec, recursive=True)
                 if p.lower().endswith(VIDEO_SUFFIXES)]
    found.sort(key=lambda r: r["source_uri"])
    for i, row in enumerate(found):
        row["source_index"] = i
    return found


def _isdir(uri: str) -> bool:
    fs, path = storage.filesystem(uri)
    return fs.isdir(path)


def _uri(spec: str, path: str) -> str:
    return f"{spec.split('://', 1)[0]}://{path}" if "://" in spec else path


def _read_optional(uri: str) -> str | None:
    return storage.read_text(uri) if storage.exists(uri) else None


def _with_sidecars(uri: str) -> Row:
    stem = uri.rsplit(".", 1)[0]
    row: Row = {"source_uri": uri, "source_caption": None, "source_title": None, "source_meta": None}
    text = _read_optional(stem + ".txt")
    if text and text.strip():
        row["source_caption"] = text.strip()
    meta_text = _read_optional(stem + ".json")
    if meta_text:
        try:
            meta = json.loads(meta_text)
        except json.JSONDecodeError:
            meta = None  # a malformed sidecar is not metadata; the video itself is still a source
        if isinstance(meta, dict):
            row["source_caption"] = row["source_caption"] or _text(meta.get("caption"))
            row["source_title"] = _text(meta.get("title"))
            row["source_meta"] = json.dumps(meta, sort_keys=True, default=str)
    return row


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def _from_manifest(spec: str) -> list[Row]:
    import pandas as pd

    data = storage.read_bytes(spec)
    lower = spec.lower()
    if lower.endswith(".parquet"):
        frame = pd.read_parquet(io.BytesIO(data))
    elif lower.endswith(".csv"):
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    elif lower.endswith(".jsonl"):
        frame = pd.read_json(io.BytesIO(data), lines=True, dtype=False)
    else:
        lines = [ln.strip() for ln in data.decode("utf-8").splitlines()]
        frame = pd.DataFrame({"uri": [ln for ln in lines if ln and not ln.startswith("#")]})
    column = next((c for c in URI_COLUMNS if c in frame.columns), None)
    if column is None:
        raise ConfigError(f"input={spec!r}: the manifest needs a column of video URIs named one of "
                          f"{', '.join(URI_COLUMNS)}; it has {', '.join(map(str, frame.columns))}")
    base = spec.rsplit("/", 1)[0] if "/" in spec else "."
    rows = []
    for record in frame.to_dict("records"):
        uri = str(record.pop(column)).strip()
        if not uri:
            continue
        if "://" not in uri and not uri.startswith("/"):
            uri = posixpath.normpath(storage.join(base, uri)) if "://" not in base else storage.join(base, uri)
        row = _with_sidecars(uri) if storage.exists(uri) else {"source_uri": uri, "source_caption": None,
                                                                "source_title": None, "source_meta": None}
        caption = next((_text(record.pop(c)) for c in CAPTION_COLUMNS if c in record), None)
        title = next((_text(record.pop(c)) for c in TITLE_COLUMNS if c in record), None)
        row["source_caption"] = caption or row["source_caption"]
        row["source_title"] = title or row["source_title"]
        extra = {k: v for k, v in record.items() if v is not None and v == v}
        if extra:
            row["source_meta"] = json.dumps(extra, sort_keys=True, default=str)
        rows.append(row)
    return rows
