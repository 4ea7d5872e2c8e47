"""The plan (ntkvae.plan): its job list, its counts against independent estimates, the split by seed.

The timing and memory model as a whole is checked against a real workflow's benchmark files
in tests/test_plan_workflow.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from conftest import ROOT, normalized_inputs
from ntkvae import config as C
from ntkvae import empirical_ntk as E
from ntkvae import model as M
from ntkvae import plan as P
from ntkvae.training import Settings, Trainer


def small_training(**overrides) -> P.Training:
    fields = dict(n=64, d=48, width=512, latent=512, seeds=1, steps=1, log_every=1, eval_samples=1,
                  train_sigma=False, optimizer="sgd", bias=False, probe_size=16, probe_samples=1,
                  probe_outputs=8, reconstructions=0, checkpoint_every=0)
    fields.update(overrides)
    return P.Training(**fields)


def xla_flops(fn, *args) -> float:
    """XLA's own count of a compiled function's FLOPs (every dot and elementwise op; a scan's
    body is counted once, so the scans below have length 1). Lowered with JAX's rolled threefry
    (a loop XLA does not count): the plan counts floating-point work, and XLA would count each of
    the unrolled hash's integer operations (ntkvae.threefry) as one (+8 % at width 512)."""
    from ntkvae import threefry

    try:
        threefry.use_rolled_on_cpu()
        cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    finally:
        threefry._DONE.clear()
        threefry.use_unrolled_on_cpu()
    return float((cost[0] if isinstance(cost, list) else cost)["flops"])


@pytest.fixture(scope="module")
def trainer_parts():
    x = normalized_inputs(64, 48)
    out = {}
    for train_sigma in (False, True):
        settings = Settings(steps=1, seeds=(0,), log_every=1, train_sigma=train_sigma, eval_noise_samples=1)
        trainer = Trainer(M.Architecture(), 512, settings, x)
        state = trainer.init_state()
        one = jax.tree.map(lambda a: a[0], {k: state[k] for k in ("params", "opt_state", "noise_key", "eval_key")})
        one["lane"] = jax.tree.map(lambda a: a[0], trainer._lane_arrays(state))
        out[train_sigma] = (trainer, one)
    return x, out


# Tolerance: XLA also counts the elementwise work (activations, noise, loss, update), which the
# plan counts separately in elements; at width 512 it is 2-3 % of the products' FLOPs.
FLOP_RTOL = 0.05


@pytest.mark.parametrize("train_sigma", [False, True])
def test_step_flops_match_xla(trainer_parts, train_sigma):
    _, parts = trainer_parts
    trainer, one = parts[train_sigma]
    trained = {g: v for g, v in one["params"].items() if g in trainer.trained_groups}
    frozen = {g: v for g, v in one["params"].items() if g not in trainer.trained_groups}
    measured = xla_flops(trainer._lane_step, trained, frozen, one["opt_state"], one["lane"], jnp.int32(0))
    job = small_training(train_sigma=train_sigma)
    assert measured == pytest.approx(job.forward_flops(64) + job.backward_flops(64), rel=FLOP_RTOL)


def test_evaluation_flops_match_xla(trainer_parts):
    _, parts = trainer_parts
    trainer, one = parts[False]
    measured = xla_flops(trainer._evaluate_one, one["params"], one["params"], one["noise_key"], one["eval_key"],
                         one["lane"]["kl_weight"], jnp.int32(0))
    job = small_training()
    # XLA's count leaves out the body of the draws' scan (a while loop): what it counts is the
    # encode, the first draw's decode and the training objective's decode, whose encode XLA
    # shares with the first. 8 %: the weight-change norms (5 groups) and the noise draws.
    assert measured == pytest.approx(job.encode_flops(64) + 2 * job.decode_flops(64), rel=0.08)


