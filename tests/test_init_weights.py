"""Every weight scheme in the registry against its definition: moments, bounds, structure, errors.

Tests are parametrized over the registry, so a new scheme is tested with no new test code: its
``moments`` (the theoretical mean and std, written independently of the sampler) are checked on a
large draw with a tolerance derived from the sample size.
"""

from __future__ import annotations

import math

import pytest
import torch

from initsweep.errors import ConfigError
from initsweep.init import initialize, list_schemes, param_generator, theoretical_moments
from initsweep.init.bias import BiasContext
from initsweep.init.registry import (
    gain_reference,
    get_scheme,
    needs_branches,
    register_scheme,
    scheme_params,
    with_defaults,
)
from initsweep.init.weights import TRUNC_STD_2SIGMA
from initsweep.models import MLP

SHAPES = [(200, 300), (64, 32, 3, 3)]  # a dense weight; a conv weight for conv-only schemes
STATISTICAL = [s for s in list_schemes() if theoretical_moments(s, (4, 4), {}) is not None]
# schemes for any model; the others need its residual branches (tests/test_residual_schemes.py)
ANY_MODEL = [s for s in list_schemes() if not needs_branches(s)]


def draw(scheme: str, shape: tuple[int, ...], seed: int = 0, **params) -> torch.Tensor:
    t = torch.empty(shape)
    get_scheme(scheme)(t, **with_defaults(scheme, params), generator=param_generator(seed, "w"))
    return t


def first_shape(scheme: str) -> tuple[int, ...]:
    """The first test shape the scheme accepts (delta_orthogonal needs a conv weight)."""
    for shape in SHAPES:
        try:
            draw(scheme, shape)
            return shape
        except ConfigError:
            continue
    raise AssertionError(f"{scheme} accepts none of {SHAPES}")


def test_only_data_dependent_schemes_lack_theoretical_moments():
    # LSUV's scale depends on the data; every other scheme states its mean and std
    assert set(list_schemes()) - set(STATISTICAL) == {"lsuv"}


@pytest.mark.parametrize("scheme", STATISTICAL)
def test_scheme_matches_its_theoretical_mean_and_std(scheme):
    shape = first_shape(scheme)
    w = draw(scheme, shape).double().flatten()
    mean, std = theoretical_moments(scheme, shape, {})
    n = w.numel()
    # standard errors from the sample itself: SE(mean) = s/sqrt(n); SE(var) = sqrt((m4 - s^4)/n),
    # SE(std) = SE(var)/(2 s) (delta method). 6 SE: a false alarm about once in 10^8 runs
    m = w.mean()
    s = w.std(unbiased=False)
    m4 = ((w - m) ** 4).mean()
    se_mean = float(s) / math.sqrt(n)
    se_std = math.sqrt(max(float(m4 - s**4), 0.0) / n) / (2 * float(s)) if s > 0 else 0.0
    # + float32 rounding of the stored values (deterministic schemes have SE 0)
    assert abs(float(m) - mean) <= 6 * se_mean + 1e-6 * max(1.0, abs(mean)), (float(m), mean)
    assert abs(float(s) - std) <= 6 * se_std + 1e-6 * max(1.0, std), (float(s), std)


@pytest.mark.parametrize("scheme", list_schemes())
def test_same_generator_seed_gives_identical_tensors(scheme):
    shape = first_shape(scheme)
    assert torch.equal(draw(scheme, shape, seed=3), draw(scheme, shape, seed=3))


