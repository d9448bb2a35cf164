"""initsweep: how initialization changes training.

The command line (``initsweep-train``, ``initsweep-probe``, ``initsweep-report``) runs studies;
as a library, :func:`initialize` and :func:`expected_loss_at_init` (:mod:`initsweep.api`)
initialise any ``nn.Module`` in a training loop of your own. They are imported on first use,
so ``import initsweep.report`` stays free of torch.
"""

__all__ = ["expected_loss_at_init", "initialize"]


def __getattr__(name: str):
    if name in __all__:
        from initsweep import api

        return getattr(api, name)
    raise AttributeError(f"module 'initsweep' has no attribute {name!r}")
