"""The `reelforge` command: dispatch to jobs, each a Hydra app over the shared `conf/` folder.

A job is a module with a root dataclass `CONFIG` and `run(cfg, ctx)`. The CLI finds it by dotted
name and imports it only when called, registers `CONFIG` in Hydra's ConfigStore as
`<job>_schema`, composes `conf/<job>.yaml` with the user's overrides, and runs it inside a run
folder (see `jobrun.py`). Config mistakes are caught before the job starts and reported in one
paragraph with exit code 2, no traceback.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

EXIT_USAGE = 2


@dataclass(frozen=True)
class JobSpec:
    module: str  # dotted module defining CONFIG and run(cfg, ctx)
    summary: str  # one line for `reelforge --help`
    # Words allowed right after the job name, passed on as `action=<word>` (e.g. `schedule status`).
    actions: tuple[str, ...] = ()
    # Plain flags the job accepts, each passed on as an override (e.g. --once -> once=true).
    flags: tuple[tuple[str, str], ...] = ()


JOBS: dict[str, JobSpec] = {
    "synth": JobSpec("reelforge.data.synth", "write real H.264 videos of moving shapes with captions"),
    "ingest": JobSpec("reelforge.data.ingest", "turn raw videos into captioned webdataset shards"),
    "train": JobSpec("reelforge.train.trainer", "train the video DiT (or VAE) on ingested shards"),
    "sample": JobSpec("reelforge.train.sample", "sample videos from a checkpoint for prompts"),
    "eval": JobSpec("reelforge.eval.job", "sample checkpoints over prompt suites and score them"),
    "demo": JobSpec("reelforge.eval.demo", "run the whole loop on the embedded default"),
    "schedule": JobSpec("reelforge.data.schedule", "ingest on a cron schedule: schedule ingest|status [--once]",
                        actions=("ingest", "status"), flags=(("--once", "once=true"),)),
}

# Commands that manage jobs on an existing Ray cluster (platform/jobs.py), not Hydra apps.
CLUSTER_COMMANDS = {
    "submit": "submit a job to a Ray cluster: reelforge submit <job> [overrides] [--address URL] [--no-wait]",
    "status": "show a submitted job's status: reelforge status <job-id>",
    "stop": "stop a submitted job: reelforge stop <job-id>",
}

# Hydra settings every job shares: Hydra itself writes nothing (no outputs/ folder, no .hydra/,
# no log files); the job's run folder under `output=` is the only record.
HYDRA_SETTINGS = (
    "hydra.run.dir=.",
    "hydra.sweep.subdir=.",
    "hydra.output_subdir=null",
    "hydra/job_logging=none",
    "hydra/hydra_logging=none",
    "hydra.job.chdir=False",
)

# Hydra flags that take a value, so that value is not mistaken for an override.
_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                "--config-dir", "-cd", "--shell-completion", "-sc", "--experimental-rerun"}
_NO_VALIDATE_FLAGS = {"--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc", "--version"}


def conf_dir() -> str:
    """The folder of Hydra configs, in a source checkout, an editable install or a wheel."""
    spec = importlib.util.find_spec("reelforge.conf")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("reelforge.conf is missing: reinstall reelforge (pip install -e .)")
    return str(Path(list(spec.submodule_search_locations)[0]).resolve())


def usage_error(message: str) -> None:
    print(f"reelforge: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def print_overview() -> None:
    lines = ["usage: reelforge <job> [key=value ...] [group=option ...] [--cfg job] [-m] [--help]", "",
             "Jobs (each a Hydra app over conf/; `reelforge <job> --help` lists its groups and keys):"]
    for name, spec in JOBS.items():
        there = importlib.util.find_spec(spec.module) is not None
        lines.append(f"  {name:<9} {spec.summary}{'' if there else '  [not in this build]'}")
    lines += ["", "On an existing Ray cluster (RAY_ADDRESS or --address http://HEAD:8265):"]
    lines += [f"  {name:<9} {text}" for name, text in CLUSTER_COMMANDS.items()]
    lines += ["", "Examples:", "  reelforge synth output=videos num_videos=24 seed=0",
              "  reelforge demo", "  reelforge synth --cfg job"]
    print("\n".join(lines))


def load_job(name: str) -> ModuleType:
    spec = JOBS[name]
    if importlib.util.find_spec(spec.module) is None:
        usage_error(f"the '{name}' job ({spec.module}) is not part of this build of reelforge; "
                    f"available now: {', '.join(j for j in JOBS if importlib.util.find_spec(JOBS[j].module))}.")
    return importlib.import_module(spec.module)


def job_words(name: str, rest: list[str]) -> list[str]:
    """Turn a job's action word and plain flags into Hydra overrides."""
    spec = JOBS[name]
    if spec.actions:
        if not rest or rest[0] not in spec.actions:
            got = f" got {rest[0]!r}." if rest and not rest[0].startswith("-") else ""
            usage_error(f"`reelforge {name}` needs one of: {', '.join(spec.actions)} "
                        f"(e.g. reelforge {name} {spec.actions[0]} ...).{got}")
        rest = [f"action={rest[0]}", *rest[1:]]
    flags = dict(spec.flags)
    return [flags.get(word, word) for word in rest]