@pytest.mark.parametrize(
    "scheme, params, bound",
    [
        ("uniform", {}, lambda fi, fo: (0.0, 1.0)),
        ("uniform", {"a": -2.0, "b": 3.0}, lambda fi, fo: (-2.0, 3.0)),
        ("uniform_scaled", {}, lambda fi, fo: (-(fi**-0.5), fi**-0.5)),
        ("pytorch_default", {}, lambda fi, fo: (-(fi**-0.5), fi**-0.5)),
        ("lecun_uniform", {}, lambda fi, fo: (-math.sqrt(3 / fi), math.sqrt(3 / fi))),
        ("xavier_uniform", {"gain": 2.0}, lambda fi, fo: (-2 * math.sqrt(6 / (fi + fo)),) * 2),
        ("keras_default", {}, lambda fi, fo: (-math.sqrt(6 / (fi + fo)),) * 2),
        (
            "kaiming_uniform",
            {"gain": 1.5, "mode": "fan_out"},
            lambda fi, fo: (-1.5 * math.sqrt(3 / fo),) * 2,
        ),
        (
            "variance_scaling",
            {"variance_scale": 2.0, "distribution": "uniform"},
            lambda fi, fo: (-math.sqrt(6 / fi),) * 2,
        ),
    ],
)
def test_uniform_schemes_stay_within_their_bounds_and_fill_them(scheme, params, bound):
    fi, fo = 300, 200
    lo, hi = bound(fi, fo)
    hi = abs(hi) if hi == lo else hi  # symmetric bounds are given once, as the negative end
    w = draw(scheme, (fo, fi), **params)
    assert w.min() >= lo - 1e-7 and w.max() <= hi + 1e-7
    # 60000 draws: the extremes come within 0.1 % of the range of the bounds
    assert w.min() < lo + 1e-3 * (hi - lo) and w.max() > hi - 1e-3 * (hi - lo)


def test_pytorch_default_is_what_nn_linear_reset_parameters_draws():
    # kaiming_uniform_(a=sqrt(5)) with the same generator state: the same numbers
    ours = draw("pytorch_default", (50, 70), seed=1)
    ref = torch.empty(50, 70)
    torch.nn.init.kaiming_uniform_(ref, a=math.sqrt(5), generator=param_generator(1, "w"))
    assert torch.allclose(ours, ref, atol=1e-7)


def test_kaiming_normal_equals_torch_with_the_same_gain_and_generator():
    ours = draw(
        "kaiming_normal",
        (40, 30),
        seed=2,
        mode="fan_out",
        nonlinearity="leaky_relu",
        negative_slope=0.2,
    )
    ref = torch.empty(40, 30)
    torch.nn.init.kaiming_normal_(ref, a=0.2, mode="fan_out", generator=param_generator(2, "w"))
    assert torch.allclose(ours, ref, atol=1e-7)


@pytest.mark.parametrize("shape", [(64, 200), (200, 64), (64, 8, 3, 3)])
@pytest.mark.parametrize("gain", [1.0, math.sqrt(2)])
def test_orthogonal_rows_or_columns_are_orthonormal_times_gain(shape, gain):
    w = draw("orthogonal", shape, gain=gain).double().reshape(shape[0], -1)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w  # W W^T = g^2 I, or W^T W
    assert torch.allclose(gram, gain**2 * torch.eye(gram.shape[0], dtype=torch.double), atol=1e-5)


def test_orthogonal_blocks_make_each_lstm_gate_orthogonal():
    w = draw("orthogonal", (4 * 16, 16), blocks=4).double()
    for block in w.chunk(4, 0):  # gates i, f, g, o of weight_hh
        assert torch.allclose(block.T @ block, torch.eye(16, dtype=torch.double), atol=1e-5)


def test_orthogonal_is_haar_signs_are_not_biased():
    # without the sign(diag R) fix, QR's diagonal convention biases the diagonal of Q; with it,
    # diag(Q) of square draws has mean 0 (E over Haar measure), within 6 SE of 0
    diag = torch.cat([draw("orthogonal", (8, 8), seed=s).diagonal() for s in range(400)])
    assert abs(float(diag.mean())) < 6 * float(diag.std()) / math.sqrt(diag.numel())


@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_delta_orthogonal_is_an_orthogonal_centre_tap_scaled_by_gain(gain):
    w = draw("delta_orthogonal", (32, 16, 3, 3), gain=gain).double()
    centre = w[:, :, 1, 1]
    # the gain multiplies Q (Xiao et al. 2018, TF q *= gain), not its square root
    assert torch.allclose(
        centre.T @ centre, gain**2 * torch.eye(16, dtype=torch.double), atol=1e-5
    )
    w[:, :, 1, 1] = 0
    assert torch.count_nonzero(w) == 0


@pytest.mark.parametrize("k", [1, 15, 40])
def test_sparse_gives_exactly_k_nonzero_incoming_weights_per_unit(k):
    w = draw("sparse", (100, 40, 1, 1), k=k)
    assert (torch.count_nonzero(w.reshape(100, -1), dim=1) == k).all()


