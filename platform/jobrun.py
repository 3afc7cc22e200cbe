"""Runs one job under Hydra: typed config in, run folder, logging and tracking around it.

`launch` hands the command line to a Hydra app (so overrides, `--help`, `-m` and the rest are
Hydra's own); each Hydra task converts the config to the job's dataclass once and calls
`run_job`, which gives the job a `JobContext`. A job module may define `check(cfg)`, which raises
ConfigError before anything is written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from omegaconf import DictConfig, OmegaConf

from reelforge.platform import storage
from reelforge.platform.config import ConfigError, JobConfig, to_dataclass
from reelforge.platform.logs import setup_logging
from reelforge.platform.rundir import RunDir, redact_argv
from reelforge.platform.tracking import NoopTracker, Tracker, make_tracker, redact, secret_values

log = logging.getLogger("reelforge")
EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130


def default_output(job: str) -> str:
    return os.path.join("reelforge-runs", job)


@dataclass
class JobContext:
    """What a running job gets besides its config."""

    job: str
    output: str
    run: RunDir
    tracker: Tracker = field(default_factory=NoopTracker)
    cluster: Any = None  # the job's ClusterConfig when its root has a `cluster` group

    @contextlib.contextmanager
    def ray(self, runtime_env: dict[str, Any] | None = None) -> Iterator[Any]:
        """The job's Ray session (embedded or remote, from `cluster=`); yields the ray module."""
        if self.cluster is None:
            raise RuntimeError(f"the {self.job} job's config has no `cluster` group, so it cannot use Ray")
        from reelforge.platform.ray_session import ray_session

        with ray_session(self.cluster, runtime_env) as ray:
            yield ray


def launch(name: str, module: ModuleType, conf: str, args: list[str], settings: tuple[str, ...]) -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    def task(dcfg: DictConfig) -> Any:
        hc = HydraConfig.get()
        cfg = to_dataclass(dcfg, module.CONFIG)
        output = cfg.output or default_output(name)
        if hc.mode == RunMode.MULTIRUN:
            output = storage.join(output, str(hc.job.num))
        cfg.output = output
        check = getattr(module, "check", None)
        if check is not None:
            try:
                check(cfg)
            except ConfigError as err:
                print(f"reelforge {name}: config error: {err}", file=sys.stderr)
                raise SystemExit(EXIT_USAGE) from None
        # Libraries that record the command line (wandb does) must not see secrets passed as overrides.
        sys.argv = redact_argv(sys.argv)
        code = run_job(name, module, cfg, OmegaConf.to_container(dcfg, resolve=True), redact_argv(["reelforge", name, *args]))
        if code and hc.mode != RunMode.MULTIRUN:
            raise SystemExit(code)
        return code

    app = hydra.main(config_path=conf, config_name=name, version_base="1.3")(task)
    saved = sys.argv
    sys.argv = [f"reelforge {name}", *args, f"hydra.job.name={name}", *settings]
    try:
        app()
    finally:
        sys.argv = saved


def run_job(name: str, module: ModuleType, cfg: JobConfig, raw: dict[str, Any],
            argv: list[str] | None = None) -> int:
    """Run `module.run(cfg, ctx)` inside a run folder; returns the process exit code."""
    raw = {**raw, "output": cfg.output}
    secrets = secret_values(raw)
    try:
        run = RunDir.create(cfg.output, name, raw, argv=argv or [])
    except (OSError, ValueError, ImportError) as err:
        print(f"reelforge {name}: cannot create the run folder under output={cfg.output!r}: {err}",
              file=sys.stderr)
        return EXIT_USAGE
    setup_logging(cfg.log_level, os.path.join(run.local, "job.log"), secrets)
    log.info("%s run %s -> %s", name, run.name, cfg.output)
    tracker: Tracker = NoopTracker()
    status, code, summary, error = "failed", EXIT_FAILED, None, None
    try:
        tracker = make_tracker(cfg.tracking, job=name, run_name=f"{name}-{run.name}",
                               local_dir=os.path.join(run.local, "tracking"), config=raw)
        ctx = JobContext(job=name, output=cfg.output, run=run, tracker=tracker,
                         cluster=getattr(cfg, "cluster", None))
        summary = module.run(cfg, ctx)
        status, code = "succeeded", 0
    except ConfigError as err:
        error = str(err)
        status, code = "config-error", EXIT_USAGE
        log.debug("config error", exc_info=True)
        print(f"reelforge {name}: config error: {err}", file=sys.stderr)
    except KeyboardInterrupt:
        status, code, error = "interrupted", EXIT_INTERRUPTED, "interrupted"
        log.warning("%s interrupted; partial work is left uncommitted and is redone on the next run", name)
    except Exception as err:  # the job failed: record why in the run folder, then exit non-zero
        error = f"{type(err).__name__}: {err}"
        with open(os.path.join(run.local, "job.log"), "a", encoding="utf-8") as f:
            f.write(traceback.format_exc())
        log.error("%s failed: %s (traceback in %s)", name, error, storage.join(run.path, "job.log"))
    finally:
        tracker.finish(exit_code=code)
        for handler in logging.getLogger().handlers:
            handler.flush()
        run.finish(status, summary=redact(summary) if isinstance(summary, dict) else None, error=error)
    return code
