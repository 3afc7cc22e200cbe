"""Config composition checks that turn Hydra's errors into one paragraph a user can act on.

Before a job starts, the CLI composes its config with the user's overrides (each value of a
multirun sweep too). On failure the override at fault is found and named with the nearest valid
choices: an unknown key, an unknown option of a config group, or a value of the wrong type.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import sys
from collections.abc import Iterator

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from reelforge.platform.tracking import redact

EXIT_USAGE = 2


def register_schema(job: str, cls: type) -> None:
    """Store the job's root dataclass as `<job>_schema`, the first entry of conf/<job>.yaml's defaults."""
    ConfigStore.instance().store(name=f"{job}_schema", node=cls)


@contextlib.contextmanager
def _hydra(conf: str, job: str) -> Iterator[None]:
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=conf, version_base="1.3", job_name=job):
        yield


def _compose(conf: str, job: str, overrides: list[str]) -> DictConfig:
    with _hydra(conf, job):
        return compose(config_name=job, overrides=overrides)


def groups(conf: str) -> dict[str, list[str]]:
    """Config groups under conf/ and their options (YAML file names)."""
    found = {}
    for entry in sorted(os.listdir(conf)):
        folder = os.path.join(conf, entry)
        if os.path.isdir(folder) and not entry.startswith(("_", ".")):
            found[entry] = sorted(f[:-5] for f in os.listdir(folder) if f.endswith(".yaml"))
    return found


def job_groups(conf: str, job: str) -> dict[str, list[str]]:
    """The groups that conf/<job>.yaml's defaults list composes, with their options."""
    with open(os.path.join(conf, f"{job}.yaml"), encoding="utf-8") as f:
        defaults = (yaml.safe_load(f) or {}).get("defaults", [])
    names = set()
    for entry in defaults:
        if isinstance(entry, dict):
            for key in entry:
                names.add(str(key).split()[-1].split("@")[0])
    return {g: opts for g, opts in groups(conf).items() if g in names}


def _expand(overrides: list[str], multirun: bool) -> list[list[str]]:
    """Override lists to check: with -m, each value of each sweep (the others at their first value)."""
    if not multirun:
        return [overrides]
    parsed = OverridesParser.create().parse_overrides(overrides)
    firsts = []
    for o in parsed:
        firsts.append(f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}"
                      if o.is_sweep_override() else o.input_line)
    cases = [firsts]
    for i, o in enumerate(parsed):
        if o.is_sweep_override():
            for value in o.sweep_string_iterator():
                cases.append(firsts[:i] + [f"{o.get_key_element()}={value}"] + firsts[i + 1:])
    return cases


def validate(conf: str, job: str, overrides: list[str], multirun: bool = False) -> None:
    """Compose the job's config with `overrides`; on a mistake print one paragraph and exit 2."""
    try:
        cases = _expand(overrides, multirun)
    except Exception as err:  # the parser's own exception types vary across Hydra versions
        _fail(job, f"cannot parse the overrides: {_first_line(err)}")
    for case in cases:
        try:
            _compose(conf, job, case)
        except Exception as err:  # Hydra wraps OmegaConf errors in several exception types
            _fail(job, explain(conf, job, case, err))


def explain(conf: str, job: str, overrides: list[str], err: Exception) -> str:
    """Find the first override that breaks composition and describe what is wrong with it."""
    for i in range(len(overrides)):
        try:
            _compose(conf, job, overrides[: i + 1])
        except Exception as step_err:  # same as above: any composition failure
            return _describe(conf, job, overrides[:i], overrides[i], step_err)
    return _first_line(err)


def _describe(conf: str, job: str, before: list[str], override: str, err: Exception) -> str:
    key, sep, value = override.lstrip("+~").partition("=")
    key = key.split("@")[0]
    if not sep:
        return (f"{override!r} is not an override: write key=value (for example output=DIR) "
                f"or group=option (for example cluster=local).")
    all_groups = job_groups(conf, job)
    if key in groups(conf) and key not in all_groups:
        used = ", ".join(all_groups) or "none"
        return (f"the {job} job does not use the config group '{key}' (its groups: {used}); "
                f"drop {override!r}.")
    if key in all_groups:
        options = all_groups[key]
        near = difflib.get_close_matches(value, options, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        return (f"{key}={value} is not an option of the config group '{key}'.{hint} "
                f"Options: {', '.join(options)} (the YAML files in conf/{key}/).")
    base = _compose(conf, job, before)
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(base, parent_key) if parent_key else base
    if isinstance(parent, DictConfig) and leaf not in parent:
        siblings = [str(k) for k in parent]
        if not parent_key:
            siblings += [g for g in all_groups if g not in siblings]
        near = difflib.get_close_matches(leaf, siblings, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        where = f"'{parent_key}'" if parent_key else "the top level"
        return (f"unknown config key {key!r}.{hint} Keys at {where}: {', '.join(siblings)}. "
                f"See `reelforge {job} --cfg job` for the whole config.")
    if not isinstance(parent, DictConfig):
        return f"unknown config key {key!r}: {parent_key!r} is not a section of the {job} config."
    expected = _expected_type(parent, leaf)
    return (f"{key}={value!r} has the wrong type{f': expected {expected}' if expected else ''} "
            f"({_cause_line(err)}). Current value: {OmegaConf.to_yaml(parent[leaf]).strip() if OmegaConf.is_config(parent[leaf]) else parent[leaf]!r}.")


def _expected_type(parent: DictConfig, leaf: str) -> str | None:
    try:
        ref = OmegaConf.get_type(parent, leaf)
    except Exception:  # get_type raises on some union/optional nodes; the message works without it
        return None
    node = parent._get_node(leaf)
    optional = node is not None and node._is_optional()
    name = getattr(ref, "__name__", str(ref))
    return f"{name} or null" if optional else name


def _cause_line(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return _first_line(err)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _fail(job: str, message: str) -> None:
    print(f"reelforge {job}: config error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def print_job_config(conf: str, job: str, overrides: list[str], resolve: bool = False) -> None:
    cfg = _compose(conf, job, overrides)
    container = OmegaConf.to_container(cfg, resolve=resolve)
    print(OmegaConf.to_yaml(OmegaConf.create(redact(container))), end="")