@pytest.mark.parametrize(
    "scheme, params, mean, std",
    [
        ("truncated_normal", {"mean": 0.5, "std": 0.2}, 0.5, 0.2),
        ("lecun_normal", {}, 0.0, 300**-0.5),
        ("variance_scaling", {"variance_scale": 2.0, "mode": "fan_avg"}, 0.0, math.sqrt(2 / 250)),
    ],
)
def test_truncated_schemes_cut_at_two_sigma_and_keep_the_target_std(scheme, params, mean, std):
    w = draw(scheme, (200, 300), **params).double()
    sigma = std / TRUNC_STD_2SIGMA  # the pre-truncation sigma (Keras' 0.8796 correction)
    assert (w - mean).abs().max() <= 2 * sigma + 1e-7
    assert (w - mean).abs().max() > 1.99 * sigma  # the cut is at 2 sigma, not beyond
    n = w.numel()
    assert abs(float(w.std()) - std) < 6 * std / math.sqrt(2 * n)  # the std after truncation


def test_identity_is_eye_for_dense_and_dirac_for_conv():
    assert torch.equal(draw("identity", (3, 5)), torch.eye(3, 5))
    w = draw("identity", (4, 4, 3, 3), gain=2.0)
    assert torch.equal(w[:, :, 1, 1], 2 * torch.eye(4)) and w.sum() == 8


def _init_mlp(**init):
    model = MLP((10,), 3, hidden=(8,))
    return initialize(model, {"name": "xavier_uniform", **init}, {}, BiasContext("multiclass"), 0)


@pytest.mark.parametrize(
    "init, expected",
    [
        ({"name": "no_such_scheme"}, "xavier_uniform"),  # lists the valid names
        ({"gain": -1.0}, "init.gain=-1.0"),
        ({"scale": 0.0}, "init.scale=0.0"),
        ({"name": "sparse", "k": 20}, "init.k=20"),  # k > fan_in = 10 of the first layer
        ({"name": "delta_orthogonal"}, "needs a conv weight"),
        ({"name": "kaiming_normal", "mode": "fan_ot"}, "fan_in, fan_out"),
        ({"name": "variance_scaling", "distribution": "cauchy"}, "init.distribution"),
        ({"name": "uniform", "a": 1.0, "b": 0.0}, "a < b"),
        ({"name": "xavier_uniform", "k": 3}, "takes no parameter ['k']"),
    ],
)
def test_bad_input_fails_with_one_line_naming_key_and_allowed(init, expected):
    with pytest.raises(ConfigError) as err:
        _init_mlp(**init)
    message = str(err.value)
    assert expected in message and "\n" not in message


def test_shape_errors_name_the_parameter_and_its_shape():
    with pytest.raises(
        ConfigError, match=r"\(10, 5\).*parameter body.1.weight|parameter body.1.weight"
    ):
        initialize(
            MLP((5,), 3, hidden=(10,)),
            {"name": "sparse", "k": 6},
            {},
            BiasContext("multiclass"),
            0,
        )


@pytest.mark.slow  # composes the config once per scheme
def test_every_scheme_is_a_config_option_that_initializes_the_default_model(make_cfg):
    from initsweep.job import job_spec
    from initsweep.job.build import build, build_models

    bundle = None
    for scheme in list_schemes():
        # a residual scheme initialises a residual net (with gains, for SkipInit and ReZero)
        residual = ("model=residual_mlp", "model.depth=2", "model.branch_gain=true")
        cfg = make_cfg(f"init={scheme}", "seeds=[0]", *residual if needs_branches(scheme) else ())
        assert cfg.init.name == scheme  # conf/init/<scheme>.yaml exists and extends its schema
        bundle = bundle or build(cfg.dataset)
        if scheme == "deepnorm":  # its skip scale needs a transformer block: a one-line refusal
            with pytest.raises(ConfigError, match="declares no skip"):
                build_models(job_spec(cfg), bundle, "cross_entropy")
            continue
        if scheme == "delta_orthogonal":  # conv-only: the MLP's dense weights are refused
            with pytest.raises(ConfigError, match="needs a conv weight"):
                build_models(job_spec(cfg), bundle, "cross_entropy")
            continue
        (model,), (assignment,), _ = build_models(job_spec(cfg), bundle, "cross_entropy")
        # every weight has the scheme, or its residual plan's rule for the layer's role
        weights = [a for a in assignment if a["param"].endswith("weight")]
        assert all(a["scheme"] == scheme or "residual" in a for a in weights)


# --- default gains: init.gain=null is the reference's gain, not the model activation's ----------

