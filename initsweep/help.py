"""The apps' own ``--help``: the config groups a user picks, listed from Hydra's config loader.

Hydra's stock ``$APP_CONFIG_GROUPS`` also lists the internal ``schema`` groups (the typed
configs of :mod:`initsweep.config`), which are not options. The help template
(``initsweep/conf/hydra/help/initsweep.yaml``) calls the ``${initsweep_groups:}`` resolver below
instead: every group but ``schema`` and Hydra's own, plus the launchers and sweepers a user
picks with ``hydra/launcher=`` and ``hydra/sweeper=``. It reads the running app's config loader,
so the options of a ``--config-dir`` of your own are listed too.
"""

from __future__ import annotations

import textwrap

from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

HIDDEN = ("schema", "hydra")  # internal groups; hydra/launcher and hydra/sweeper are shown
SHOWN_HYDRA = ("hydra/launcher", "hydra/sweeper")
WIDTH = 99


def _shown(group: str) -> bool:
    return group in SHOWN_HYDRA or group.split("/")[0] not in HIDDEN


def config_groups() -> str:
    """``group: option, option, ...`` per user-facing group, wrapped at :data:`WIDTH`."""
    if not GlobalHydra.instance().is_initialized():  # resolved outside an app: nothing to list
        return "(run initsweep-train --help)"
    hydra = GlobalHydra.instance().hydra
    assert hydra is not None
    lines = []
    for group in sorted(g for g in hydra.list_all_config_groups() if _shown(g)):
        options = ", ".join(sorted(hydra.config_loader.get_group_options(group)))
        lines.append(
            textwrap.fill(
                f"{group}: {options}", WIDTH, initial_indent="  ", subsequent_indent="    "
            )
        )
    return "\n".join(lines)


OmegaConf.register_resolver("initsweep_groups", config_groups, replace=True)
