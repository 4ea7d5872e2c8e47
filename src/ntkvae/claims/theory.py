"""Claims that compare training with the infinite-width theory (F3, F4, F5, F9).

They need the kernel files of rules/kernels.smk (results/kernels/<dataset>/<activation>.h5),
the dataset files (targets Y = X) and the empirical-NTK probes in the training files
(ntk/probe_index, ntk/init/<group>, ntk/final/<group>); ntkvae.results.kernels documents the
layout and the linearized prediction. Where these are missing every claim here is listed as
"not evaluated", naming what is missing.
"""

from __future__ import annotations

import numpy as np

from ..results import kernels as K
from ..results import measures
from ..results.runs import divergence_note, usable
from .table import NOT_EVALUATED, Claim, diverged, judged, with_note

THEORY_CLAIMS = (
    ("kernel_constancy", "the NTK stays constant in training: ||Theta_m(T) - Theta_m(0)|| / ||Theta_m(0)|| = O(m^-1/2)",
     "f3_kernel_constancy"),
    ("kernel_limit", "Theta_m(0) -> Theta_inf: ||Theta_m(0) - Theta_inf|| / ||Theta_inf|| ~ m^-1/2",
     "f3_kernel_constancy"),
    ("lambda_min", "lambda_min(Theta_m) approaches lambda0 = lambda_min(Theta_inf) as m grows", "f4_rate"),
    ("rate_lambda0", "the residual follows the linearized Theta_inf trajectory (rate set by lambda0)", "f4_rate"),
    ("krr", "with Wsigma frozen the trained VAE approaches the kernel (KRR) predictor as m grows, for every beta",
     "f5_krr"),
    ("min_width", "a finite width exists above which training follows Theta_inf", "f9_min_width"),
)


