"""`reelforge submit | status | stop`: run jobs on an existing Ray cluster through the Ray Jobs API.

`submit` checks the job's config here first, then submits `python -m reelforge.platform.cli <job>
<overrides>` with a runtime environment that carries the code: from a source checkout, the
package folders laid out as `reelforge/` (so the cluster runs exactly this code and its conf/);
from an installed package, the cluster's own install. The job connects to the cluster it runs on (`cluster=remote`, with the
RAY_ADDRESS that Ray Jobs sets). Logs stream until the job ends unless `--no-wait`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

EXIT_USAGE, EXIT_FAILED = 2, 1
DEFAULT_DASHBOARD = "http://127.0.0.1:8265"
SOURCE_ROOT = Path(__file__).resolve().parent.parent
# The source folders that make up the reelforge package (as mapped in setup.py).
PACKAGE_FOLDERS = ("platform", "data", "train", "eval", "conf")
# Environment variables passed on to the submitted job when set here (never secrets: the cluster
# keeps its own WANDB_API_KEY and cloud credentials).
# How long `submit` waits for a just-started head's job agent, in seconds.
AGENT_WAIT_S = 120.0
FORWARDED_ENV = ("WANDB_MODE", "WANDB_PROJECT", "WANDB_ENTITY", "HF_HUB_OFFLINE")


def dashboard_address(explicit: str | None) -> str:
    """The Ray Jobs endpoint: --address, else RAY_ADDRESS (as http://host:8265 or ray://), else local."""
    address = explicit or os.environ.get("RAY_JOBS_ADDRESS") or os.environ.get("RAY_ADDRESS") or DEFAULT_DASHBOARD
    if "://" not in address:
        address = f"http://{address}"
    return address


def _client(address: str) -> Any:
    # Clusters started by `ray start` use token authentication with the token in ~/.ray/auth_token;
    # Ray's job client sends it only when RAY_AUTH_MODE=token, so turn that on when a token exists.
    token_file = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    if "RAY_AUTH_MODE" not in os.environ and (os.environ.get("RAY_AUTH_TOKEN") or os.path.exists(token_file)):
        os.environ["RAY_AUTH_MODE"] = "token"  # read when Ray is first imported, so before the import
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except ConnectionError as err:
        print(f"reelforge: cannot reach the Ray Jobs API at {address}: {err}. Pass --address "
              f"http://HEAD:8265 (the head's dashboard port) or set RAY_ADDRESS.", file=sys.stderr)
        raise SystemExit(EXIT_FAILED) from None


def stage_package(out_dir: str) -> str | None:
    """This source checkout laid out as the installed `reelforge` package, or None when running installed.

    Ray ships a py_modules folder as is; a wheel there would be pip-installed with all its
    dependencies (torch, Ray itself) into the job's path, so the folder is what travels.
    """
    if not (SOURCE_ROOT / "pyproject.toml").exists():
        return None
    package = Path(out_dir) / "reelforge"
    for folder in PACKAGE_FOLDERS:
        shutil.copytree(SOURCE_ROOT / folder, package / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    return str(package)


def runtime_env(package: str | None) -> dict[str, Any]:
    env: dict[str, Any] = {"env_vars": {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}}
    if package is not None:
        env["py_modules"] = [package]
    return env


def entrypoint(job: str, overrides: list[str], uses_cluster: bool) -> str:
    words = ["python", "-m", "reelforge.platform.cli", job, *overrides]
    if uses_cluster and not any(o.startswith("cluster=") for o in overrides):
        words.append("cluster=remote")  # run on the cluster the job was submitted to
    return shlex.join(words)


def submit(job: str, overrides: list[str], address: str | None, wait: bool) -> int:
    from reelforge.platform import cli, configcheck

    if job not in cli.JOBS:
        cli.usage_error(f"unknown job {job!r} to submit; jobs: {', '.join(cli.JOBS)}.")
    overrides = cli.job_words(job, overrides)  # `schedule ingest --once` -> action=ingest once=true
    module = cli.load_job(job)
    configcheck.register_schema(job, module.CONFIG)
    configcheck.validate(cli.conf_dir(), job, overrides)  # fail here, not on the cluster
    uses_cluster = "cluster" in configcheck.job_groups(cli.conf_dir(), job)
    client = _client(dashboard_address(address))
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    submission_id = f"reelforge-{job}-{stamp}-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="reelforge-code-") as tmp:
        request = {"entrypoint": entrypoint(job, overrides, uses_cluster), "runtime_env": runtime_env(stage_package(tmp)),
                   "submission_id": submission_id, "metadata": {"reelforge_job": job}}
        job_id = _submit_when_ready(client, request)
    print(f"submitted {job_id}", flush=True)
    if not wait:
        return 0
    return follow(client, job_id)


def _submit_when_ready(client: Any, request: dict[str, Any], wait_s: float = AGENT_WAIT_S) -> str:
    """Submit, waiting while a freshly started head has no job agent yet (Ray answers 500 meanwhile)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return client.submit_job(**request)
        except RuntimeError as err:
            if "No available agent" not in str(err) or time.monotonic() > deadline:
                raise
            print("the cluster's job agent is not up yet; retrying", file=sys.stderr, flush=True)
            time.sleep(2.0)


def follow(client: Any, job_id: str) -> int:
    """Stream the job's logs to stdout until it ends; 0 when it succeeded."""

    async def tail() -> None:
        async for lines in client.tail_job_logs(job_id):
            print(lines, end="", flush=True)

    try:
        asyncio.run(tail())
    except KeyboardInterrupt:
        print(f"\nstopped following {job_id}; it keeps running (reelforge stop {job_id} ends it)", file=sys.stderr)
        return 130
    status = str(client.get_job_status(job_id).value)
    print(f"{job_id}: {status}", flush=True)
    return 0 if status == "SUCCEEDED" else EXIT_FAILED


def _ask(job_id: str, address: str | None, call: str) -> Any:
    """`client.<call>(job_id)`, or exit 2 naming the job when the cluster does not know it."""
    client = _client(dashboard_address(address))
    try:
        return getattr(client, call)(job_id)
    except RuntimeError as err:
        print(f"reelforge: no job {job_id!r} on {dashboard_address(address)}: {err}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def status(job_id: str, address: str | None) -> int:
    info = _ask(job_id, address, "get_job_info")
    fields = {"job": job_id, "status": str(info.status.value), "entrypoint": info.entrypoint,
              "message": info.message or "", "started": _time(info.start_time), "ended": _time(info.end_time)}
    for key, value in fields.items():
        print(f"{key + ':':<12}{value}")
    return 0


def stop(job_id: str, address: str | None) -> int:
    stopped = _ask(job_id, address, "stop_job")
    print(f"{job_id}: {'stop requested' if stopped else 'already finished'}")
    return 0


def _time(ms: int | None) -> str:
    return "" if not ms else dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def main(command: str, argv: list[str]) -> None:
    """Entry from the CLI for `submit`, `status` and `stop`."""
    parser = argparse.ArgumentParser(prog=f"reelforge {command}")
    parser.add_argument("--address", help="Ray Jobs endpoint, e.g. http://HEAD:8265 (default: RAY_ADDRESS)")
    if command == "submit":
        parser.add_argument("--no-wait", action="store_true", help="print the job id and return at once")
        parser.add_argument("job", help="the job to run on the cluster, e.g. ingest or train")
        parser.add_argument("overrides", nargs=argparse.REMAINDER,
                            help="the job's words: Hydra overrides (key=value, group=option), actions, flags")
        args = parser.parse_args(argv)
        raise SystemExit(submit(args.job, args.overrides, args.address, wait=not args.no_wait))
    parser.add_argument("job_id")
    args = parser.parse_args(argv)
    raise SystemExit((status if command == "status" else stop)(args.job_id, args.address))
