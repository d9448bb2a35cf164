"""The residual-era models and the token data: they compose, train, stack, and say where their
residual branches are."""

from __future__ import annotations

import copy
import functools
import json
import math

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir

from initsweep.config import CONF_DIR
from initsweep.data.bundle import IGNORE_INDEX
from initsweep.data.text import copy_task, decode, pydoc_chars, pydoc_text, vocabulary
from initsweep.errors import ConfigError
from initsweep.init.residual import ResidualBranch, branches
from initsweep.job import probe, run
from initsweep.job.build import build
from initsweep.models import GPT, MLP, ResidualMLP, ResNet
from initsweep.train.metrics import evaluate, loss_fn
from initsweep.train.population import SequentialPopulation, make_population

CE = loss_fn("cross_entropy", tokens=True)  # these tests train on token targets
ADAM = functools.partial(torch.optim.Adam, lr=1e-2)


def _gpt(**kw):
    return GPT((12,), 10, **{"depth": 2, "width": 16, "heads": 2, **kw})


@pytest.mark.parametrize("norm", ["pre", "post", "none"])
@pytest.mark.parametrize("tied", [True, False])
def test_gpt_maps_ids_to_logits_per_position_and_is_causal(norm, tied):
    torch.manual_seed(0)
    m = _gpt(norm=norm, tied=tied).eval()
    x = torch.randint(0, 10, (3, 12))
    out = m(x)
    assert out.shape == (3, 12, 10)
    # changing token 5 changes no logit before position 5 (the mask is causal), and some after
    x2 = x.clone()
    x2[:, 5] = (x2[:, 5] + 1) % 10
    out2 = m(x2)
    assert torch.equal(out[:, :5], out2[:, :5])
    assert not torch.allclose(out[:, 5:], out2[:, 5:])
    # a final norm only before a pre-LN head; a tied head is the token embedding
    assert (m.ln_f is not None) == (norm == "pre")
    assert m.output_layer == ("wte" if tied else "head")
    assert not list(m.buffers()), "buffers keep a model from stacking"


def test_tied_head_is_the_embedding_transposed():
    torch.manual_seed(0)
    m = _gpt(norm="none").eval()
    h = m.wte(torch.tensor([[1, 2]])) + m.wpe(torch.arange(2))
    for block in m.blocks:
        h = block(h)
    torch.testing.assert_close(m(torch.tensor([[1, 2]])), h @ m.wte.weight.t())


def test_gpt_declares_two_branches_per_block():
    m = _gpt(branch_gain=True)
    found = branches(m, "fixup")
    assert [b.block for b in found] == [0, 0, 1, 1]
    assert found[0] == ResidualBranch(
        0, ("blocks.0.attn.v", "blocks.0.attn.proj"), "blocks.0.gain", "blocks.0",
        ("blocks.0.attn.q", "blocks.0.attn.k"),
    )  # fmt: skip
    assert found[1].layers == ("blocks.0.mlp.fc", "blocks.0.mlp.proj")
    # the gain and the skip scale enter the forward: at g = 0 a block is the identity
    with torch.no_grad():
        for block in m.blocks:
            block.gain.zero_()
    m.eval()
    x = torch.randint(0, 10, (2, 12))
    h = m.wte(x) + m.wpe(torch.arange(12))
    torch.testing.assert_close(m(x), m.ln_f(h) @ m.wte.weight.t())


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: ResidualMLP((64,), 10, depth=3, width=8, branch_gain=True), (64,)),
        (lambda: ResNet((1, 8, 8), 10, blocks=1, channels=(4, 8), branch_gain=True), (1, 8, 8)),
    ],
)
def test_residual_nets_are_the_identity_plus_branches(make, shape):
    m = make()
    found = branches(m, "skipinit")
    assert len(found) == len(m.blocks) and all(len(b.layers) == 2 for b in found)
    assert all(b.gain == f"blocks.{b.block}.gain" for b in found)
    # without a norm the convs keep their biases (the scalar biases of Fixup's Rule 3)
    assert all(m.get_submodule(name).bias is not None for b in found for name in b.layers)
    x = torch.randn(2, *shape)
    assert m(x).shape == (2, 10)


