"""Gain and std conventions of the init library: a leaky ReLU's slope, the truncated normal's std,
and the note when He's default gain meets a linear or tanh model."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from initsweep.init import BiasContext, initialize, model_facts, param_generator
from initsweep.init.gain import default_gain_note
from initsweep.init.registry import get_scheme
from initsweep.init.weights import TRUNC_STD_2SIGMA
from initsweep.job import probe
from initsweep.models import MLP


class Leaky(nn.Module):
    output_layer = "out"

    def __init__(self, slope: float | None, declared: str | None = None):
        super().__init__()
        self.hidden = nn.Linear(30, 20)
        self.act = nn.LeakyReLU(slope) if slope is not None else nn.Identity()
        self.activation = declared or self.act
        self.out = nn.Linear(20, 2)

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))


def _act_gain(model: nn.Module) -> tuple[float, str]:
    a = initialize(
        model, {"name": "xavier_normal", "gain": "act"}, {}, BiasContext("multiclass"), 0
    )
    entry = next(e for e in a if e["param"].endswith("weight"))
    return entry["gain"], entry["gain_source"]


@pytest.mark.parametrize(
    "model, slope",
    [
        (Leaky(0.2), 0.2),  # the model's own slope
        (Leaky(0.2, declared="leaky_relu"), 0.2),  # named, with its LeakyReLU module
        (Leaky(None, declared="leaky_relu"), 0.01),  # named only: nn.LeakyReLU's default
        (MLP((30,), 2, hidden=(20,), activation="leaky_relu"), 0.01),
    ],
)
def test_act_gain_of_a_leaky_relu_takes_the_models_slope_else_001(model, slope):
    gain, why = _act_gain(model)
    # torch.nn.init.calculate_gain('leaky_relu', a) = sqrt(2 / (1 + a^2)), not relu's sqrt 2
    assert gain == pytest.approx(nn.init.calculate_gain("leaky_relu", slope), rel=1e-12)
    assert model_facts(model).negative_slope == slope and f"a={slope:g}" in why


@pytest.mark.parametrize(
    "std_is, after", [("after_truncation", 0.05), ("before_truncation", 0.05 * TRUNC_STD_2SIGMA)]
)
def test_truncated_normal_says_which_std_it_means(std_is, after):
    t = torch.empty(400, 500)
    get_scheme("truncated_normal")(t, std=0.05, std_is=std_is, generator=param_generator(0, "w"))
    assert float(t.std()) == pytest.approx(after, rel=0.01)
    if (
        std_is == "before_truncation"
    ):  # Keras TruncatedNormal(stddev=0.05): sigma 0.05, cut at 2 sigma
        ref = torch.empty_like(t)
        nn.init.trunc_normal_(ref, 0.0, 0.05, -0.1, 0.1, generator=param_generator(0, "w"))
        torch.testing.assert_close(t, ref, rtol=1e-6, atol=1e-8)
    assert float(t.abs().max()) <= 2 * after / TRUNC_STD_2SIGMA + 1e-7


@pytest.mark.parametrize(
    "activation, params, noted",
    [
        ("linear", {}, True),
        ("tanh", {}, True),
        ("relu", {}, False),  # He's gain is relu's
        ("linear", {"gain": "act"}, False),
        ("linear", {"gain": 1.0}, False),
        ("linear", {"nonlinearity": "linear"}, False),
    ],
)
def test_kaiming_default_gain_on_a_linear_or_tanh_model_is_noted(activation, params, noted):
    note = default_gain_note("kaiming_normal", params, activation)
    assert (note is not None) == noted
    if noted:
        assert "\n" not in note and "√2" in note and "init.gain=act" in note
    assert default_gain_note("xavier_normal", {}, "linear") is None  # Glorot's 1: nothing to say


def test_a_job_logs_the_note_once(make_cfg, caplog):
    cfg = make_cfg("model=deep_mlp", "model.depth=3", "init=kaiming_normal", "seeds=[0,1,2]")
    with caplog.at_level(logging.WARNING, logger="initsweep"):
        probe(cfg)
    notes = [r for r in caplog.records if "draws with gain √2" in r.getMessage()]
    assert len(notes) == 1 and "linear model" in notes[0].getMessage()