def claims(runs, kernel_paths, dataset, settings, data_paths=()):
    data = next((p for p in data_paths if K.pathlib.Path(p).stem == dataset), None)
    kernel_runs = [r for r in runs if r.dataset == dataset and r.run in settings["kernel_runs"]]
    note = divergence_note(kernel_runs)   # diverged seeds are left out of every measure below
    probed = [r for r in usable(kernel_runs) if K.has_probes(r)]
    if note and not probed:
        return [diverged(key, text, dataset, f"{fig}_{dataset}", note) for key, text, fig in THEORY_CLAIMS]
    kernel_path = K.kernel_file_for(kernel_paths, dataset, probed[0].model["activation"] if probed else None)
    missing = []
    if kernel_path is None:
        missing.append(f"kernel file results/kernels/{dataset}/<activation>.h5")
    if not probed:
        missing.append("NTK probes in the training files")
    if data is None:
        missing.append(f"dataset file results/data/{dataset}.h5")
    if missing:
        return [Claim(key, text, dataset, f"{fig}_{dataset}", "-", "-", "-", NOT_EVALUATED,
                      "needs " + " and ".join(missing)) for key, text, fig in THEORY_CLAIMS]
    kernel, y = K.Kernel(kernel_path), K.data_targets(data)
    tol = settings["claims"]
    text = {key: (statement, f"{fig}_{dataset}") for key, statement, fig in THEORY_CLAIMS}

    def row(key, measured, predicted, tolerance, ok, detail="", note=note):
        statement, figure = text[key]
        return Claim(key, statement, dataset, figure, measured, predicted, tolerance,
                     NOT_EVALUATED if ok is None else judged(ok, note), with_note(detail, note))

    out = []
    name = settings["kernel_runs"][0]
    wide_runs = sorted((r for r in probed if r.run == name), key=lambda r: r.width)
    widths = np.array([r.width for r in wide_runs])
    detail = f"run {name}, widths {widths.min()}..{widths.max()}"
    if len(widths) >= 2:
        change = [measures.geometric_mean(K.kernel_change(r)) for r in wide_runs]
        slope = measures.loglog_slope(widths, change)
        out.append(row("kernel_constancy", f"slope {slope:+.3f}", "slope <= -0.5", f"+{tol['slope_tolerance']:g}",
                       slope <= -0.5 + tol["slope_tolerance"], f"{detail}; change at widest {change[-1]:.3g}"))
        limit = [measures.geometric_mean(K.distance_to_limit(r, kernel)) for r in wide_runs]
        slope = measures.loglog_slope(widths, limit)
        out.append(row("kernel_limit", f"slope {slope:+.3f}", "slope -0.5", f"±{tol['slope_tolerance']:g}",
                       abs(slope + 0.5) <= tol["slope_tolerance"], f"{detail}; distance at widest {limit[-1]:.3g}"))
    else:
        out += [row(k, "-", "-", "-", None, "needs at least two widths") for k in ("kernel_constancy", "kernel_limit")]
    widest = wide_runs[-1]
    lam_m = float(np.mean(K.lambda_min(widest.data["ntk"]["init"]["total"])))
    lam_inf = float(K.lambda_min(kernel.probe_block(widest.data["ntk"]["probe_index"])))
    rel = abs(lam_m - lam_inf) / lam_inf
    out.append(row("lambda_min", f"{lam_m:.4g} (rel. error {rel:.3g})", f"{lam_inf:.4g}",
                   f"{tol['ratio_tolerance']:g} relative", rel <= tol["ratio_tolerance"],
                   f"m = {widest.width}, probe points"))
    predicted = K.linearized_curve(widest, kernel, kernel_paths, y)
    distance = K.curve_distance(measures.geometric_mean(widest.data["eval"]["mean_function_mse"]), predicted)
    out.append(row("rate_lambda0", f"RMS log ratio {distance:.3g}", "0 (on the linearized curve)",
                   f"{tol['ratio_tolerance']:g}", distance <= tol["ratio_tolerance"],
                   f"m = {widest.width}; {kernel.kernel_kind} lambda_min = {kernel.rate_lambda():.4g}"))
    out.append(krr_claim(runs, kernel, y, dataset, settings, row))
    dist = [K.curve_distance(measures.geometric_mean(r.data["eval"]["mean_function_mse"]),
                             K.linearized_curve(r, kernel, kernel_paths, y))
            for r in wide_runs]
    ok = np.asarray(dist) <= settings["min_width_tolerance"]
    m_min = next((int(widths[i]) for i in range(len(widths)) if ok[i:].all()), None)
    guess = measures.extrapolated_width(widths, np.asarray(dist), settings["min_width_tolerance"])
    if m_min is None and guess:
        detail += f"; power-law extrapolation reaches the tolerance at m = {guess:.3g}"
    out.append(row("min_width", f"minimum width {m_min if m_min else '> ' + str(widths.max())}",
                   f"exists at or below {widths.max()}", f"curve distance {settings['min_width_tolerance']:g}",
                   m_min is not None, f"{detail}; distances " + ", ".join(f"{d:.3g}" for d in dist)))
    return out


def krr_claim(runs, kernel, y, dataset, settings, row):
    every = [r for r in runs if r.dataset == dataset and r.run in settings.get("kl_runs", [])]
    note, sweep = divergence_note(every), usable(every)
    if len({r.width for r in every}) < 2:
        return row("krr", "-", "-", "-", None, "needs the beta sweep at two or more widths", note=note)
    if len({r.width for r in sweep}) < 2:
        return row("krr", "diverged", "-", "-", False, "fewer than two widths left", note=note)
    parts, ok = [], True
    for run in sorted({r.run for r in sweep}):
        at = sorted((r for r in sweep if r.run == run), key=lambda r: r.width)
        dist = [measures.geometric_mean(K.distance_to_predictor(r, kernel, y)) for r in at]
        ok &= bool(dist[-1] < dist[0])
        parts.append(f"beta {at[0].settings['beta']:g}: {dist[0]:.3g} -> {dist[-1]:.3g}")
    widths = sorted({r.width for r in sweep})
    return row("krr", "; ".join(parts), "distance decreases with width for every beta", "none", ok,
               f"widths {widths[0]}..{widths[-1]}", note=note)
