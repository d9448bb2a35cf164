"""The theoretical density of a weight scheme's entries, to draw over the histogram at init.

The mean, the std and the family are the init library's (``init.json`` ``layers[]``:
``theory_mean``, ``theory_std``, ``theory_family``, from the scheme's registration):

- uniform schemes: :math:`\\mathcal{U}(\\mu \\pm \\sqrt{3}\\sigma)`;
- Gaussian schemes (torch's ``xavier_normal_``, ``kaiming_normal_``: untruncated):
  :math:`\\mathcal{N}(\\mu, \\sigma^2)`;
- truncated schemes (``lecun_normal``, ``truncated_normal``, Keras ``VarianceScaling``): a normal
  cut at ±2σ' around μ with σ' = σ / 0.87962566103423978, so that the std *after* truncation is σ
  (0.8796... is the std of N(0, 1) truncated to (-2, 2));
- ``orthogonal`` (Haar, Saxe et al. 2014): each row (or column, whichever is longer) is a uniform
  unit vector in :math:`\\mathbb{R}^n`, n = max(rows, cols), scaled by the gain g = σ√n, whose
  entries have the exact marginal density
  :math:`f(w) = \\frac{\\Gamma(n/2)}{g\\sqrt{\\pi}\\,\\Gamma((n-1)/2)} (1 - (w/g)^2)^{(n-3)/2}`.

Constant schemes (zeros, ones, identity, Dirac) are point masses and data-dependent ones (LSUV) or
mixtures (sparse) have no closed form here: they get no overlay.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import special, stats

TRUNC_STD_2SIGMA = float(stats.truncnorm(-2, 2).std())  # std of N(0, 1) cut to (-2, 2): 0.8796...


def density(
    kind: str, mean: float, std: float, shape: list[int] | None = None
) -> tuple[Callable[[np.ndarray], np.ndarray], str] | None:
    """``(pdf, label)`` of a family with the given mean and std; None if undefined."""
    if not (std > 0 and math.isfinite(std)):
        return None
    if kind == "uniform":
        a = math.sqrt(3) * std  # U(-a, a) has std a / sqrt(3)
        return stats.uniform(mean - a, 2 * a).pdf, f"U({mean:.3g} ± {a:.3g})"
    if kind == "normal":
        return stats.norm(mean, std).pdf, f"N({mean:.3g}, {std:.3g}²)"
    if kind == "truncated":
        s = std / TRUNC_STD_2SIGMA
        return stats.truncnorm(-2, 2, loc=mean, scale=s).pdf, f"N({mean:.3g}, {s:.3g}²) cut at ±2σ"
    if kind == "orthogonal" and shape and len(shape) >= 2:
        n = max(shape[0], math.prod(shape[1:]))
        if n < 2:
            return None
        g = std * math.sqrt(n)
        log_c = special.gammaln(n / 2) - special.gammaln((n - 1) / 2) - 0.5 * math.log(math.pi)

        def pdf(w: np.ndarray) -> np.ndarray:
            x = (np.asarray(w, dtype=float) - mean) / g
            inside = np.abs(x) < 1
            out = np.zeros_like(x)
            out[inside] = np.exp(log_c + (n - 3) / 2 * np.log1p(-(x[inside] ** 2))) / g
            return out

        return pdf, f"orthogonal marginal, g={g:.3g}, n={n}"
    return None
