"""infra/: every manifest parses, and its commands, images, resources and volumes match the CLI and configs."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reelforge.platform import cli, configcheck

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MANIFESTS = sorted([*INFRA.glob("kuberay/*.yaml"), *INFRA.glob("launcher/*.yaml")])
IMAGE = re.compile(r"^ghcr\.io/reelforge/reelforge:(?P<version>[\d.]+)-(?P<flavor>cpu|cuda)$")
PATH_KEYS = ("input", "output", "dataset", "checkpoint", "samples")


def _docs() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for node in _walk(doc) for c in node.get("containers", []) if isinstance(c, dict)]


def reelforge_commands() -> list[tuple[str, list[str]]]:
    """(where, words after `reelforge`) for every reelforge command in the manifests."""
    found = []
    for path, doc in _docs():
        for c in _containers(doc):
            words = [str(w) for w in c.get("command", []) + c.get("args", [])]
            if words and words[0] == "reelforge":
                found.append((f"{path.name}:{c['name']}", words[1:]))
        for node in _walk(doc):
            if isinstance(node.get("entrypoint"), str) and "reelforge" in node["entrypoint"]:
                words = shlex.split(node["entrypoint"])
                found.append((f"{path.name}:entrypoint", words[words.index("reelforge") + 1:]))
    return found


def _dockerfile_pins(flavor: str) -> dict[str, str]:
    text = (INFRA / "docker" / f"Dockerfile.{flavor}").read_text()
    return dict(re.findall(r'"?([a-z][\w-]*)(?:\[[\w,]+\])?==([\w.]+)"?', text))


def test_there_are_manifests_and_all_parse():
    kinds = {doc["kind"] for _, doc in _docs() if "kind" in doc}
    assert {"RayCluster", "CronJob", "PersistentVolumeClaim"} <= kinds
    assert any(doc.get("provider", {}).get("type") == "aws" for _, doc in _docs())


@pytest.mark.parametrize("where,words", reelforge_commands(), ids=lambda v: v if isinstance(v, str) else None)
def test_every_command_is_valid_for_the_real_cli(where, words):
    if words[0] == "submit":
        words = words[1:]
        while words[0].startswith("--"):
            words = words[2:] if words[0] == "--address" else words[1:]
    job, rest = words[0], cli.job_words(words[0], words[1:])
    assert job in cli.JOBS, f"{where}: unknown job {job!r}"
    module = cli.load_job(job)
    configcheck.register_schema(job, module.CONFIG)
    try:
        configcheck.validate(cli.conf_dir(), job, rest)
    except SystemExit as err:
        pytest.fail(f"{where}: `reelforge {' '.join(words)}` is not a valid command (exit {err.code})")
    for word in rest:
        key, _, value = word.partition("=")
        if key in PATH_KEYS:
            assert value.startswith(("/data/", "s3://", "gs://")), f"{where}: {word} is on no shared volume"


def test_images_match_dockerfiles_package_version_and_resources():
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)[1]
    for path, doc in _docs():
        for node in _walk(doc):
            image = node.get("image") or node.get("worker_image")
            if not isinstance(image, str):
                continue
            m = IMAGE.match(image)
            assert m, f"{path.name}: image {image} is not one of ours"
            assert m["version"] == version, f"{path.name}: {image} is not version {version}"
            assert (INFRA / "docker" / f"Dockerfile.{m['flavor']}").exists()
            limits = node.get("resources", {}).get("limits", {})
            gpus = "nvidia.com/gpu" in limits or "worker_run_options" in node
            assert (m["flavor"] == "cuda") == gpus, f"{path.name}: {image} on a {'GPU' if gpus else 'CPU'} node"


def test_dockerfiles_install_this_package_and_pin_what_deepspeed_needs():
    for flavor in ("cpu", "cuda"):
        text = (INFRA / "docker" / f"Dockerfile.{flavor}").read_text()
        pins = _dockerfile_pins(flavor)
        assert pins["torch"] == "2.13.0" and "deepspeed" in pins and "ninja" in pins
        for folder in ("platform", "data", "train", "eval", "conf"):  # every folder setup.py maps
            assert f"COPY {folder} ./{folder}" in text
        assert 'pip install ".[cloud]"' in text
    assert _dockerfile_pins("cpu")["deepspeed"] == _dockerfile_pins("cuda")["deepspeed"]


def test_ray_cluster_matches_the_images_and_mounts_data_everywhere():
    (cluster,) = [doc for _, doc in _docs() if doc.get("kind") == "RayCluster"]
    assert cluster["spec"]["rayVersion"] == _dockerfile_pins("cpu")["ray"] == _dockerfile_pins("cuda")["ray"]
    groups = {g["groupName"]: g for g in cluster["spec"]["workerGroupSpecs"]}
    assert {"cpu-workers", "gpu-workers"} <= set(groups)
    assert groups["gpu-workers"]["rayStartParams"]["num-gpus"] == \
        groups["gpu-workers"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
    for c in _containers(cluster):
        assert {"name": "data", "mountPath": "/data"} in c["volumeMounts"]
        key_env = [e for e in c["env"] if e["name"] == "WANDB_API_KEY"]
        assert key_env and "valueFrom" in key_env[0]  # from a secret, never a literal
    head_ports = {p["containerPort"] for p in cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
                  ["ports"]}
    assert {6379, 8265} <= head_ports
    head_service = f"http://{cluster['metadata']['name']}-head-svc:8265"
    for where, words in reelforge_commands():
        if words[0] == "submit":
            assert words[words.index("--address") + 1] == head_service, where


def test_ingestion_cron_is_a_valid_schedule():
    from reelforge.data.schedule import cron_trigger

    (cron,) = [doc for _, doc in _docs() if doc.get("kind") == "CronJob"]
    cron_trigger(cron["spec"]["schedule"])
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
