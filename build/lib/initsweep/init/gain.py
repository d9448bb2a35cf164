"""Which gain a scheme draws with, and why: ``init.gain`` is a number, ``act`` or null.

- a number: that gain ("given");
- ``act``: the model activation's, ``calculate_gain(model.activation)`` (ReLU √2, tanh 5/3, ...);
- null: the scheme's reference gain, the one its paper and PyTorch/Keras use. That is 1 for every
  scheme but He's, where it is the rectifier's :math:`\\sqrt{2/(1+a^2)}` (He et al. 2015, Eq. 10;
  ``torch.nn.init.kaiming_*`` default ``nonlinearity="leaky_relu", a=0``; Keras ``he_*``), or
  ``init.nonlinearity``'s when given. Glorot & Bengio, Saxe et al. and Xiao et al. define their
  schemes with gain 1, as ``torch.nn.init.xavier_*``/``orthogonal_`` and Keras' ``glorot_*``,
  ``Orthogonal`` and TF's ``ConvolutionDeltaOrthogonal`` do: a ReLU net under ``xavier_uniform``
  gets Glorot's variance, not He's, unless it asks for ``init.gain=act``.

The schema types ``init.gain`` as :data:`~initsweep.init.registry.GainSetting` (a float, an int
or the literal ``act``), so ``init.gain=acr`` fails when Hydra composes the config.
"""

from __future__ import annotations

import math
from typing import Any

from initsweep.errors import ConfigError
from initsweep.init.fans import activation_gain
from initsweep.init.registry import ACT, gain_reference, scheme_params

_CLOSED_FORMS = {"1": 1.0, "√2": math.sqrt(2.0), "5/3": 5.0 / 3.0, "3/4": 0.75}


def format_gain(gain: float) -> str:
    """``√2``, ``5/3``, ``3/4``, ``1`` where the gain is one of those, else 4 significant digits."""
    for text, value in _CLOSED_FORMS.items():
        if math.isclose(gain, value, rel_tol=1e-12):
            return text
    return f"{gain:.4g}"


def _check(key: str, gain: Any) -> None:
    ok = gain in (None, ACT) or (
        isinstance(gain, (int, float))
        and not isinstance(gain, bool)
        and gain > 0
        and math.isfinite(gain)
    )
    if not ok:
        raise ConfigError(
            f"{key}={gain!r} is invalid: must be a finite number > 0, 'act' (the model "
            "activation's gain) or null (the scheme's reference gain)"
        )


def resolve_gain(
    scheme: str, params: dict[str, Any], activation: str, key: str = "init.gain"
) -> tuple[float, str] | None:
    """``(gain, why)`` the scheme draws with for ``params['gain']``; None if it takes no gain
    (then a gain other than null is refused).

    ``why`` is what ``init.json`` and the probe table show: ``"1 (Glorot & Bengio 2010)"``,
    ``"√2 = relu's (He et al. 2015)"``, ``"√2 (act: relu)"``, ``"2.5 (given)"``.
    """
    gain = params.get("gain")
    _check(key, gain)
    accepted = scheme_params(scheme)
    if "gain" not in accepted:
        if gain is not None:  # silently ignored, a gain search would search nothing
            raise ConfigError(
                f"{key}={gain!r} is invalid: scheme {scheme!r} takes no gain (the scale "
                "multiplies any scheme's draw)"
            )
        return None
    slope = params.get("negative_slope") or 0.0
    if gain == ACT:
        g = activation_gain(activation, slope)
        return g, f"{format_gain(g)} (act: {activation})"
    if gain is not None:
        return float(gain), f"{format_gain(gain)} (given)"
    reference = gain_reference(scheme)
    if callable(reference):  # a gain that depends on the scheme's own parameters (He's)
        names = [p for p in accepted if p != "gain"]
        defaults = {p: params.get(p, accepted[p].default) for p in names}
        return reference(**defaults)
    g = float(accepted["gain"].default)
    return g, f"{format_gain(g)} ({reference})"