@pytest.mark.parametrize("probe_size,outputs", [(16, 8), (32, 4)])
def test_probe_flops_match_xla(trainer_parts, probe_size, outputs):
    x, parts = trainer_parts
    _, one = parts[False]
    coords = jnp.asarray(E.output_coordinates(48, outputs))
    xs = jnp.asarray(x[:probe_size])
    measured = float(E._theta_m_jit.lower(one["params"], xs, M.Architecture(), jax.random.PRNGKey(0), 1, coords)
                     .compile().cost_analysis()["flops"])
    job = small_training(probe_size=probe_size, probe_outputs=outputs)
    assert measured == pytest.approx(job.probe_work()[0], rel=FLOP_RTOL)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("latent", ["same", 7])
def test_state_memory_matches_the_arrays(optimizer, latent):
    """Parameters, initial copy and optimizer state: the plan's bytes are the arrays' bytes."""
    x = normalized_inputs(16, 12)
    arch = M.Architecture(latent_width=latent, bias=True)
    trainer = Trainer(arch, 24, Settings(steps=1, seeds=(0, 1, 2), optimizer=optimizer), x)
    state = trainer.init_state()
    # arrays with a seed axis (ndim > 1); Adam's step count (seeds,) is left out of the plan
    nbytes = lambda tree: sum(a.nbytes for a in jax.tree_util.tree_leaves(tree) if a.ndim > 1)
    job = small_training(n=16, d=12, width=24, latent=arch.latent_dim(24), seeds=3, optimizer=optimizer, bias=True)
    memory = job.memory()
    assert memory["parameters"] == nbytes(state["params"])
    assert memory["initial copy"] == nbytes(state["params0"])
    assert memory["optimizer"] == nbytes(state["opt_state"])


@pytest.mark.parametrize("entry", [{"name": "digits"}, {"name": "mnist5k"}, {"name": "sprites"},
                                   {"name": "sprites", "resolution": 32}, {"name": "sprites", "resolution": 16}])
def test_input_dims_match_prepared_data(entry):
    from ntkvae import datasets

    options = {"resolution": entry["resolution"]} if "resolution" in entry else {}
    raw = datasets.LOCAL_SOURCES[entry["name"]](4, 0, **options)
    assert int(np.prod(raw.images.shape[1:])) == P.input_dim(entry)


def test_unknown_dataset_dimension_is_named():
    with pytest.raises(P.PlanError, match="input dimension of dataset 'faces'"):
        P.input_dim("faces")


def summary_jobs(configfile) -> set[tuple[str, str]]:
    """(rule, output) of every job `snakemake --summary` lists (PNG, TSV and HTML companions dropped)."""
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        out = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(configfile),
                              "--directory", workdir, "--summary"], cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line.split("\t") for line in out.stdout.splitlines()[1:]]
    return {(r[2], r[0]) for r in rows if len(r) > 2 and not r[0].endswith((".png", ".tsv", ".html"))}


@pytest.mark.parametrize("configfile", ["tests/configs/tiny.yaml", "config.yaml", "configs/paper.yaml",
                                        "configs/paper-full-resolution.yaml"])
def test_jobs_are_the_workflows_jobs(configfile):
    """The plan lists exactly the jobs Snakemake would run (no split: no memory limit)."""
    config = yaml.safe_load((ROOT / configfile).read_text())
    plan = P.plan_config(config, accelerator="cpu")
    planned = set()
    for job in plan.jobs:
        spec = job.spec
        if spec.batch:      # one job, every member's file written by the batch's rule
            planned |= {(spec.batch, P.train_output(spec.dataset, run, spec.width)) for run in spec.members}
        else:
            planned.add((spec.rule, spec.output))
    assert planned == summary_jobs(ROOT / configfile)


# ---------------------------------------------------------------- the split by seed


def fake_calibration(**jobs) -> P.Calibration:
    """Round numbers instead of a measurement: the split depends only on memory."""
    base = {kind: {"seconds": 1.0, "cpu_seconds": 1.0, "rss_mb": 400.0}
            for kind in ("data", "train", "kernel", "predict", "figure", "provenance")}
    base.update(jobs)
    rates = {"matmul_flops_per_s": 1e11, "activation_element_s": 1e-9, "parameter_element_s": 1e-9, "step_s": 1e-4,
             "call_s": 1e-3, "gemm_f64_flops_per_s": 2e10, "eigh_s_per_n3": 1e-9,
             "write_bytes_per_s": 1e9, "theta_inf_entry_s": {"erf": 1e-7}, "data_example_s": {}}
    return P.Calibration({"date": "test", "machine": {}, "rates": {"wall": rates, "cpu": rates}, "jobs": base})


