"""The two published checks of docs/tutorials/residual-init.md, through the CLI and the report's
comparisons, 3 seeds each (minutes on 2 cores: slow)."""

from __future__ import annotations

import math

import pytest

from initsweep.data.text import pydoc_chars
from initsweep.report.compare.engine import analyse
from initsweep.report.jobs import load_study
from tests.conftest import run_cli


def unigram_val_loss(bundle) -> float:
    """The val loss of predicting the training split's character frequencies everywhere."""
    counts = bundle.y_val.flatten().bincount(minlength=bundle.num_classes).double()
    return float(-(counts / counts.sum() * bundle.class_prior.clamp_min(1e-12).log()).sum())


def _sweep(tmp_path, *args):
    res = run_cli(
        "-m", *args, "trainer.progress=false", f"hydra.sweep.dir={tmp_path}", timeout=3000
    )
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = load_study(tmp_path).finished
    by_arm = {}
    for job in jobs:
        seeds = job.summary["seeds"]
        assert len(seeds) == 3
        finals = [s["metrics"].get("val/loss") for s in seeds if not s["diverged"]]
        by_arm[job.label] = (sum(s["diverged"] for s in seeds), finals)
    return jobs, by_arm


@pytest.mark.slow
def test_fixup_and_skipinit_train_a_32_block_residual_net_where_he_init_diverges(tmp_path):
    # Zhang et al. 2019; De & Smith 2020: no normalisation, 32 residual blocks
    jobs, arms = _sweep(tmp_path, "experiment=residual_without_norm", "model.depth=32")
    # He's standard init: every seed's loss at init is astronomic and it diverges at once
    assert arms["init=kaiming_normal"][0] == 3
    for scheme in ("fixup", "skipinit"):
        diverged, finals = arms[f"init={scheme}"]
        assert diverged == 0 and len(finals) == 3
        assert max(finals) < 0.5 * math.log(10)  # far below a guess's ln 10
    # the report's comparisons say so, seed by seed: every He seed diverged, none of the others
    rows = analyse(jobs).rows
    final = [r for r in rows if r.metric == "val/loss_final"]
    assert {r.label for r in final} == {"init=fixup", "init=skipinit"}
    assert all(r.baseline_label == "init=kaiming_normal" and r.n_diverged == (3, 0) for r in final)


@pytest.mark.slow
def test_deepnorm_and_rezero_train_a_24_block_transformer_where_post_ln_stalls(tmp_path):
    # Wang et al. 2022; Bachlechner et al. 2020: 24 blocks, Adam 1e-3 without warm-up
    jobs, arms = _sweep(tmp_path, "experiment=deep_post_ln")
    _, post = arms["arm=post_ln"]
    unigram = unigram_val_loss(pydoc_chars(block_size=32, limit=1000))  # 3.209 on CPython 3.11
    assert min(post) > unigram - 0.05  # post-LN learns the frequencies and no more
    rows = analyse(jobs).rows
    for arm in ("deepnorm", "rezero"):
        diverged, finals = arms[f"arm={arm}"]
        assert diverged == 0 and max(finals) < unigram - 0.2
        (row,) = [r for r in rows if r.metric == "val/loss_final" and r.label == f"arm={arm}"]
        # a clear difference, lower: the report's verdict on its primary metric
        assert row.baseline_label == "arm=post_ln" and row.clear and row.change()[2] < 0
