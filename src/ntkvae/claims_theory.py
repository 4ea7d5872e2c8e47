"""Claims that compare training with the infinite-width theory (F3, F4, F5, F9 and the F1 overlay).

They need the kernel files of rules/kernels.smk (results/kernels/<dataset>/<activation>.h5)
and the empirical-NTK probes in the training files (ntk/probe_index, ntk/init/<group>,
ntk/final/<group>). Until those exist for a dataset, every claim here is listed as
"not evaluated", naming what is missing.
"""

from __future__ import annotations

from .figures import kernels as K
from .figures import measures

THEORY_CLAIMS = (
    ("kernel_constancy", "the NTK stays constant in training: ||Theta_m(T) - Theta_m(0)|| / ||Theta_m(0)|| ~ m^-1/2",
     "f3_kernel_constancy"),
    ("kernel_limit", "Theta_m(0) -> Theta_inf: ||Theta_m(0) - Theta_inf|| / ||Theta_inf|| ~ m^-1/2",
     "f3_kernel_constancy"),
    ("lambda_min", "lambda_min(Theta_m) approaches lambda0 = lambda_min(Theta_inf) as m grows", "f4_rate"),
    ("rate_lambda0", "the loss follows the linearized Theta_inf trajectory (rate set by lambda0)", "f4_rate"),
    ("krr", "with Wsigma frozen the trained VAE approaches the KRR predictor as m grows", "f5_krr"),
    ("min_width", "there is a finite width above which training follows Theta_inf", "f9_min_width"),
)


def claims(runs, kernel_paths, dataset, settings):
    from .claims import NOT_EVALUATED, Claim

    kernel = K.kernel_file_for(kernel_paths, dataset)
    probed = [r for r in runs if r.dataset == dataset and r.run in settings["kernel_runs"] and K.has_probes(r)]
    missing = []
    if kernel is None:
        missing.append("kernel file results/kernels/%s/<activation>.h5" % dataset)
    if not probed:
        missing.append("NTK probes in the training files")
    if missing:
        return [Claim(key, text, dataset, f"{fig}_{dataset}", "-", "-", "-", NOT_EVALUATED,
                      "needs " + " and ".join(missing)) for key, text, fig in THEORY_CLAIMS]
    return K.evaluate_claims(probed, kernel, runs, dataset, settings, Claim, measures)
