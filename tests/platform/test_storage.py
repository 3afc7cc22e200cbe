"""Storage: atomic writes and listing on the local disk and on an fsspec object store (memory://)."""

from __future__ import annotations

import os
import uuid

import pytest

from reelforge.platform import storage


@pytest.fixture(params=["local", "memory", "s3"])
def base(request, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "store")
    if request.param == "s3":
        return request.getfixturevalue("s3_bucket") + "/store"
    # fsspec's in-memory filesystem takes the object-store code path (stage locally, one put).
    return f"memory://reelforge-test-{uuid.uuid4().hex}"


def test_write_read_list_roundtrip(base):
    storage.write_bytes(storage.join(base, "a", "one.bin"), b"\x00\x01")
    storage.write_text(storage.join(base, "a", "two.txt"), "héllo")
    storage.write_text(storage.join(base, "b.txt"), "top")
    assert storage.read_bytes(storage.join(base, "a", "one.bin")) == b"\x00\x01"
    assert storage.read_text(storage.join(base, "a", "two.txt")) == "héllo"
    assert [p.rsplit("/", 1)[-1] for p in storage.listdir(storage.join(base, "a"))] == ["one.bin", "two.txt"]
    assert [p.rsplit("/", 1)[-1] for p in storage.listdir(base, suffix=".txt", recursive=True)] == ["two.txt", "b.txt"]
    assert storage.listdir(storage.join(base, "missing")) == []
    assert storage.exists(storage.join(base, "b.txt"))


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_debris(base):
    target = storage.join(base, "data.bin")
    storage.write_bytes(target, b"old contents")
    with pytest.raises(RuntimeError), storage.open_atomic(target) as f:
        f.write(b"new contents, half writ")
        raise RuntimeError("writer died")
    assert storage.read_bytes(target) == b"old contents"
    fs, path = storage.filesystem(base)
    assert [e.rsplit("/", 1)[-1] for e in fs.ls(path, detail=False)] == ["data.bin"]


def test_a_new_file_appears_only_when_complete(base):
    target = storage.join(base, "new.bin")
    storage.makedirs(base)
    with storage.open_atomic(target) as f:
        f.write(b"part one ")
        assert not storage.exists(target)
        assert storage.listdir(base) == []  # in-flight temporary names are not listed
        f.write(b"part two")
    assert storage.read_bytes(target) == b"part one part two"


def test_local_temporary_file_lives_beside_the_target(tmp_path):
    # Same folder, same filesystem: os.replace is then an atomic rename.
    target = tmp_path / "x.bin"
    with storage.open_atomic(str(target)) as f:
        assert os.path.dirname(f.name) == str(tmp_path)
        assert storage.TMP_MARKER in os.path.basename(f.name)


def test_put_file_and_remove(base, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    target = storage.join(base, "deep", "dst.bin")
    storage.put_file(str(src), target)
    assert storage.read_bytes(target) == b"payload"
    storage.remove(storage.join(base, "deep"), recursive=True)
    assert not storage.exists(target)


def test_join_and_locality(tmp_path):
    assert storage.join("s3://bucket/data", "shards", "x.tar") == "s3://bucket/data/shards/x.tar"
    assert storage.join(str(tmp_path), "a") == str(tmp_path / "a")
    assert storage.is_local(str(tmp_path)) and not storage.is_local("memory://x")
    with pytest.raises(ValueError, match="not on the local disk"):
        storage.local_path("memory://x")


def test_an_unknown_protocol_says_what_to_install():
    with pytest.raises(ImportError, match="needs adlfs; install it with: pip install adlfs"):
        storage.filesystem("abfs://container/path")


def test_a_job_writes_its_output_and_run_record_to_s3(s3_bucket, tmp_path):
    from tests.conftest import run_cli

    out = f"{s3_bucket}/videos"
    proc = run_cli("synth", f"output={out}", "num_videos=2", "seconds=1", cwd=tmp_path,
                   env={k: os.environ[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == []  # nothing local
    names = [p.rsplit("/", 1)[-1] for p in storage.listdir(out, recursive=True)]
    assert {"shapes_000000.mp4", "shapes_000001.txt", "heldout.json", "config.yaml", "meta.json", "job.log"} <= set(names)
    assert any(n.endswith(".wandb") for n in names)  # the offline wandb run went up with the record
