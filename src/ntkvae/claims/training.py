"""Claims measured on training runs alone: convergence, beta, narrow vs wide, activations (F1, F6, F7, F10).

Each verdict comes from an interval over seeds (ntkvae.results.stats): the per-seed values are in
claims.tsv's detail, so a reader can see when the seeds disagree.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..results import measures, stats
from ..results.runs import divergence_note, regime_text
from .table import EXPERIMENTS, FAILS, TRAINED_AS_VAES, Claim, measured_claim, not_evaluated, runs_of


def diverged_claim(key, statement, dataset, figure, run, predicted, tolerance) -> Claim:
    """A convergence claim on a run with a recorded divergence: it fails, naming the seeds and steps."""
    where = ", ".join(f"seed {s} at step {t}" for s, t in sorted(run.diverged.items(), key=lambda i: int(i[0])))
    return Claim(key, EXPERIMENTS, TRAINED_AS_VAES, statement, dataset, figure, FAILS, f"diverged ({where})", predicted,
                 tolerance, "a divergence is a failure to converge", regime_text([run]),
                 f"m = {run.width}, lr {run.settings['learning_rate']:g} (recorded divergence)")


def convergence_claims(runs, dataset, settings) -> list[Claim]:
    """The noise-averaged residual of the widest network decreases at every logged step (F1)."""
    out = []
    figure = f"f1_convergence_{dataset}"
    for name in settings["convergence_runs"]:
        group = runs_of(runs, dataset, [name])
        statement = f"gradient descent converges: the noise-averaged residual decreases at every logged step (run {name})"
        if not group:
            out.append(not_evaluated("convergence", EXPERIMENTS, TRAINED_AS_VAES, statement, dataset, figure,
                                     "run missing"))
            continue
        widest = group[-1]
        if widest.diverged:
            out.append(diverged_claim("convergence", statement, dataset, figure, widest,
                                      "every logged step decreases", "all seeds 100%"))
            continue
        curves = np.asarray(widest.data["eval"]["mean_function_mse"], float)
        fraction = np.where(measures.finite_seeds(widest), np.mean(np.diff(curves, axis=1) < 0, axis=1), np.nan)
        est = stats.seed_range(fraction)
        est = stats.Estimate(float(np.nanmin(fraction)), est.low, est.high, est.per_seed, est.method)
        ratio = curves[:, -1] / curves[:, 0]
        out.append(measured_claim(
            "convergence", EXPERIMENTS, TRAINED_AS_VAES, statement, dataset, figure, est, (1.0, 1.0),
            predicted="every logged step decreases", tolerance="all seeds 100%",
            reason="a monotone decrease is the claim itself; no allowance", regime=regime_text([widest]),
            prefix="fraction decreasing (worst seed) ", fmt=".0%",
            detail=f"m = {widest.width}; L(T)/L(0) per seed " + ", ".join(f"{v:.3g}" for v in ratio)))
    return out


def beta_claims(runs, dataset, settings) -> list[Claim]:
    """KL regularization: larger beta, smaller KL and larger reconstruction error, per seed (F6)."""
    rho = settings["claims"]["rank_correlation"]
    figure = f"f6_kl_beta_{dataset}"
    sweep = runs_of(runs, dataset, settings["kl_runs"])
    texts = {"beta_kl": "KL acts as a regularizer: larger beta lowers the final KL",
             "beta_residual": "KL acts as a regularizer: larger beta raises the reconstruction residual"}
    if not sweep:
        return [not_evaluated(k, EXPERIMENTS, TRAINED_AS_VAES, t, dataset, figure, "no beta sweep (figures.kl_betas "
                              "is empty)") for k, t in texts.items()]
    widest = max(r.width for r in sweep)
    at = sorted((r for r in sweep if r.width == widest), key=lambda r: r.settings["beta"])
    betas = np.array([r.settings["beta"] for r in at])
    detail = f"m = {widest}, beta = {', '.join(f'{b:g}' for b in betas)}"
    if len(betas) < 3:
        return [not_evaluated(k, EXPERIMENTS, TRAINED_AS_VAES, t, dataset, figure,
                              f"a rank correlation needs at least 3 beta values ({detail})") for k, t in texts.items()]
    out = []
    # Rank correlations take a few exact values (0.8 = one adjacent swap among 4 betas); the
    # band allows for floating-point rounding of those values. One-sided: a Student-t interval
    # of correlations near +1 reaches past 1, which is no reason to doubt them.
    band = rho - 1e-9
    for key, field, sign in (("beta_kl", "kl", -1), ("beta_residual", "mean_function_mse", +1)):
        values = np.stack([measures.final(r.data["eval"][field]) for r in at], axis=1)     # (seeds, betas)
        ok = np.all(np.stack([measures.finite_seeds(r) for r in at], axis=1), axis=1)
        per_seed = np.array([measures.spearman(betas, v) if good else np.nan for v, good in zip(values, ok)])
        out.append(measured_claim(
            key, EXPERIMENTS, TRAINED_AS_VAES, texts[key], dataset, figure, stats.mean_interval(per_seed),
            (band, math.inf) if sign > 0 else (-math.inf, -band), predicted=f"Spearman {sign:+d}",
            tolerance=f"{'>=' if sign > 0 else '<='} {sign * rho:+.2g}",
            reason=f"{rho:g} allows one adjacent pair of the {len(betas)} betas to swap under seed noise",
            regime=regime_text(at), prefix="Spearman ", fmt="+.2f",
            detail=detail + "; per seed " + ", ".join(f"{v:+.2f}" for v in per_seed) + "; mean " +
                   ", ".join(f"{v:.3g}" for v in np.nanmean(values, axis=0)) +
                   (f"; {divergence_note(at)}" if divergence_note(at) else "")))
    return out


def narrow_wide_claims(runs, dataset, settings) -> list[Claim]:
    """Over-parameterization helps: the widest model ends below the narrow one, seed by seed (F7)."""
    figure = f"f7_narrow_wide_{dataset}"
    narrow = runs_of(runs, dataset, ["narrow"])
    wide = runs_of(runs, dataset, [settings["wide_run"]])
    statement = "the over-parameterized VAE reaches a lower residual than a narrow one"
    if not narrow or not wide:
        return [not_evaluated("narrow_vs_wide", EXPERIMENTS, TRAINED_AS_VAES, statement, dataset, figure,
                              "runs missing")]
    n_res = np.where(measures.finite_seeds(narrow[0]), measures.final(narrow[0].data["eval"]["mean_function_mse"]),
                     np.nan)
    w_res = np.where(measures.finite_seeds(wide[-1]), measures.final(wide[-1].data["eval"]["mean_function_mse"]),
                     np.nan)
    return [measured_claim(
        "narrow_vs_wide", EXPERIMENTS, TRAINED_AS_VAES, statement, dataset, figure,
        stats.mean_interval(w_res / n_res), (-math.inf, 1.0), predicted="ratio < 1", tolerance="< 1",
        reason="the claim is an ordering; no allowance", regime=regime_text([narrow[0], wide[-1]]),
        prefix="residual ratio wide/narrow ",
        detail=f"narrow m = {narrow[0].width}: {np.nanmean(n_res):.3g}; wide m = {wide[-1].width}: {np.nanmean(w_res):.3g}"
               + (f"; {divergence_note([narrow[0], wide[-1]])}" if divergence_note([narrow[0], wide[-1]]) else ""))]


def activation_claims(runs, dataset, settings) -> list[Claim]:
    """Each activation trains: the residual falls at the widest activation width, every seed (F10)."""
    figure = f"f10_activations_{dataset}"
    names = [f"act_{a}" for a in settings["activations"]]
    sweep = runs_of(runs, dataset, names)
    if not sweep:
        return [not_evaluated("activations", EXPERIMENTS, TRAINED_AS_VAES, "every activation converges", dataset,
                              figure, "no activation sweep (figures.activations is empty)")]
    out = []
    for name in names:
        at = [r for r in sweep if r.run == name]
        if not at:
            out.append(not_evaluated("activations", EXPERIMENTS, TRAINED_AS_VAES,
                                     f"gradient descent converges with activation {name.removeprefix('act_')}",
                                     dataset, figure, "run missing"))
            continue
        r = max(at, key=lambda r: r.width)
        activation = r.model["activation"]
        statement = f"gradient descent converges with activation {activation}"
        curves = np.asarray(r.data["eval"]["mean_function_mse"], float)
        ratio = np.where(measures.finite_seeds(r), curves[:, -1] / curves[:, 0], np.nan)
        if r.diverged:
            out.append(diverged_claim("activations", statement, dataset, figure, r, "L(T)/L(0) < 1", "every seed"))
            continue
        out.append(measured_claim(
            "activations", EXPERIMENTS, TRAINED_AS_VAES, statement, dataset, figure, stats.seed_range(ratio),
            (-math.inf, 1.0), predicted="L(T)/L(0) < 1", tolerance="every seed < 1", reason="the claim is convergence; "
            "no allowance", regime=regime_text([r]), prefix="L(T)/L(0) (worst seed) ",
            detail=f"m = {r.width}; late rate per seed " +
                   ", ".join(f"{measures.decay_rate(r.data['eval']['step'], c):.2g}" for c in curves)))
    return out


TRAINING_CLAIMS: tuple[Callable, ...] = (convergence_claims, beta_claims, narrow_wide_claims, activation_claims)
