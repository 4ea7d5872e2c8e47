"""The infinite-width stochastic NTK Theta_inf of the VAE, float64 (derivations: docs/theory.md, section 3).

`theta_inf(x1, x2=None, arch=...)` per parameter group and summed, per output coordinate, and
`noise_diagonal(x, arch)`, what the same noise adds on the diagonal. In three parts:

* `gaussian`: E[phi phi] and E[phi' phi'] of a Gaussian pair: erf and relu closed forms,
  Gauss-Hermite quadrature for any other activation, the polar rule that checks relu,
  `fast_asin`;
* `layers`: the recursion layer by layer, named as in model.py (`h1`, `mu_s`, `z`, `h3`,
  `xhat`), each layer's NNGP and NTK rule in one function;
* `grid` and `evaluate`: the cosine grid (Chebyshev series in the cosine, with its slope in
  the input variances) and the evaluation on data in square tiles on one thread per core,
  with the same-example diagonal.

The empirical kernel Theta_m of a finite network is `ntkvae.empirical_ntk`; `theta_m` and
`output_coordinates` are re-exported here for existing callers.
"""

from ..empirical_ntk import output_coordinates, theta_m  # noqa: F401
from ..groups import BIAS_OF as BIAS_GROUP_OF, WEIGHT_GROUPS as GROUPS  # noqa: F401
from .evaluate import (  # noqa: F401
    DEFAULT_BLOCK, GRID_TOLERANCE, METHODS, NORMALIZED_RTOL, arch_fields, group_names, interpolation_error,
    noise_diagonal, theta_inf)
from .gaussian import (  # noqa: F401
    CLOSED_FORM, CLOSED_STATS, DEFAULT_ORDER, fast_asin, polar_quadrature_stats, quadrature_stats, stats_fn)
from .grid import DEFAULT_GRID  # noqa: F401
from .layers import SAME_EXAMPLE_ONLY, group_kernels  # noqa: F401
