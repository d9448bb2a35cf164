"""Why a SLURM job is still PENDING, and whether it can ever start.

``squeue`` gives a pending job's reason code (``man squeue``, JOB REASON CODES). Most resolve by
themselves (``Resources``, ``Priority``, a group limit that frees up as other jobs end); some
never do, and SLURM keeps the job pending anyway: a request larger than any node of the
partition (``PartitionConfig``: 4 CPUs per task on 2-CPU nodes), a time limit above the
partition's, a per-job QOS or association limit, an account or QOS that is not valid, a node that
does not exist. :func:`never_starts` tells them apart; :func:`explain` names the resource and the
limit, from ``scontrol show job`` and the partition's nodes (``sinfo``).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

# reasons that no amount of waiting resolves, with what they mean
NEVER = {
    "PartitionConfig": "asks for more than any node of its partition has",
    "PartitionNodeLimit": "asks for more nodes than its partition allows",
    "PartitionTimeLimit": "asks for a longer time limit than its partition allows",
    "BadConstraints": "has constraints that no node satisfies",
    "InvalidAccount": "names an account that does not exist or is not the user's",
    "InvalidQOS": "names a QOS that does not exist or is not the user's",
    "QOSNotAllowed": "names a QOS its partition does not allow",
    "DependencyNeverSatisfied": "depends on a job that can no longer succeed",
}
# a per-job (or per-node) maximum or a minimum of the QOS or the association, e.g.
# QOSMaxCpuPerJobLimit, QOSMaxMemoryPerJob, AssocMaxWallDurationPerJobLimit, QOSMinGRES; the
# per-user and group limits (QOSMaxCpuPerUserLimit, AssocGrpCpuLimit) free up as jobs end
PER_JOB_LIMIT = re.compile(r"^(QOS|Assoc)(Max\w*Per(Job|Node)\w*|Min\w+)$")
RESOURCE = {"Cpu": "CPUs", "Mem": "memory", "Node": "nodes", "Wall": "time", "GRES": "GPUs/GRES"}
KEYS = {  # the launcher's setting each resource comes from (conf/hydra/launcher/slurm.yaml)
    "cpus": "resources.cpus_per_task",
    "mem": "resources.mem_gb",
    "time": "resources.timeout_min",
    "gpus": "resources.gpus_per_node",
}


@dataclass(frozen=True)
class Waiting:
    job: str  # the array's or the job's id, as squeue prints it (12_[0-2%3], 12_1, 13)
    reason: str
    nodes: tuple[str, ...] = ()  # ReqNodeNotAvail: the nodes it names as unavailable


def _run(*cmd: str) -> str:
    """A SLURM command's output; ``""`` when it fails (slurmctld busy, restarting)."""
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return res.stdout if res.returncode == 0 else ""


def pending(job_ids: list[str]) -> list[Waiting]:
    """The PENDING jobs among ``job_ids`` (array ids) with their reasons (``squeue``)."""
    out = _run("squeue", "-h", "-t", "PENDING", "-o", "%i|%r", "-j", ",".join(job_ids))
    found = []
    for line in out.splitlines():
        job, _, reason = line.partition("|")
        reason, _, detail = reason.strip().partition(",")
        nodes = re.findall(r"UnavailableNodes:(\S+)", detail)
        found.append(
            Waiting(job.strip(), reason, tuple(",".join(nodes).split(",")) if nodes else ())
        )
    return found


def missing_nodes(nodes: tuple[str, ...]) -> list[str]:
    """Of ``nodes``, those the cluster does not have (``sinfo`` lists every node it has)."""
    known = set(_run("sinfo", "-h", "-N", "-o", "%N").split())
    return [n for n in nodes if n and known and n not in known]


def never_starts(w: Waiting) -> bool:
    """Whether ``w``'s reason cannot resolve by itself."""
    if w.reason in NEVER or PER_JOB_LIMIT.match(w.reason):
        return True
    return w.reason == "ReqNodeNotAvail" and bool(missing_nodes(w.nodes))


