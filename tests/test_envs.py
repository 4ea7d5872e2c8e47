"""Conda environments, checked without conda (its channels cannot be reached here): every
rule names an env that exists, every package in every env is pinned exactly, the pins agree
with requirements.lock (the venv the tests and CI run with), and `snakemake --lint` is clean.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import subprocess
import sys

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))
CONDA_PIN = re.compile(r"^[A-Za-z0-9_.\-]+=[0-9][A-Za-z0-9_.+\-]*$")  # name=1.2.3, no wildcards or ranges
PIP_PIN = re.compile(r"^[A-Za-z0-9_.\-]+(\[[A-Za-z0-9_,\-]+\])?==[0-9][A-Za-z0-9_.+\-]*$")


def _lock_tool():
    spec = importlib.util.spec_from_file_location("lock", ROOT / "tools" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def env_spec(path: pathlib.Path) -> tuple[list[str], list[str], list[str]]:
    """(channels, conda dependencies, pip requirements) of one env file."""
    spec = yaml.safe_load(path.read_text())
    conda, pip = [], []
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            pip += dep["pip"]
        else:
            conda.append(dep)
    return spec["channels"], conda, pip


def workflow_rules(accelerator: str):
    """The workflow's rules as Snakemake parses them, for one compute.accelerator."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        wf = api.workflow(resource_settings=ResourceSettings(),
                          config_settings=ConfigSettings(config={"compute": {"accelerator": accelerator}}),
                          snakefile=ROOT / "Snakefile", workdir=ROOT)
        return list(wf._workflow.rules)


def test_env_files_exist():
    names = {p.stem for p in ENV_FILES}
    assert {"jax-cpu", "jax-gpu", "plot"} <= names, names


@pytest.mark.parametrize("accelerator", ["cpu", "gpu"])
def test_every_rule_names_an_existing_env(accelerator):
    rules = workflow_rules(accelerator)
    commands = [r for r in rules if r.is_shell or r.is_run or r.is_script or r.is_notebook or r.is_wrapper]
    assert commands, "no rules found"
    for rule in commands:
        assert rule.conda_env, f"rule {rule.name} names no conda env"
        env = (pathlib.Path(rule.snakefile).parent / rule.conda_env).resolve()
        assert env.is_file() and env.parent == ROOT / "envs", f"rule {rule.name}: {rule.conda_env}"
    train = next(r for r in rules if r.name == "train")
    assert pathlib.Path(train.conda_env).name == f"jax-{accelerator}.yaml"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_is_pinned_exactly_from_conda_forge(path):
    channels, conda, pip = env_spec(path)
    assert channels == ["conda-forge", "nodefaults"], channels
    for dep in conda:
        assert CONDA_PIN.match(dep), f"{path.name}: conda package {dep!r} is not pinned to one version"
    for dep in pip:
        assert PIP_PIN.match(dep), f"{path.name}: pip requirement {dep!r} is not pinned with =="


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_agree_with_lock(path):
    lock = read_lock()
    lock_python = re.search(r"Python (\d+\.\d+\.\d+)", (ROOT / "requirements.lock").read_text()).group(1)
    _, conda, pip = env_spec(path)
    assert f"python={lock_python}" in conda, f"{path.name}: python pin differs from the lock's {lock_python}"
    for dep in pip:
        req = Requirement(dep)
        name = canonicalize_name(req.name)
        assert name in lock, f"{path.name}: {req.name} is not in requirements.lock"
        assert str(req.specifier) == f"=={lock[name]}", f"{path.name}: {dep} but the lock has {lock[name]}"


def test_generated_envs_hold_their_whole_dependency_closure():
    """Each env written by tools/lock.py pins its direct needs and everything they pull in,
    so pip inside the env has nothing left to choose."""
    lock_tool = _lock_tool()
    for name, (_, direct, _) in lock_tool.ENVS.items():
        _, _, pip = env_spec(ROOT / "envs" / f"{name}.yaml")
        pinned = {canonicalize_name(Requirement(d).name) for d in pip}
        missing = lock_tool.closure(direct) - pinned
        assert not missing, f"envs/{name}.yaml lacks {sorted(missing)}; run python tools/lock.py"


def test_this_venv_is_what_the_lock_pins():
    """Every package the tests run with is in requirements.lock at exactly its version (CI
    installs with the lock as constraints; regenerate it with python tools/lock.py)."""
    installed = {n: v for n, (_, v) in _lock_tool().freeze().items()}
    lock = read_lock()
    differ = {n: (lock.get(n), v) for n, v in installed.items() if lock.get(n) != v}
    assert not differ, f"package: (lock, installed) {differ}; run python tools/lock.py"


@pytest.mark.parametrize("accelerator", ["cpu", "gpu"])
def test_lint_is_clean(accelerator):
    run = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--config",
                          f"compute={{accelerator: {accelerator}}}"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0 and "Congratulations" in run.stdout + run.stderr, run.stdout + run.stderr