def tiny_config(**compute):
    config = yaml.safe_load((ROOT / "tests/configs/tiny.yaml").read_text())
    config["compute"] = dict({"accelerator": "cpu"}, **compute)
    return config


def test_no_limit_no_split():
    plan = P.plan_config(tiny_config(), calibration=fake_calibration())
    assert not [j for j in plan.jobs if j.spec.rule == "train_part"]


def need_mb(cfg, dataset, run, width, seeds=None) -> float:
    job = P.Training.from_config(cfg, dataset, run, width, seeds=seeds)
    return 400.0 + sum(job.memory().values()) / P.MB       # fake_calibration's base of a training job


def test_a_job_over_the_limit_is_split_by_seed():
    """A limit between one and two seeds of the largest job: exactly the jobs whose seeds do
    not fit together run as part jobs (one per seed here) and a merge, each part within the
    limit; the other jobs are unchanged. (Runs trained one per job: how batches are cut to
    fit is the next test.)"""
    config = tiny_config(batch_runs=False)
    cal = fake_calibration()
    cfg = P.with_figure_runs(config)
    sprites = next(d for d in cfg["datasets"] if d["name"] == "sprites")
    limit = (need_mb(cfg, sprites, "act_erf", 128, 1) + need_mb(cfg, sprites, "act_erf", 128)) / 2
    config["compute"]["memory_limit_mb"] = limit
    plan = P.plan_config(config, calibration=cal)
    unsplit = P.plan_config(tiny_config(batch_runs=False), calibration=cal)
    datasets = {d["name"]: d for d in cfg["datasets"]}
    expected_split = {j.spec.output for j in unsplit.jobs if j.spec.rule == "train"
                      and need_mb(cfg, datasets[j.spec.dataset], j.spec.run, j.spec.width) > limit}
    assert "results/train/sprites/act_erf/w128.h5" in expected_split
    assert "results/train/digits/mse/w16.h5" not in expected_split
    merges = {j.spec.output: j for j in plan.jobs if j.spec.rule == "train" and j.spec.merged}
    assert set(merges) == expected_split
    parts = [j for j in plan.jobs if j.spec.rule == "train_part"]
    assert all(j.peak_mb <= limit for j in parts)
    for output in expected_split:
        seeds = [j.spec.part for j in parts if P.train_output(j.spec.dataset, j.spec.run, j.spec.width) == output]
        assert sorted(s for part in seeds for s in part) == sorted(
            C.run_settings(cfg, merges[output].spec.run)["seeds"])
    assert len(plan.jobs) == len(unsplit.jobs) + len(parts)     # each split job: its parts, the merge in its place


def test_batches_are_cut_to_fit_the_limit():
    """With a limit between one and two members of the largest batch, every batched job fits
    (plan.batch_groups), no run is lost or trained twice, and without a limit the same runs
    train in fewer jobs."""
    cal = fake_calibration()
    free = P.plan_config(tiny_config(), calibration=cal)
    cfg = P.with_figure_runs(tiny_config())
    sprites = next(d for d in cfg["datasets"] if d["name"] == "sprites")
    one = need_mb(cfg, sprites, "kl_beta1", 128)
    two = 400.0 + sum(P.Training.batched(cfg, sprites, ["kl_beta1", "kl_beta3"], 128).memory().values()) / P.MB
    limited = P.plan_config(tiny_config(memory_limit_mb=(one + two) / 2), calibration=cal)

    def trained(plan):
        return sorted(P.train_output(j.spec.dataset, r, j.spec.width) for j in plan.jobs
                      if j.spec.rule == "train" and not j.spec.merged for r in j.spec.runs) + sorted(
            j.spec.output for j in plan.jobs if j.spec.rule == "train" and j.spec.merged)

    assert trained(free) == trained(limited)
    batched = [j for j in limited.jobs if j.spec.rule == "train" and len(j.spec.runs) > 1]
    assert all(j.peak_mb <= (one + two) / 2 for j in batched)
    count = lambda plan: sum(j.spec.rule == "train" for j in plan.jobs)
    assert count(free) < count(limited)


