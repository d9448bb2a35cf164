"""μP against Microsoft's ``mup`` package on the same MLP: init std, learning rates, training.

The ``mup`` model is initsweep's MLP written as ``mup``'s README asks: the readout a
``MuReadout``, base shapes set from the model at width 64 and at 128
(``set_base_shapes(model, base, delta)``), then ``mup.init``'s drop-in initializers or, for
PyTorch's default init, ``set_base_shapes``' own rescaling. initsweep folds ``MuReadout``'s
forward multiplier α/m into the readout weight (``initsweep/init/mup.py``), so its readout is
compared with ``mup``'s *effective* readout weight α·W'/m; every other parameter as it is.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import pytest
import torch
from torch import nn

mup = pytest.importorskip("mup")

from initsweep.errors import ConfigError  # noqa: E402
from initsweep.init import BiasContext, initialize, model_facts, theoretical_moments  # noqa: E402
from initsweep.init.mup_lr import multipliers  # noqa: E402
from initsweep.init.widths import width_facts  # noqa: E402
from initsweep.models import MLP  # noqa: E402
from initsweep.train.optim import build_optimizer, build_stacked_optimizer  # noqa: E402

IN, OUT, BASE = 48, 10, 64


class MuMLP(nn.Module):
    """initsweep's MLP layout (``body.1``, ``body.3``, ``out``) with ``mup``'s readout."""

    def __init__(self, width: int, output_mult: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(IN, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU()
        )
        self.out = mup.MuReadout(width, OUT, output_mult=output_mult)

    def forward(self, x):
        return self.out(self.body(x))


def mup_model(width: int, base: str, params: dict, output_mult: float = 1.0) -> MuMLP:
    """The ``mup`` side, as its README does it: PyTorch's default init rescaled by
    ``set_base_shapes``, then (other bases) a ``mup.init`` drop-in on every weight."""
    model = MuMLP(width, output_mult)
    mup.set_base_shapes(model, MuMLP(BASE), delta=MuMLP(2 * BASE))
    if base != "pytorch_default":
        for p in model.parameters():
            if p.dim() >= 2:
                getattr(mup.init, base + "_")(p, **params)
    return model


def initsweep_model(width: int, base: str, params: dict, output_mult: float = 1.0, seed=0):
    make = functools.partial(MLP, (IN,), OUT, hidden=[width, width])
    model = make()
    widths = width_facts(make, "hidden", BASE, "out")
    facts = model_facts(model, {"activation": "relu"})
    init = {"name": "mup", "base_width": BASE, "base": base, "base_params": params,
            "output_mult": output_mult}  # fmt: skip
    facts = dataclasses.replace(facts, output_layer="out", widths=widths)
    bias = {"hidden": "default", "output": "pytorch_default"}
    assignment = initialize(model, init, bias, BiasContext("multiclass"), seed, facts=facts)
    return model, widths, {a["param"]: a for a in assignment}


def effective(model: MuMLP) -> dict[str, torch.Tensor]:
    """``mup``'s parameters as the network uses them: the readout weight times α/m."""
    values = {n: p.detach().clone() for n, p in model.named_parameters()}
    values["out.weight"] *= model.out.output_mult / model.out.width_mult()
    return values


BASES = [
    ("pytorch_default", {}),
    ("kaiming_normal", {"mode": "fan_in"}),
    ("kaiming_uniform", {"mode": "fan_out", "nonlinearity": "relu"}),
    ("xavier_normal", {}),
    ("normal", {"std": 0.02}),
]
BASE_KWARGS = {  # the same init in torch.nn.init's words, for mup.init's drop-ins
    "kaiming_normal": {"mode": "fan_in", "nonlinearity": "relu"},
    "kaiming_uniform": {"mode": "fan_out", "nonlinearity": "relu"},
    "xavier_normal": {},
    "normal": {"std": 0.02},
}