def test_resnet_downsamples_with_a_parameter_free_shortcut():
    m = ResNet((1, 8, 8), 10, blocks=2, channels=(4, 8, 16))
    strides = [b.stride for b in m.blocks]
    assert strides == [1, 1, 2, 1, 2, 1]
    assert m.out.in_features == 16
    x = torch.randn(1, 4, 8, 8)
    # option A: subsample, then zero channels
    block = m.blocks[2]
    with torch.no_grad():
        block.conv2.weight.zero_()
        block.conv2.bias.zero_()
    torch.testing.assert_close(block(x)[:, 4:], torch.zeros(1, 4, 4, 4))
    torch.testing.assert_close(block(x)[:, :4], x[..., ::2, ::2].relu())


def test_a_model_without_branches_is_refused_in_one_line():
    with pytest.raises(ConfigError) as err:
        branches(MLP((4,), 2), "fixup")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("init.name='fixup' needs the model's residual")
    assert "residual_branches()" in msg and "docs/tutorials/residual-init.md" in msg


@pytest.mark.parametrize(
    "bad, what",
    [
        (ResidualBranch(0, ("nope",)), "'nope', which is not a layer"),
        (ResidualBranch(0, ("fc",), gain="fc.weight"), "not a one-element parameter"),
        (ResidualBranch(0, ("fc",), skip="fc"), "not a module with a float skip_scale"),
    ],
)
def test_a_wrong_declaration_names_what_is_wrong(bad, what):
    class Declares(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 3)

        def residual_branches(self):
            return [bad]

    with pytest.raises(ConfigError, match=what):
        branches(Declares(), "fixup")


def test_gpt_copies_stack_through_vmap_with_the_numbers_of_one_at_a_time():
    torch.manual_seed(0)
    models = [_gpt(branch_gain=True).double() for _ in range(2)]
    g = torch.Generator().manual_seed(1)
    x, y = torch.randint(0, 10, (32, 12), generator=g), torch.randint(0, 10, (32, 12), generator=g)
    y[:, :3] = IGNORE_INDEX
    vec = make_population(copy.deepcopy(models), ADAM, CE, [0, 1], "vectorized")
    seq = SequentialPopulation(models, ADAM, CE, [0, 1])
    assert vec.strategy == "vectorized"
    for i in range(3):
        batch = slice(8 * i, 8 * i + 8)
        torch.testing.assert_close(
            vec.train_step(x[batch], y[batch]),
            seq.train_step(x[batch], y[batch]),
            rtol=0,
            atol=1e-10,
        )
    torch.testing.assert_close(vec.predict(x), seq.predict(x), rtol=0, atol=1e-10)


def test_token_loss_is_cross_entropy_over_the_scored_tokens():
    g = torch.Generator().manual_seed(0)
    out = torch.randn(2, 5, 7, 4, generator=g)  # 2 copies, 5 sequences of 7 tokens, V = 4
    y = torch.randint(0, 4, (5, 7), generator=g)
    y[:, :3] = IGNORE_INDEX
    for copy_out, got in zip(out, CE(out, y)):
        want = F.cross_entropy(copy_out.reshape(-1, 4), y.reshape(-1), ignore_index=IGNORE_INDEX)
        torch.testing.assert_close(got, want)
    metrics = evaluate(out[0], y, "tokens", "cross_entropy", 1.0)
    keep = y != IGNORE_INDEX
    assert float(metrics["acc"]) == pytest.approx(
        float((out[0].argmax(-1) == y)[keep].double().mean())
    )


def test_pydoc_chars_are_next_character_windows_of_the_docs():
    text = pydoc_text()
    chars = vocabulary(text)
    assert len(text) > 400_000 and text.isascii() and "\n" in chars and "a" in chars
    b = pydoc_chars(block_size=32)
    assert b.task == "tokens" and b.num_outputs == len(chars)
    assert torch.equal(b.x_train[:, 1:], b.y_train[:, :-1])  # targets are the inputs shifted
    # validation is the end of the text, in one piece
    tail = decode(torch.cat([b.x_val[-1], b.y_val[-1, -1:]]), chars)
    assert tail in text[-2 * 33 :]
    assert pydoc_chars(block_size=32, limit=50).x_train.shape == (50, 32)