def test_parts_are_balanced():
    config = yaml.safe_load((ROOT / "configs/paper-full-resolution.yaml").read_text())
    config["compute"] = {"accelerator": "gpu", "gpu": "h100-sxm"}
    cfg = P.with_figure_runs(config)
    cars = next(d for d in cfg["datasets"] if d["name"] == "cars3d")
    device = P.Device.from_config(cfg)
    parts = P.train_parts(cfg, cars, "mse", 16384, device, fake_calibration())
    # Three seeds of cars3d at m = 16384 do not fit an H100 beside the stability check's six flat
    # vectors per seed (plan.Training.memory): 5 seeds in three parts, as even as they go.
    assert parts == [(0, 1), (2, 3), (4,)]


def test_a_seed_that_cannot_fit_is_refused_with_the_numbers():
    config = tiny_config(memory_limit_mb=401)
    with pytest.raises(P.PlanError) as err:
        P.plan_config(config, calibration=fake_calibration())
    message = str(err.value)
    assert "one seed needs" in message and "401 MB" in message
    assert "compute.memory_limit_mb" in message and "widths" in message


def test_gpu_limit_is_the_cards_memory():
    config = tiny_config()
    config["compute"] = {"accelerator": "gpu", "gpu": "a100-40gb"}
    device = P.Device.from_config(config)
    assert device.limit_mb == pytest.approx(40e3 - P.GPU_RESERVED_MB)
    assert device.gpu.name == "a100-40gb"


def test_request_grows_with_the_attempt():
    first, second = P.request(1000, 600, 1), P.request(1000, 600, 2)
    assert first == {"mem_mb": 1500, "runtime": 20}
    assert second == {"mem_mb": 2250, "runtime": 40}


def test_threads_follow_the_share_of_arithmetic():
    """A job whose planned arithmetic is below its start-up claims one thread, the others
    JOB_THREADS; on the GPU path every job claims JOB_THREADS."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["compute"] = {"accelerator": "cpu"}
    # start-up 20 CPU-s; matmuls at 1e11 flop/s: the narrow run's arithmetic is well under a
    # second, a 4096-wide theorem run's hundreds of seconds
    cal = fake_calibration(train={"seconds": 20.0, "cpu_seconds": 20.0, "rss_mb": 400.0})
    plan = P.plan_config(config, calibration=cal)
    by_run = {(j.spec.run, j.spec.width): j for j in plan.jobs if j.spec.rule == "train" and j.spec.dataset == "mnist5k"}
    narrow, wide = by_run[("narrow", 16)], by_run[("thm_mse", 4096)]
    assert narrow.arithmetic_cpu_time_s < 20.0 < wide.arithmetic_cpu_time_s
    assert P.job_threads(narrow) == 1 and P.job_threads(wide) == P.JOB_THREADS
    # the same job with a start-up above its arithmetic claims one thread
    slow_start = fake_calibration(train={"seconds": 1e5, "cpu_seconds": 1e5, "rss_mb": 400.0})
    wide_slow = [j for j in P.plan_config(config, calibration=slow_start).jobs
                 if j.spec.rule == "train" and (j.spec.dataset, j.spec.run, j.spec.width) == ("mnist5k", "thm_mse", 4096)]
    assert P.job_threads(wide_slow[0]) == 1
    gpu = P.plan_config(dict(config, compute={"accelerator": "gpu", "gpu": "h100-sxm"}), calibration=cal)
    assert {P.job_threads(j) for j in gpu.jobs if j.resources.get("gpu")} == {P.JOB_THREADS}


def test_workflow_jobs_claim_the_planned_threads(tmp_path):
    """Snakemake's dry run gives each training and kernel job the threads of its plan."""
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--directory", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    plan = P.plan_for_workflow(config)
    claimed, rule = {}, None
    for line in (out.stdout + out.stderr).splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule, output = line.split()[1].rstrip(":"), None
        elif rule and line.startswith("    output: "):
            output = line.split(": ", 1)[1].split(", ")[0]
            if rule in ("train", "kernel") or rule.startswith("train_batch"):
                claimed[output] = 1                     # Snakemake prints threads only above 1
        elif rule and line.startswith("    threads: ") and output in claimed:
            claimed[output] = int(line.split()[-1])
    assert len(claimed) > 20
    planned = {}
    for job in plan.jobs:
        if job.spec.rule in ("train", "kernel"):
            output = (P.train_output(job.spec.dataset, job.spec.members[0], job.spec.width) if job.spec.batch
                      else job.spec.output)
            planned[output] = P.job_threads(job)
    common = set(claimed) & set(planned)
    assert common == set(claimed)
    assert {o: claimed[o] for o in common} == {o: planned[o] for o in common}
    assert set(claimed.values()) == {1, 2}