@pytest.mark.parametrize("width", [256, 1024])
@pytest.mark.parametrize("base, params", BASES, ids=[b for b, _ in BASES])
def test_every_parameter_has_mups_init_std(base, params, width):
    torch.manual_seed(0)
    theirs = effective(mup_model(width, base, BASE_KWARGS.get(base, params), output_mult=2.0))
    ours, _, assigned = initsweep_model(width, base, params, output_mult=2.0)
    for name, p in ours.named_parameters():
        a, b = p.detach().double(), theirs[name].double()
        # sample stds agree within the sampling error of two independent draws
        se = math.sqrt(2 / a.numel()) * 4 + 1e-3
        assert b.std().item() == pytest.approx(a.std().item(), rel=max(se, 0.02)), name
        if p.dim() >= 2:  # the scheme states its std: the one mup draws with
            entry = assigned[name]
            std = theoretical_moments("mup", tuple(p.shape), entry)[1]
            assert b.std().item() == pytest.approx(std, rel=max(se, 0.02)), name


def test_pytorch_default_std_is_exactly_set_base_shapes_rescaling():
    # mup's rescaling is a multiplication: on all-ones parameters it leaves its factor behind
    width = 512
    model = MuMLP(width)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    mup.set_base_shapes(model, MuMLP(BASE), delta=MuMLP(2 * BASE))
    _, widths, assigned = initsweep_model(width, "pytorch_default", {})
    for name, p in model.named_parameters():
        fan_in = p.shape[1] if p.dim() >= 2 else (IN if name == "body.1.bias" else width)
        torch_std = 1 / math.sqrt(3 * fan_in)  # nn.Linear's U(±1/√fan_in), weight and bias
        expected = float(p.detach().flatten()[0]) * torch_std
        if name == "out.weight":
            expected /= model.out.width_mult()
        if p.dim() >= 2:
            ours = theoretical_moments("mup", tuple(p.shape), assigned[name])[1]
        else:  # the bias rule's U(±1/√fan_in), drawn at the base fan
            ours = assigned[name].get("mup_scale", 1.0) * torch_std
        assert ours == pytest.approx(expected, rel=1e-6), name  # mup's factor is float32


MU_OPTIMIZERS = [
    (mup.MuSGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3}),
    (mup.MuAdam, torch.optim.Adam, {"lr": 1e-3, "weight_decay": 1e-3}),
    (mup.MuAdamW, torch.optim.AdamW, {"lr": 1e-3, "weight_decay": 0.1}),
]


def mup_numbers(opt: torch.optim.Optimizer, model: nn.Module) -> dict[str, dict]:
    ids = {id(p): n for n, p in model.named_parameters()}
    return {ids[id(p)]: g for g in opt.param_groups for p in g["params"]}


@pytest.mark.parametrize("mu_cls, cls, kw", MU_OPTIMIZERS, ids=["sgd", "adam", "adamw"])
def test_learning_rates_are_mups_with_the_readout_folded(mu_cls, cls, kw):
    width, alpha = 512, 2.0
    model = mup_model(width, "pytorch_default", {}, output_mult=alpha)
    theirs = mup_numbers(mu_cls(model.parameters(), **kw), model)
    ours = multipliers(initsweep_model(width, "pytorch_default", {})[1], cls, alpha)
    c = alpha / model.out.width_mult()
    for name, group in theirs.items():
        lr, wd = group["lr"] / kw["lr"], group["weight_decay"] / kw["weight_decay"]
        eps = 1.0
        if name == "out.weight":  # W = cW': a step of W' moves W by c (Adam) or c² (SGD)
            if cls is torch.optim.SGD:
                lr, wd = lr * c * c, wd / (c * c)
            else:
                lr, eps = lr * c, 1 / c
                wd = wd / c if cls is torch.optim.AdamW else wd / (c * c)
        assert ours[name]["lr"] == pytest.approx(lr, rel=1e-12), name
        assert ours[name]["weight_decay"] == pytest.approx(wd, rel=1e-12), name
        assert ours[name].get("eps", 1.0) == pytest.approx(eps, rel=1e-12), name