def test_copy_task_scores_only_the_answer():
    b = copy_task(length=4, symbols=5, samples=20)
    x, y = b.x_train, b.y_train
    assert x.shape == y.shape == (16, 8) and b.num_classes == 6
    assert (y[:, :4] == IGNORE_INDEX).all() and (x[:, 4] == 5).all()
    torch.testing.assert_close(y[:, 4:], x[:, :4])  # the answer repeats what was read
    assert b.class_prior[5] == 0  # the separator is never a scored target


def _compose(*overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR)):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize("name", ["gpt", "residual_mlp", "resnet"])
def test_model_yaml_composes_and_builds(name):
    cfg = _compose(f"model={name}")
    shape = {"gpt": (64,), "residual_mlp": (64,), "resnet": (1, 8, 8)}[name]
    model = build(cfg.model)(input_shape=shape, out_features=10)
    assert branches(model, "fixup")


def test_a_gpt_on_images_is_refused_naming_the_model():
    with pytest.raises(ConfigError, match=r"^model='gpt' is invalid: needs token ids"):
        GPT((1, 8, 8), 10)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["sequential", "vectorized"])
def test_gpt_trains_on_the_char_lm_and_starts_at_ln_v(make_cfg, tmp_path, strategy):
    cfg = make_cfg(
        "dataset=pydoc_chars", "dataset.limit=64", "dataset.block_size=16", "model=gpt",
        "model.depth=1", "model.width=16", "model.heads=2", "init=normal", "init.std=0.001",
        "optimizer=adam", "trainer.epochs=1", "trainer.batch_size=16", "seeds=[0,1]",
        f"trainer.strategy={strategy}",
    )  # fmt: skip
    assert math.isfinite(run(cfg))
    init = json.loads((tmp_path / "init.json").read_text())
    uniform = math.log(len(vocabulary(pydoc_text())))
    for seed in init["seeds"]:
        # a zero output bias predicts the uniform distribution over the characters
        assert seed["expected_loss"] == pytest.approx(uniform, abs=1e-9)
        assert seed["measured_loss"] == pytest.approx(uniform, abs=1e-3)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["strategy"] == strategy
    assert all(s["metrics"]["val/loss"] < uniform for s in summary["seeds"])


def test_copy_task_prior_bias_is_refused_for_the_unscored_separator(make_cfg):
    # the separator is never a target: log 0 is no bias, the prior rule says so
    cfg = make_cfg("dataset=copy", "model=gpt", "model.depth=1", "model.width=8", "model.heads=1",
                   "model.tied=false", "model.head_bias=true", "bias=prior")  # fmt: skip
    with pytest.raises(ConfigError, match="a class has no training samples"):
        run(cfg)


@pytest.mark.slow
def test_char_lm_prior_bias_starts_at_the_unigram_entropy(make_cfg, tmp_path):
    # the probe: step 0 only (every window, so that every character has a prior)
    probe(make_cfg(
        "dataset=pydoc_chars", "dataset.limit=null", "dataset.block_size=16", "model=gpt",
        "model.depth=1", "model.width=8", "model.heads=1", "model.tied=false",
        "model.head_bias=true", "init=zeros", "bias=prior", "seeds=[0]",
    ))  # fmt: skip
    prior = pydoc_chars(block_size=16).class_prior
    seed = json.loads((tmp_path / "init.json").read_text())["seeds"][0]
    unigram = float(-(prior * prior.log()).sum())
    assert seed["expected_loss"] == pytest.approx(unigram, abs=1e-9)
    assert seed["measured_loss"] == pytest.approx(unigram, abs=1e-6)  # zero weights: exact
    assert unigram < math.log(len(prior)) - 1
