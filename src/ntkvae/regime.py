"""The numbers that say whether a theorem's assumptions held in a run (numpy/JAX-free).

Every claim row carries them (docs/figures.md, "Regime"):
  m/n          hidden width over the number of training examples (the theorems need m >> n);
  m/d          width over input dimension (the features move by O(sqrt(d/m)): laziness needs m >> d);
  eta T/m      training horizon over width: the finite-width deviation from the linearized
               dynamics (and the drift of the noise floor under fresh noise) grows with it;
  beta c eta T the KL's cumulative pull on the latent means, beta c(m_z) eta T: where it is << 1
               the KL term drops out of the dynamics, where it is >~ 1 it acts as a ridge that
               grows with training time (the limits m -> inf and t -> inf do not commute);
  lr/limit     the learning rate over the finite-width stability limit of gradient descent,
               2 / lambda_max(Hessian) measured at initialization by the training job.
"""

from __future__ import annotations

import math

# c(m_z), the KL's normalization (SPEC: 1, 1/sqrt(m_z), 1/m_z).
KL_SCALINGS = ("one", "inv_sqrt_width", "inv_width")


def kl_scale(kl_scaling: str, latent_dim: int) -> float:
    """c(m_z): 1, 1/sqrt(m_z) or 1/m_z."""
    if kl_scaling == "one":
        return 1.0
    if kl_scaling == "inv_sqrt_width":
        return float(latent_dim) ** -0.5
    if kl_scaling == "inv_width":
        return 1.0 / float(latent_dim)
    raise ValueError(f"kl_scaling must be one of {KL_SCALINGS}, got {kl_scaling!r}")


def kl_drift(beta: float, kl_scaling: str, latent_dim: int, learning_rate: float, steps: float) -> float:
    """beta c(m_z) eta T (0 for a run without the KL term, beta = 0)."""
    return float(beta) * kl_scale(kl_scaling, latent_dim) * float(learning_rate) * float(steps)


def numbers(*, width: int, n: int, d: int, learning_rate: float, steps: float, objective: str = "mse",
            beta: float = 0.0, kl_scaling: str = "inv_sqrt_width", latent_dim: int | None = None,
            lr_over_limit: float | None = None) -> dict[str, float]:
    """The regime numbers of one run at one width (see the module docstring)."""
    out = {"m/n": width / n, "m/d": width / d, "eta T/m": learning_rate * steps / width}
    if objective == "vae":
        out["beta c eta T"] = kl_drift(beta, kl_scaling, latent_dim or width, learning_rate, steps)
    out["lr/limit"] = float("nan") if lr_over_limit is None else float(lr_over_limit)
    return out


def describe(ranges: dict[str, tuple[float, float]]) -> str:
    """'m/n 8-128, m/d 0.33-5.2, ...' from {name: (low, high)} (a single value when they agree)."""
    parts = []
    for name, (low, high) in ranges.items():
        if not (math.isfinite(low) and math.isfinite(high)):
            parts.append(f"{name} not measured")
        elif math.isclose(low, high, rel_tol=1e-9):
            parts.append(f"{name} {low:.3g}")
        else:
            parts.append(f"{name} {low:.3g}–{high:.3g}")
    return ", ".join(parts)