def test_cli_prints_totals(tmp_path):
    cal = tmp_path / "cal.json"
    cal.write_text(json.dumps(fake_calibration().data))
    out = subprocess.run([sys.executable, "-m", "ntkvae.plan", "--config", str(ROOT / "tests/configs/tiny.yaml"),
                          "--calibration", str(cal), "--jobs", "train"], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"},
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "per rule" in out.stdout and "per dataset" in out.stdout and "whole config" in out.stdout
    assert "digits/mse/w16" in out.stdout and "kernel " not in out.stdout.split("per rule")[0]


# ---------------------------------------------------------------- batched jobs (several runs' members)


def test_batched_job_is_its_members_lanes():
    """A job training several runs of one width (the engine's members) does each member's
    work and holds each member's arrays: the counts add over lanes (one lane's arithmetic
    does not depend on which lanes share its step); Wsigma is differentiated for every lane
    when one member trains it."""
    cfg = P.with_figure_runs(tiny_config())
    digits = cfg["datasets"][0]
    runs = ["kl_beta0p3", "kl_beta1", "kl_sigma_trained"]
    batched = P.Training.batched(cfg, digits, runs, 32)
    members = [P.Training.from_config(cfg, digits, run, 32) for run in runs]
    assert batched.seeds == sum(m.seeds for m in members)
    assert batched.train_sigma
    lanes_as_sigma = [P.dataclasses.replace(m, train_sigma=True) for m in members]
    for key in ("flops32", "activations", "parameters"):
        assert batched.work().total(key) == pytest.approx(sum(m.work().total(key) for m in lanes_as_sigma))
    # The per-lane arrays add; the probes run one seed at a time (their extra is not per lane).
    for kind in ("parameters", "initial copy", "gradients", "update", "optimizer", "activations"):
        assert batched.memory()[kind] == pytest.approx(sum(m.memory()[kind] for m in lanes_as_sigma)), kind
    # Steps and calls are per job, not per lane: one scanned step serves every lane.
    assert batched.work().total("steps") == members[0].work().total("steps")
    assert P.Training.from_config(cfg, digits, runs, 32) == batched


def test_runs_of_other_shapes_do_not_batch():
    cfg = P.with_figure_runs(tiny_config())
    digits = cfg["datasets"][0]
    with pytest.raises(P.PlanError, match="differ in steps"):   # the sweep's 150 steps against 20
        P.Training.batched(cfg, digits, ["mse", "kl_beta1"], 16)


def test_batch_groups_fill_the_limit_in_order():
    """Members join a batched job while it fits; the limit here holds two members' lanes, not three."""
    cfg = P.with_figure_runs(tiny_config())
    digits = cfg["datasets"][0]
    cal = fake_calibration()
    runs = ["kl_beta0p3", "kl_beta1", "kl_beta3", "kl_beta10"]
    two = P.Training.batched(cfg, digits, runs[:2], 32)
    three = P.Training.batched(cfg, digits, runs[:3], 32)
    limit = (P.training_device_mb(two, P.Device("cpu", None, None, ""), cal)
             + P.training_device_mb(three, P.Device("cpu", None, None, ""), cal)) / 2
    device = P.Device("cpu", None, limit, "test")
    assert P.batch_groups(cfg, digits, runs, 32, device, cal) == [tuple(runs[:2]), tuple(runs[2:])]
    assert P.batch_groups(cfg, digits, runs, 32, P.Device("cpu", None, None, ""), cal) == [tuple(runs)]


def test_a_batched_job_is_planned_with_its_lanes_or_refused():
    cfg = P.with_figure_runs(tiny_config())
    cal = fake_calibration()
    runs = ("kl_beta0p3", "kl_beta1")
    spec = P.JobSpec("train", P.train_output("digits", runs[0], 32), dataset="digits", run=runs[0], width=32,
                     members=runs)
    job = P.plan_config(cfg, calibration=cal, specs=[spec]).jobs[0]
    assert job.seeds == 4 and "batched" in job.note
    alone = P.plan_config(cfg, calibration=cal, specs=[P.dataclasses.replace(spec, members=())]).jobs[0]
    assert job.work.flops == pytest.approx(2 * alone.work.flops)
    small = dict(cfg, compute={"accelerator": "cpu", "memory_limit_mb": (job.peak_mb + alone.peak_mb) / 2})
    with pytest.raises(P.PlanError, match="batch_groups"):
        P.plan_config(small, calibration=cal, specs=[spec])


# ---------------------------------------------------------------- regime numbers and the docs' cost section


def test_run_regime_counts_the_examples_a_run_trains_on():
    config = yaml.safe_load((ROOT / "tests/configs/tiny.yaml").read_text())
    config["theorems"] = {"enabled": True, "examples": 8, "widths": [16, 64], "kl": {"widths": [16], "betas": [0.5],
                                                                                    "kl_scalings": ["inv_width"]}}
    cfg = P.with_figure_runs(config)
    r = P.run_regime(cfg, "thm_mse")
    s = C.run_settings(cfg, "thm_mse")
    assert r["m/n"] == 64 / 8                       # the first 8 examples, not n = 32
    assert r["m/d"] == 64 / 4096                    # sprites' d, the least favourable
    assert r["eta T/m"] == pytest.approx(s["learning_rate"] * s["steps"] / 64)
    kl = P.run_regime(cfg, "thm_kl_inv_width_b0p5")
    k = C.run_settings(cfg, "thm_kl_inv_width_b0p5")
    assert kl["beta c eta T"] == pytest.approx(0.5 / 16 * k["learning_rate"] * k["steps"])
    assert "beta c eta T" not in r


def test_docs_cost_section_is_the_plans_output():
    """docs/figures.md's costs of configs/paper.yaml and configs/paper-full-resolution.yaml are what
    `python -m ntkvae.plan --cost` prints for the committed configs; regenerate with `python -m ntkvae.plan --update-docs docs/figures.md`."""
    import re

    text = (ROOT / "docs/figures.md").read_text()
    blocks = re.findall(r"<!-- generated by: python -m ntkvae.plan --cost --config (\S+) -->.*?"
                        + re.escape(P.DOC_END), text, re.S)
    assert blocks == ["configs/paper.yaml", "configs/paper-full-resolution.yaml"]
    for name in blocks:
        block = re.search(re.escape(P.DOC_BEGIN.format(config=name)) + ".*?" + re.escape(P.DOC_END),
                          text, re.S).group(0)
        config = yaml.safe_load((ROOT / name).read_text())
        assert block == P.cost_markdown(config, name), \
            f"docs/figures.md is stale for {name}: run python -m ntkvae.plan --update-docs docs/figures.md"


def test_cost_section_says_when_a_config_is_refused():
    config = tiny_config()
    config["model"]["widths"] = [16, 131072]      # one seed: ~4 x 3 m^2 float32 > 80 GB
    text = P.cost_markdown(config, "x.yaml", fake_calibration())
    assert "refuses this config" in text and "one seed needs" in text