KERAS_TRUNC = TRUNC_STD_2SIGMA  # Keras: stddev = sqrt(scale / n) / .87962566103423978, cut at 2σ


def _keras_truncated(t, std, generator):
    s = std / KERAS_TRUNC
    return torch.nn.init.trunc_normal_(t, 0.0, s, -2 * s, 2 * s, generator=generator)


# every scheme with a gain, drawn by its reference with the reference's default gain and the same
# generator: torch.nn.init's function where it has one (gain 1; kaiming's a=0 leaky_relu: √2),
# else Keras' definition (keras/src/initializers) written as a formula
REFERENCES = {
    "xavier_uniform": torch.nn.init.xavier_uniform_,
    "xavier_normal": torch.nn.init.xavier_normal_,
    "kaiming_uniform": torch.nn.init.kaiming_uniform_,
    "kaiming_normal": torch.nn.init.kaiming_normal_,
    "orthogonal": torch.nn.init.orthogonal_,
    "uniform": torch.nn.init.uniform_,
    "normal": torch.nn.init.normal_,
    "identity": lambda t, generator: torch.nn.init.eye_(t),
    # Glorot & Bengio's Eq. 1 U(±1/√n_in) is torch's Linear default; LeCun's N(0, 1/n_in)
    "uniform_scaled": lambda t, generator: torch.nn.init.kaiming_uniform_(
        t, a=math.sqrt(5), generator=generator
    ),
    "normal_scaled": lambda t, generator: torch.nn.init.kaiming_normal_(
        t, nonlinearity="linear", generator=generator
    ),
    # Keras lecun_uniform: VarianceScaling(1, "fan_in", "uniform"), limit sqrt(3 scale / n)
    "lecun_uniform": lambda t, generator: t.uniform_(
        -math.sqrt(3 / t.shape[1]), math.sqrt(3 / t.shape[1]), generator=generator
    ),
    # Keras lecun_normal and VarianceScaling's defaults: (1, "fan_in", "truncated_normal")
    "lecun_normal": lambda t, generator: _keras_truncated(t, t.shape[1] ** -0.5, generator),
    "variance_scaling": lambda t, generator: _keras_truncated(t, t.shape[1] ** -0.5, generator),
    # the std after the cut is std = 0.05 (Keras VarianceScaling's correction; see the scheme)
    "truncated_normal": lambda t, generator: _keras_truncated(t, 0.05, generator),
}
WITH_GAIN = [s for s in list_schemes() if "gain" in scheme_params(s)]


def _tanh_net(scheme: str):
    """A tanh network (act gain 5/3, neither 1 nor √2) the scheme can fill; its first weight."""
    if scheme == "delta_orthogonal":
        model = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3), torch.nn.Flatten())
        model.activation, model.output_layer = "tanh", None
        return model, "0.weight"
    if scheme == "sparse":
        return MLP((40,), 3, hidden=(20,), activation="tanh"), "body.1.weight"
    return MLP((30,), 3, hidden=(20,), activation="tanh"), "body.1.weight"


def _first_weight(scheme: str, **init):
    model, name = _tanh_net(scheme)
    assignment = initialize(model, {"name": scheme, **init}, {}, BiasContext("multiclass"), 0)
    entry = next(a for a in assignment if a["param"] == name)
    return model.get_parameter(name).detach(), entry, name


def test_every_scheme_with_a_gain_has_a_reference_and_every_reference_is_tested():
    assert set(WITH_GAIN) == set(REFERENCES) | {"sparse", "delta_orthogonal"}
    with pytest.raises(ValueError, match="gain_source"):  # a new scheme must say whose gain
        register_scheme(lambda tensor, gain=1.0, *, generator=None: tensor, name="no_source")


@pytest.mark.parametrize("scheme", sorted(REFERENCES))
def test_default_gain_draws_exactly_what_the_reference_draws(scheme):
    w, entry, name = _first_weight(scheme)
    ref = torch.empty_like(w)
    REFERENCES[scheme](ref, generator=param_generator(0, name))
    assert torch.allclose(w, ref, rtol=1e-6, atol=1e-7)
    if scheme.startswith("kaiming"):
        assert entry["gain_source"] == "√2 = relu's (He et al. 2015)"
    else:
        assert entry["gain_source"] == f"1 ({gain_reference(scheme)})"