@pytest.mark.parametrize("stacked", [False, True], ids=["sequential", "stacked"])
@pytest.mark.parametrize("mu_cls, cls, kw", MU_OPTIMIZERS, ids=["sgd", "adam", "adamw"])
def test_training_follows_mup_step_for_step(mu_cls, cls, kw, stacked):
    # the same function at every step: mup's model with MuReadout and its optimizer, against
    # initsweep's folded readout with per-parameter numbers, alone or as copy 0 of a stack
    # whose copy 1 has another learning rate (the per-copy optimizer)
    torch.manual_seed(0)
    width, alpha = 256, 2.0
    theirs = mup_model(width, "pytorch_default", {}, output_mult=alpha).double()
    ours = initsweep_model(width, "pytorch_default", {}, output_mult=alpha)[0].double()
    with torch.no_grad():
        for name, value in effective(theirs).items():
            ours.get_parameter(name).copy_(value)
    widths = initsweep_model(width, "pytorch_default", {})[1]
    scales = [multipliers(widths, cls, alpha)[n] for n, _ in ours.named_parameters()]
    make = functools.partial(cls, **kw)
    mu_opt = mu_cls(theirs.parameters(), **kw)
    copies = 2 if stacked else 1
    stack = {
        n: torch.stack([p.detach()] * copies).requires_grad_() for n, p in ours.named_parameters()
    }
    if stacked:
        other = functools.partial(cls, **{**kw, "lr": kw["lr"] * 3})
        opt = build_stacked_optimizer([make, other], list(stack.values()), [scales, scales])
    else:
        opt = build_optimizer(make, list(stack.values()), scales)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = torch.randn(32, IN, generator=g, dtype=torch.float64)
        y = torch.randint(0, OUT, (32,), generator=g)
        mu_opt.zero_grad()
        nn.functional.cross_entropy(theirs(x), y).backward()
        mu_opt.step()
        opt.zero_grad()
        losses = [
            nn.functional.cross_entropy(
                torch.func.functional_call(ours, {n: t[i] for n, t in stack.items()}, (x,)), y
            )
            for i in range(copies)
        ]
        sum(losses).backward()
        opt.step()
        for name, value in effective(theirs).items():
            assert torch.allclose(stack[name][0].detach(), value, rtol=1e-9, atol=1e-12), name


# --- through the job: both populations, and what is refused -----------------------------------


def _final_losses(out) -> list[float]:
    import json

    summary = json.loads((out / "summary.json").read_text())
    return [s["metrics"]["train/loss"] for s in summary["seeds"]]


@pytest.mark.slow
def test_a_mup_job_trains_the_same_stacked_and_sequential(make_cfg, tmp_path):
    from initsweep.job import run

    finals = {}
    for strategy in ("vectorized", "sequential"):
        out = tmp_path / strategy
        cfg = make_cfg(
            "init=mup", "model.hidden=[128,128]", "optimizer=adam", "optimizer.lr=0.01",
            "trainer.epochs=1", "trainer.shards=1", f"trainer.strategy={strategy}",
            output_dir=out,
        )  # fmt: skip
        run(cfg)
        finals[strategy] = _final_losses(out)
    assert finals["vectorized"] == pytest.approx(finals["sequential"], rel=1e-4)


