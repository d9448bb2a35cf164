"""``hydra/launcher=slurm``: Hydra's submitit SLURM launcher, which also says when a job can
never start.

Hydra's launcher submits the array and waits for its results; a job SLURM keeps PENDING for a
reason that cannot resolve (4 CPUs per task on 2-CPU nodes: ``PartitionConfig``) made a sweep wait
for ever without a word. While this one waits it reads the jobs' pending reasons every
:data:`POLL_S` seconds (:mod:`.pending`): a reason that cannot resolve, seen twice in a row,
cancels the array and ends the sweep with one line (:class:`~initsweep.errors.ConfigError`,
exit 2) naming the resource and the limit; any other reason is logged once when it appears.
A request SLURM refuses at submission (16 GB on a smaller node) is one line too. Everything
else is Hydra's ``SlurmLauncher`` (hydra-submitit-launcher), so its config and contract hold.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import OmegaConf

from initsweep.errors import ConfigError

from .pending import KEYS, explain, never_starts, pending, too_big

log = logging.getLogger(__name__)

POLL_S = 5.0  # seconds between two looks at the queue (one squeue call for the whole array)


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        jobs = self._submit(job_overrides, initial_job_idx)
        self._wait(jobs)
        return [j.results()[0] for j in jobs]

    def _submit(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
        """Submit the array, as ``BaseSubmititLauncher.launch`` (hydra-submitit-launcher
        1.4.0rc3) does up to ``map_array``; return submitit's jobs."""
        import submitit

        assert self.config is not None and len(job_overrides) > 0
        init_keys = {"max_num_timeout", "python"}
        init_params = {"folder": self.params["submitit_folder"]}
        init_params.update(
            {f"{self._EXECUTOR}_{k}": v for k, v in self.params.items() if k in init_keys}
        )
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init_params)
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{
                k if k in base else f"{self._EXECUTOR}_{k}": v
                for k, v in self.params.items()
                if k not in init_keys | {"submitit_folder"}
            }
        )
        log.info(f"Submitit '{self._EXECUTOR}' sweep output dir : {self.config.hydra.sweep.dir}")
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            sweep_dir.chmod(int(str(self.config.hydra.sweep.mode), 8))
        params: list[Any] = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            params.append(
                (
                    list(overrides),
                    "hydra.sweep.dir",
                    idx,
                    f"job_id_for_{idx}",
                    Singleton.get_state(),
                )
            )
        try:
            return executor.map_array(self, *zip(*params))
        except submitit.core.utils.FailedJobError as e:  # sbatch refused the request
            raise ConfigError(refused(str(e), self.params)) from None

    def _wait(self, jobs: list) -> None:
        """Until every job is done: end the sweep on a reason that never resolves (after
        cancelling the array), log any other reason once."""
        ids = sorted({j.job_id.split("_")[0] for j in jobs})
        seen: set[str] = set()
        suspect: set[str] = set()  # never-reasons seen at the last look
        while not all(j.done() for j in jobs):
            waiting = pending(ids)
            never = [w for w in waiting if never_starts(w)]
            if never and {w.reason for w in never} & suspect:
                line = explain(never[0])
                subprocess.run(["scancel", *ids], capture_output=True, timeout=30)
                raise ConfigError(f"{line}; cancelled job {', '.join(ids)}")
            suspect = {w.reason for w in never}
            for w in waiting:
                if w.reason not in seen and w.reason != "None":
                    seen.add(w.reason)
                    log.info(f"SLURM job {w.job} is pending: {w.reason}")
            time.sleep(POLL_S)


def refused(message: str, params: dict) -> str:
    """sbatch's refusal (submitit's ``FailedJobError``) as one line: the request that no node
    can hold, or sbatch's own words and the request."""
    mem = float(params.get("mem_gb") or 0) * 1024
    why = too_big(params.get("partition"), int(params.get("cpus_per_task") or 1), mem)
    if why:
        return f"SLURM refused the jobs: {why}"
    said = [ln.removeprefix("sbatch: error: ") for ln in message.splitlines() if "error:" in ln]
    asked = ", ".join(
        f"{key}={params[key.partition('.')[2]]}"
        for key in KEYS.values()
        if params.get(key.partition(".")[2]) is not None
    )
    return f"SLURM refused the jobs ({'; '.join(said) or 'sbatch failed'}); they ask for {asked}"