def _fields(text: str) -> dict[str, str]:
    """``Key=Value`` pairs of a ``scontrol -o show`` line."""
    return dict(re.findall(r"(\S+?)=(\S*)", text))


def _mb(value: str) -> float:
    """A SLURM size (``16G``, ``24105M``, ``24105``: MB) in MB."""
    units = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}
    value = value.strip()
    return float(value[:-1]) * units[value[-1]] if value[-1:] in units else float(value or 0)


def too_big(partition: str | None, cpus: int, mem_mb: float) -> str | None:
    """Which of ``cpus`` and ``mem_mb`` per task exceeds every node of ``partition`` (``None``:
    the default one), in words; ``None`` if both fit."""
    args = ["-p", partition] if partition else []
    nodes = [ln.split("|") for ln in _run("sinfo", "-h", "-N", *args, "-o", "%c|%m").split()]
    if not nodes:
        return None
    name = f"partition {partition}" if partition else "the default partition"
    most_cpus, most_mb = max(int(c) for c, _ in nodes), max(_mb(m) for _, m in nodes)
    if cpus > most_cpus:
        return (
            f"each task asks for {cpus} CPUs ({KEYS['cpus']}={cpus}), and the nodes of {name} "
            f"have at most {most_cpus}"
        )
    if mem_mb > most_mb:
        return (
            f"each task asks for {mem_mb / 1024:.3g} GB ({KEYS['mem']}={mem_mb / 1024:.3g}), and "
            f"the nodes of {name} have at most {most_mb / 1024:.3g} GB"
        )
    return None


def explain(w: Waiting) -> str:
    """One line: the job, its reason, the resource it asks for and the limit it meets."""
    job_id = w.job.split("_")[0]
    lines = _run("scontrol", "-o", "show", "job", job_id).splitlines()
    job = _fields(lines[0]) if lines else {}
    head = f"SLURM cannot start job {job_id} ({w.reason})"
    if w.reason == "PartitionConfig":
        cpus, mem = int(job.get("MinCPUsNode") or 0), _mb(job.get("MinMemoryNode") or "0")
        why = (
            too_big(job.get("Partition"), cpus, mem)
            or f"it asks for {job.get('TRES', '?')}, which no node of its partition has"
        )
        return f"{head}: {why}"
    if w.reason == "PartitionTimeLimit":
        part = _fields(_run("scontrol", "-o", "show", "partition", job.get("Partition", "")))
        return (
            f"{head}: it asks for {job.get('TimeLimit', '?')} ({KEYS['time']}), and partition "
            f"{job.get('Partition', '?')} allows at most {part.get('MaxTime', '?')}"
        )
    if w.reason == "ReqNodeNotAvail":
        return f"{head}: it asks for node(s) {', '.join(missing_nodes(w.nodes))}, which the cluster does not have"
    if w.reason in NEVER:
        return f"{head}: it {NEVER[w.reason]} ({_request(job)})"
    words = [v for k, v in RESOURCE.items() if k in w.reason] or ["resources"]
    is_min = w.reason.removeprefix("QOS").removeprefix("Assoc").startswith("Min")
    verb = "fall below the minimum" if is_min else "exceed the per-job maximum"
    if w.reason.startswith("QOS"):
        qos = job.get("QOS", "?")
        fmt = "format=MaxTRESPerJob,MaxWallDurationPerJob,MaxTRESPerNode,MinTRESPerJob"
        limits = " ".join(_run("sacctmgr", "-n", "-P", "show", "qos", qos, fmt).split("|"))
        owner = f"QOS {qos}" + (f" ({limits.strip()})" if limits.strip() else "")
    else:
        owner = f"association (account {job.get('Account', '?')})"
    return f"{head}: the {words[0]} it asks for {verb} of its {owner}; it {_request(job)}"


def _request(job: dict[str, str]) -> str:
    return (
        f"asks for {job.get('TRES', '?')}, time {job.get('TimeLimit', '?')}, partition "
        f"{job.get('Partition', '?')}, account {job.get('Account', '?')}, QOS {job.get('QOS', '?')}"
    )