def split_args(args: list[str]) -> tuple[list[str], list[str]]:
    """(overrides, flags) from the words after the job name."""
    overrides, flags, i = [], [], 0
    while i < len(args):
        word = args[i]
        if word.startswith("-"):
            flags.append(word)
            if word in _VALUE_FLAGS and i + 1 < len(args):
                flags.append(args[i + 1])
                i += 1
        else:
            overrides.append(word)
        i += 1
    return overrides, flags


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print_overview()
        return
    if argv[0] == "--version":
        from importlib.metadata import version

        print(f"reelforge {version('reelforge')}")
        return
    name, rest = argv[0], argv[1:]
    if name in CLUSTER_COMMANDS:
        from reelforge.platform import jobs

        jobs.main(name, rest)
        return
    if name not in JOBS:
        near = difflib.get_close_matches(name, [*JOBS, *CLUSTER_COMMANDS], n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        usage_error(f"unknown job {name!r}.{hint} Jobs: {', '.join(JOBS)}; cluster commands: "
                    f"{', '.join(CLUSTER_COMMANDS)}. See `reelforge --help`.")
    rest = job_words(name, rest)
    module = load_job(name)

    from reelforge.platform import configcheck, jobrun

    configcheck.register_schema(name, module.CONFIG)
    overrides, flags = split_args(rest)
    if not _NO_VALIDATE_FLAGS & set(flags):
        configcheck.validate(conf_dir(), name, overrides, multirun=bool({"-m", "--multirun"} & set(flags)))
    if _wants_job_cfg(flags):
        configcheck.print_job_config(conf_dir(), name, overrides, resolve="--resolve" in flags)
        return
    settings = [*HYDRA_SETTINGS, f"hydra.help.app_name='reelforge {name}'",
                f"hydra.help.header='reelforge {name}: {JOBS[name].summary}'",
                "hydra.help.footer='Docs: README.md and conf/. Overrides are key=value or group=option.'"]
    if {"-m", "--multirun"} & set(flags):
        # Hydra records the sweep (multirun.yaml) in its sweep folder: make that the job's output.
        settings.append(f"hydra.sweep.dir='{_sweep_dir(name, overrides)}'")
    jobrun.launch(name, module, conf_dir(), rest, tuple(settings))


def _sweep_dir(name: str, overrides: list[str]) -> str:
    from reelforge.platform import storage
    from reelforge.platform.jobrun import default_output

    outputs = [o.split("=", 1)[1] for o in overrides if o.startswith("output=")]
    output = outputs[-1] if outputs else default_output(name)
    if "," in output or not storage.is_local(output):
        import tempfile

        return tempfile.mkdtemp(prefix=f"reelforge-{name}-sweep-")
    return output


def _wants_job_cfg(flags: list[str]) -> bool:
    """`--cfg job` without multirun or --package is printed by us, with secrets redacted."""
    for i, f in enumerate(flags):
        if f in ("--cfg", "-c") and i + 1 < len(flags) and flags[i + 1] == "job":
            return not ({"-m", "--multirun", "-p", "--package"} & set(flags))
    return False


if __name__ == "__main__":
    main()
