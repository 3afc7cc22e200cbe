"""infra/: every manifest parses, and its commands, images, resources and volumes match the CLI and configs."""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from reelforge.platform import cli, configcheck
from reelforge.platform.config import to_dataclass

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


def cli_overrides(words: list[str]) -> tuple[str, list[str]]:
    """(job, Hydra overrides) for the words after `reelforge`, as the CLI turns them (`submit` flags dropped)."""
    if words[0] == "submit":
        words = words[1:]
        while words[0].startswith("--"):
            words = words[2:] if words[0] == "--address" else words[1:]
    assert words[0] in cli.JOBS, f"unknown job {words[0]!r}"
    return words[0], cli.job_words(words[0], words[1:])


def job_config(words: list[str]) -> Any:
    """The job's config dataclass for the words after `reelforge`, composed from conf/ as the CLI composes it."""
    job, overrides = cli_overrides(words)
    module = cli.load_job(job)
    configcheck.register_schema(job, module.CONFIG)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=cli.conf_dir(), version_base="1.3", job_name=job):
        return to_dataclass(compose(config_name=job, overrides=overrides), module.CONFIG)


def rayjob(job: str) -> dict[str, Any]:
    """The RayJob whose entrypoint is `reelforge <job> ...`."""
    found = [doc for _, doc in _docs() if doc.get("kind") == "RayJob"
             and shlex.split(doc["spec"]["entrypoint"])[:2] == ["reelforge", job]]
    assert len(found) == 1, f"want one RayJob running `reelforge {job}`, found {len(found)}"
    return found[0]