@pytest.mark.parametrize(
    "overrides, says",
    [
        (["model=lstm", "dataset=adding"], "init=mup needs the model's width: declare which "
         "constructor key sets the model's width: model.width_key"),
        (["+model.output_layer=body.1"], "init=mup: out.weight maps a width (fan-in 64) to a "
         "fixed size (10) but is not the readout (model.output_layer='body.1')"),
        (["init.base=lsuv"], "init.base='lsuv' has no std formula"),
        (["model=gpt", "dataset=pydoc_chars", "dataset.limit=64"], "init=mup: the readout 'wte' "
         "is an input embedding too (a tied head)"),
        (["init.base_params={sd: 0.02}", "init.base=normal"], "init.base_params={'sd': 0.02} is "
         "invalid: normal takes ['gain', 'mean', 'std']"),
        (["init.base_width=0"], "init.base_width=0 is invalid: must be an integer >= 1"),
        (["+model.width_key=depth", "model=deep_mlp"], "init=mup: model.depth changes which "
         "parameters the model has"),
        (["+model.width_key=widht", "model=deep_mlp"], "model.width_key='widht' is not a key of "
         "the model's constructor"),
    ],
)  # fmt: skip
def test_what_mup_cannot_parametrise_is_refused_in_one_line(make_cfg, overrides, says):
    from initsweep.job import run

    with pytest.raises(ConfigError) as err:
        run(make_cfg("init=mup", "trainer.epochs=1", *overrides))
    assert says in str(err.value) and "\n" not in str(err.value)


def test_an_optimizer_without_mup_learning_rates_is_refused():
    from initsweep.init.mup_lr import kind_of

    with pytest.raises(ConfigError, match="optimizer 'LBFGS' has no μP learning rates; use one"):
        kind_of(torch.optim.LBFGS)


@pytest.mark.slow
def test_sp_and_mup_jobs_trained_as_one_population_match_each_alone(make_cfg, tmp_path):
    # one stack of both arms' copies, each copy with its own per-parameter learning rates
    from initsweep.job import job_spec, run_jobs
    from initsweep.job.group import group_jobs

    common = ["model.hidden=[128,128]", "optimizer=adam", "optimizer.lr=0.01", "seeds=[0,1]",
              "trainer.epochs=1", "trainer.shards=1", "trainer.strategy=vectorized"]  # fmt: skip

    def specs(where: str):
        return [job_spec(make_cfg(*common, f"init={init}", output_dir=tmp_path / where / init))
                for init in ("pytorch_default", "mup")]  # fmt: skip

    together = specs("together")
    assert group_jobs(together) == [[0, 1]]
    run_jobs(together)
    for spec in specs("alone"):
        run_jobs([spec])
    for init in ("pytorch_default", "mup"):
        alone = _final_losses(tmp_path / "alone" / init)
        assert _final_losses(tmp_path / "together" / init) == pytest.approx(alone, rel=1e-4)


@pytest.mark.parametrize("per_copy", [False, True], ids=["one-optimizer", "per-copy"])
@pytest.mark.parametrize("strategy", ["sequential", "vectorized"])
def test_mup_learning_rates_round_trip_through_a_checkpoint(tmp_path, strategy, per_copy):
    # μP's param groups (and per-copy numbers) survive state_dict -> weights-only file -> load
    from initsweep.train.metrics import loss_fn
    from initsweep.train.population import make_population

    widths = initsweep_model(128, "pytorch_default", {})[1]
    scales = multipliers(widths, torch.optim.Adam)

    def population(seed: int):
        torch.manual_seed(seed)
        models = [MLP((IN,), OUT, hidden=[128, 128]) for _ in range(2)]
        lrs = [0.01, 0.03] if per_copy else [0.01, 0.01]
        makers = [functools.partial(torch.optim.Adam, lr=lr) for lr in lrs]
        return make_population(models, makers, loss_fn("cross_entropy"), [1, 2],
                               strategy=strategy, scales=[scales, scales])  # fmt: skip

    x, y = torch.randn(32, IN), torch.randint(0, OUT, (32,))
    a = population(0)
    for _ in range(3):
        a.train_step(x, y)
    torch.save(a.state_dict(), tmp_path / "pop.pt")
    b = population(1)
    b.load_state_dict(torch.load(tmp_path / "pop.pt", weights_only=True))
    for _ in range(3):
        torch.testing.assert_close(a.train_step(x, y), b.train_step(x, y), rtol=0, atol=0)
