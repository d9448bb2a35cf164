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
from initsweep.init.model import LEAKY_SLOPE
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
    scheme: str,
    params: dict[str, Any],
    activation: str,
    key: str = "init.gain",
    negative_slope: float = LEAKY_SLOPE,
) -> tuple[float, str] | None:
    r"""``(gain, why)`` the scheme draws with for ``params['gain']``; None if it takes no gain
    (then a gain other than null is refused).

    ``why`` is what ``init.json`` and the probe table show: ``"1 (Glorot & Bengio 2010)"``,
    ``"√2 = relu's (He et al. 2015)"``, ``"√2 (act: relu)"``, ``"2.5 (given)"``.
    ``negative_slope``: the model's leaky ReLU slope, which ``act`` takes (``calculate_gain``'s
    :math:`\sqrt{2/(1+a^2)}`; the model's own slope, else 0.01, as ``nn.LeakyReLU``).
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
    if gain == ACT:
        g = activation_gain(activation, negative_slope)
        slope = f", a={negative_slope:g}" if activation == "leaky_relu" else ""
        return g, f"{format_gain(g)} (act: {activation}{slope})"
    if gain is not None:
        return float(gain), f"{format_gain(gain)} (given)"
    reference = gain_reference(scheme)
    if callable(reference):  # a gain that depends on the scheme's own parameters (He's)
        names = [p for p in accepted if p != "gain"]
        defaults = {p: params.get(p, accepted[p].default) for p in names}
        return reference(**defaults)
    g = float(accepted["gain"].default)
    return g, f"{format_gain(g)} ({reference})"


def default_gain_note(scheme: str, params: dict[str, Any], activation: str) -> str | None:
    """One line when He's default gain meets a model it was not derived for (None otherwise).

    ``kaiming_*`` with ``init.gain=null`` and no ``init.nonlinearity`` draw with the rectifier's
    √2, torch's default, on every activation: on a linear net each layer then multiplies the
    signal's std by √2 (a depth-50 linear net ends 2^25 ≈ 3.4e7 times larger), on a tanh net it
    is not tanh's 5/3 either. Not an error (it is the reference's default): a note in the log.
    """
    if activation not in ("linear", "tanh") or params.get("gain") is not None:
        return None
    if not callable(gain_reference(scheme)) or params.get("nonlinearity"):
        return None
    gain, why = gain_reference(scheme)(**{**_defaults(scheme), **_known(scheme, params)})
    own = activation_gain(activation)
    return (
        f"init.name={scheme!r} draws with gain {why} on a {activation} model, whose own gain "
        f"is {format_gain(own)}: each layer scales the signal's std by {gain / own:.3g} "
        f"(init.gain=act or init.nonlinearity={activation} takes {format_gain(own)})"
    )


def _defaults(scheme: str) -> dict[str, Any]:
    return {p: v.default for p, v in scheme_params(scheme).items() if p != "gain"}


def _known(scheme: str, params: dict[str, Any]) -> dict[str, Any]:
    return {p: params[p] for p in _defaults(scheme) if params.get(p) is not None}