def _pod_specs(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    groups = [cluster["headGroupSpec"], *cluster.get("workerGroupSpecs", [])]
    return [g["template"]["spec"] for g in groups]


def _dockerfile_pins(flavor: str) -> dict[str, str]:
    text = (INFRA / "docker" / f"Dockerfile.{flavor}").read_text()
    return dict(re.findall(r'"?([a-z][\w-]*)(?:\[[\w,]+\])?==([\w.]+)"?', text))


def test_there_are_manifests_and_all_parse():
    kinds = {doc["kind"] for _, doc in _docs() if "kind" in doc}
    assert {"RayCluster", "RayJob", "CronJob", "PersistentVolumeClaim"} <= kinds
    assert any(doc.get("provider", {}).get("type") == "aws" for _, doc in _docs())


@pytest.mark.parametrize("where,words", reelforge_commands(), ids=lambda v: v if isinstance(v, str) else None)
def test_every_command_is_valid_for_the_real_cli(where, words):
    job, rest = cli_overrides(words)
    module = cli.load_job(job)
    configcheck.register_schema(job, module.CONFIG)
    try:
        configcheck.validate(cli.conf_dir(), job, rest)
    except SystemExit as err:
        pytest.fail(f"{where}: `reelforge {' '.join(words)}` is not a valid command (exit {err.code})")
    job_config(words)  # and converts to the job's dataclass, as the CLI does before the job starts
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
        # CPU heads and CUDA workers share clusters but not a Python patch release: Ray must accept minor.
        assert "RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL=minor" in text
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
        assert not key_env[0]["valueFrom"]["secretKeyRef"].get("optional")  # online wandb needs the key
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


@pytest.mark.parametrize("job", ["train", "eval"])
def test_rayjob_brings_its_own_cluster_and_tears_it_down(job):
    spec = rayjob(job)["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert 0 < spec["ttlSecondsAfterFinished"] <= 3600  # long enough to read the logs, not an idle GPU cluster
    assert "clusterSelector" not in spec, "the RayJob must run on its own, on the cluster it describes"
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == _dockerfile_pins("cuda")["ray"]
    cfg = job_config(shlex.split(spec["entrypoint"])[1:])
    # The driver runs on the RayJob's head and joins it through the RAY_ADDRESS that Ray Jobs sets.
    assert cfg.cluster.mode == "remote" and cfg.cluster.address is None


@pytest.mark.parametrize("job", ["train", "eval"])
def test_rayjob_mounts_the_data_volume_where_its_command_points(job):
    spec = rayjob(job)["spec"]
    (pvc,) = [doc for _, doc in _docs() if doc.get("kind") == "PersistentVolumeClaim"]
    _, overrides = cli_overrides(shlex.split(spec["entrypoint"])[1:])
    values = dict(o.partition("=")[::2] for o in overrides)
    assert "output" in values, f"{job}: no output=, so it would write into the head pod, lost with the cluster"
    paths = {key: value for key, value in values.items() if value.startswith("/")}
    for pod in _pod_specs(spec["rayClusterSpec"]):
        claims = {v["name"] for v in pod["volumes"]
                  if v.get("persistentVolumeClaim", {}).get("claimName") == pvc["metadata"]["name"]}
        for c in pod["containers"]:
            mounts = [m["mountPath"].rstrip("/") + "/" for m in c["volumeMounts"] if m["name"] in claims]
            for key, value in paths.items():
                assert any(value.startswith(m) for m in mounts), f"{job}: {c['name']} does not mount {key}={value}"


@pytest.mark.parametrize("job", ["train", "eval"])
def test_rayjob_logs_to_wandb_online_with_the_key_from_the_secret(job):
    spec = rayjob(job)["spec"]
    cfg = job_config(shlex.split(spec["entrypoint"])[1:])
    # wandb.init gets tracking.project from the config, so WANDB_PROJECT only documents it: they must agree.
    assert cfg.tracking.backend == "wandb" and cfg.tracking.mode is None  # null: WANDB_MODE decides
    (cluster,) = [doc for _, doc in _docs() if doc.get("kind") == "RayCluster"]
    secret = next(e for e in _containers(cluster)[0]["env"] if e["name"] == "WANDB_API_KEY")
    secret = secret["valueFrom"]["secretKeyRef"]
    readme = (INFRA / "README.md").read_text()
    assert f"kubectl create secret generic {secret['name']} --from-literal={secret['key']}=" in readme
    for c in _containers(spec["rayClusterSpec"]):  # the driver on the head, rank 0 or the samplers on workers
        env = {e["name"]: e for e in c["env"]}
        assert env["WANDB_MODE"]["value"] == "online"
        assert env["WANDB_PROJECT"]["value"] == cfg.tracking.project
        ref = env["WANDB_API_KEY"]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == (secret["name"], secret["key"])
        assert not ref.get("optional"), "online wandb without a key fails the run: the pod must wait for the secret"


def _gpu_groups(spec: dict[str, Any]) -> list[dict[str, Any]]:
    groups = []
    for group in spec["rayClusterSpec"]["workerGroupSpecs"]:
        (c,) = group["template"]["spec"]["containers"]
        limits = c["resources"]["limits"]
        if "nvidia.com/gpu" in limits:
            gpus = int(limits["nvidia.com/gpu"])
            assert int(c["resources"]["requests"]["nvidia.com/gpu"]) == gpus == int(group["rayStartParams"]["num-gpus"])
            groups.append({**group, "gpus": gpus})
    return groups


def test_train_rayjob_has_one_gpu_per_rank_on_a_fixed_set_of_nodes():
    spec = rayjob("train")["spec"]
    cfg = job_config(shlex.split(spec["entrypoint"])[1:])
    assert cfg.trainer.device == "cuda" and cfg.trainer.num_workers > 1  # multi-node DeepSpeed under Ray Train
    assert cfg.trainer.resume == "auto"  # a retry (backoffLimit) or a re-created RayJob continues the run
    groups = _gpu_groups(spec)
    assert groups, "train needs a GPU worker group"
    # No autoscaling: all ranks start together, and every rank's GPU is there from the start.
    assert all(g["minReplicas"] == g["replicas"] == g["maxReplicas"] for g in groups)
    assert sum(g["replicas"] * g["gpus"] for g in groups) == cfg.trainer.num_workers
    head = spec["rayClusterSpec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # no rank lands on the GPU-less head


def test_train_rayjob_passes_the_train_jobs_own_checks(monkeypatch):
    module = cli.load_job("train")
    cfg = job_config(shlex.split(rayjob("train")["spec"]["entrypoint"])[1:])
    # The dataset is on the cluster's volume, not here; every other check runs as `reelforge train` runs it
    # (model, VAE and its weights path, buckets, DeepSpeed and rank settings).
    monkeypatch.setattr(sys.modules[module.check.__module__], "list_shards", lambda dataset: [dataset])
    module.check(cfg)


def readme_commands() -> list[list[str]]:
    """Words after `reelforge` for each job command in infra/README.md's bash blocks (`submit` included)."""
    text = (INFRA / "README.md").read_text()
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if "reelforge" in words:
                words = words[words.index("reelforge") + 1:]
                if words[0] in cli.JOBS or words[0] == "submit":
                    found.append(words)
    return found


def test_readme_commands_are_valid_for_the_real_cli():
    commands = readme_commands()
    assert {w[1] if w[0] == "submit" else w[0] for w in commands} >= {"ingest", "schedule", "train", "eval"}
    for words in commands:
        job, overrides = cli_overrides(words)
        module = cli.load_job(job)
        configcheck.register_schema(job, module.CONFIG)
        try:
            configcheck.validate(cli.conf_dir(), job, overrides)
        except SystemExit:
            pytest.fail(f"infra/README.md: `reelforge {' '.join(words)}` is not a valid command")
        job_config(words)


def test_eval_rayjob_samples_the_training_run_on_every_gpu_it_asks_for(monkeypatch):
    module = cli.load_job("eval")
    spec = rayjob("eval")["spec"]
    cfg = job_config(shlex.split(spec["entrypoint"])[1:])
    train = job_config(shlex.split(rayjob("train")["spec"]["entrypoint"])[1:])
    assert cfg.checkpoint == train.output and cfg.samples is None  # it evaluates the run the train RayJob writes
    assert cfg.sampling.device in ("auto", "cuda")
    groups = _gpu_groups(spec)
    assert groups, "eval samples on a GPU worker group"
    # Sampling actors are planned from the GPUs present when sampling starts: no autoscaling.
    assert all(g["minReplicas"] == g["replicas"] == g["maxReplicas"] for g in groups)
    assert cfg.workers in (None, sum(g["replicas"] * g["gpus"] for g in groups))  # one actor per GPU
    # The checkpoints are on the cluster's volume, not here; every other check runs as `reelforge eval` runs it.
    monkeypatch.setattr(module, "resolve_checkpoints", lambda refs, labels: [])
    module.check(cfg)