def test_sparse_and_delta_orthogonal_default_gains_are_their_papers():
    # Martens 2010: the k non-zero weights are unit Gaussians
    w, entry, _ = _first_weight("sparse")
    nonzero = w[w != 0].double()
    assert entry["gain_source"] == "1 (Martens 2010)"
    assert abs(float(nonzero.std()) - 1.0) < 6 / math.sqrt(2 * nonzero.numel())
    # Xiao et al. 2018 / TF ConvolutionDeltaOrthogonal(gain=1): the centre tap is Q, Q^T Q = I
    w, entry, _ = _first_weight("delta_orthogonal")
    centre = w[:, :, 1, 1].double()
    assert entry["gain_source"] == "1 (Xiao et al. 2018)"
    assert torch.allclose(centre.T @ centre, torch.eye(8, dtype=torch.double), atol=1e-5)


@pytest.mark.parametrize("scheme", WITH_GAIN)
def test_init_gain_act_is_the_activation_gain_and_a_number_is_that_gain(scheme):
    act, entry, _ = _first_weight(scheme, gain="act")
    given, given_entry, _ = _first_weight(scheme, gain=5 / 3)
    assert torch.equal(act, given)  # calculate_gain("tanh") = 5/3, the same draw
    assert entry["gain"] == pytest.approx(5 / 3) and entry["gain_source"] == "5/3 (act: tanh)"
    assert given_entry["gain_source"] == "5/3 (given)"


@pytest.mark.parametrize(
    "override, composed", [("init.gain=act", "act"), ("init.gain=2", 2), ("init.gain=null", None)]
)
def test_init_gain_takes_a_number_act_or_null_at_compose_time(make_cfg, override, composed):
    assert make_cfg("init=xavier_uniform", override).init.gain == composed


def test_a_gain_on_a_scheme_without_one_is_refused():
    with pytest.raises(ConfigError, match="init.gain=2.0 is invalid: scheme 'pytorch_default'"):
        _init_mlp(name="pytorch_default", gain=2.0)


# --- zero-element tensors: a no-op with PyTorch's warning, for every scheme ----------------------

ZERO_SHAPES = [(0, 5), (5, 0), (0, 0), (4, 0, 3, 3), (4, 4, 0, 3)]


def _torch_zero_element_warning(shape) -> str:
    with pytest.warns(UserWarning) as record:
        torch.nn.init.kaiming_uniform_(torch.empty(shape))
    return str(record[0].message)


@pytest.mark.parametrize("shape", ZERO_SHAPES)
@pytest.mark.parametrize("scheme", list_schemes())
def test_a_zero_element_tensor_is_returned_as_it_is_with_pytorchs_warning(scheme, shape):
    t = torch.empty(shape)
    with pytest.warns(UserWarning) as record:
        out = get_scheme(scheme)(t, **with_defaults(scheme, {}), generator=param_generator(0, "w"))
    assert out is t and out.shape == shape
    assert [str(r.message) for r in record] == [_torch_zero_element_warning(shape)]
    assert theoretical_moments(scheme, shape, {}) is None  # no entries, no moments


class _ZeroWidth(torch.nn.Module):
    """4 inputs -> 0 hidden units -> 1 output: the output is its bias alone."""

    activation, output_layer = "relu", "out"

    def __init__(self):
        super().__init__()
        self.hidden, self.out = torch.nn.Linear(4, 0), torch.nn.Linear(0, 1)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op")
@pytest.mark.parametrize("scheme", ANY_MODEL)
def test_every_scheme_and_the_diagnostics_handle_a_zero_width_layer(scheme):
    from initsweep.diagnostics import layer_report

    model, x = _ZeroWidth(), torch.randn(8, 4)
    bias = {"hidden": "default", "output": "mean"}
    ctx = BiasContext("regression", targets=torch.arange(4.0))
    if scheme == "mup":  # μP builds the model at its base width: a bare module is refused
        with pytest.raises(ConfigError, match="init=mup needs the model's width: declare"):
            initialize(model, {"name": scheme}, bias, ctx, 0, x)
        return
    assignment = initialize(model, {"name": scheme}, bias, ctx, 0, x)
    assert torch.equal(model(x), torch.full((8, 1), 1.5))  # the mean bias, nothing else
    rows = layer_report(model, x, torch.zeros(8), "mse", 1.0, assignment)
    for row in rows:  # statistics of nothing are None (JSON null), not NaN or an exception
        assert row["weight_std"] is None and row["weight_min"] is None
        assert row["theory_std"] is None and row["dead_frac"] is None
