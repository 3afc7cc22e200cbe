"""One small storage layer over fsspec for local folders and object stores (s3://, gs://, ...).

Every write that makes a file visible is atomic: on a local disk the bytes go to a temporary
name in the same folder and are renamed into place; on an object store the object appears in a
single put. Readers therefore see either nothing or the whole file, never a partial one.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

# Temporary names carry this marker so listings can skip in-flight writes.
TMP_MARKER = ".tmp-"

_PROTOCOL_EXTRAS = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """Return (filesystem, path inside it) for a local path or URI."""
    try:
        return fsspec.core.url_to_fs(str(uri))
    except ImportError as err:
        proto = str(uri).split("://", 1)[0]
        pkg = _PROTOCOL_EXTRAS.get(proto)
        if pkg is None:
            raise ImportError(f"{uri!r} needs the fsspec driver for {proto}://: {err}") from err
        extra = " (or pip install 'reelforge[cloud]')" if pkg in ("s3fs", "gcsfs") else ""
        raise ImportError(f"{uri!r} needs {pkg}; install it with: pip install {pkg}{extra}") from err


def is_local(uri: str) -> bool:
    return isinstance(filesystem(uri)[0], LocalFileSystem)


def join(base: str, *parts: str) -> str:
    """Join path parts onto a local path or a URI with forward slashes."""
    base = str(base)
    if "://" in base:
        return posixpath.join(base, *parts)
    return str(Path(base, *parts))


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.exists(path)


def makedirs(uri: str) -> None:
    fs, path = filesystem(uri)
    fs.makedirs(path, exist_ok=True)


def _unstrip(uri: str, fs: fsspec.AbstractFileSystem, path: str) -> str:
    """Turn a path returned by fs back into the caller's URI form."""
    if isinstance(fs, LocalFileSystem):
        return path
    proto = uri.split("://", 1)[0]
    return f"{proto}://{path}"


def listdir(uri: str, *, suffix: str | None = None, recursive: bool = False) -> list[str]:
    """Sorted files under `uri` (not folders), skipping in-flight temporary writes."""
    fs, path = filesystem(uri)
    if not fs.exists(path):
        return []
    found = fs.find(path) if recursive else [e for e in fs.ls(path, detail=False) if fs.isfile(e)]
    out = []
    for entry in found:
        name = posixpath.basename(entry.rstrip("/"))
        if TMP_MARKER in name or (suffix is not None and not name.endswith(suffix)):
            continue
        out.append(_unstrip(str(uri), fs, entry))
    return sorted(out)


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    with fs.open(path, "rb") as f:
        return f.read()


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def _local_tmp_name(path: str) -> str:
    folder, name = os.path.split(path)
    return os.path.join(folder, f"{TMP_MARKER}{uuid.uuid4().hex[:12]}-{name}")


@contextlib.contextmanager
def open_atomic(uri: str, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open `uri` for writing; the file appears under its name only if the block completes.

    If the block raises, the temporary file is removed and any previous file at `uri` is kept.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"open_atomic mode must be 'wb' or 'w', got {mode!r}")
    fs, path = filesystem(uri)
    encoding = None if "b" in mode else "utf-8"
    if isinstance(fs, LocalFileSystem):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = _local_tmp_name(path)
        try:
            with open(tmp, mode, encoding=encoding) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return
    # Object stores: stage locally, then one put makes the whole object appear at once.
    with tempfile.NamedTemporaryFile(mode, encoding=encoding, suffix=TMP_MARKER, delete=True) as f:
        yield f
        f.flush()
        fs.put_file(f.name, path)


def write_bytes(uri: str, data: bytes) -> None:
    with open_atomic(uri, "wb") as f:
        f.write(data)


def write_text(uri: str, text: str) -> None:
    write_bytes(uri, text.encode("utf-8"))


def put_file(local_path: str, uri: str) -> None:
    """Copy a finished local file to `uri` atomically."""
    fs, path = filesystem(uri)
    if isinstance(fs, LocalFileSystem):
        with open_atomic(path, "wb") as dst, open(local_path, "rb") as src:
            shutil.copyfileobj(src, dst)
    else:
        fs.put_file(local_path, path)


def remove(uri: str, *, recursive: bool = False) -> None:
    fs, path = filesystem(uri)
    if fs.exists(path):
        fs.rm(path, recursive=recursive)


def local_path(uri: str) -> str:
    """The local filesystem path of a local URI; raises for object stores."""
    fs, path = filesystem(uri)
    if not isinstance(fs, LocalFileSystem):
        raise ValueError(f"{uri!r} is not on the local disk")
    return path
