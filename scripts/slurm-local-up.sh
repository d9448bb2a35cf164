#!/usr/bin/env bash
# Start a single-node SLURM cluster on localhost (Debian 12, root, no systemd needed), with run
# accounting (MariaDB + slurmdbd) so that submitit notices cancelled and killed jobs.
#
#   sudo scripts/slurm-local-up.sh        # idempotent: a daemon already running is left alone
#                                         # also writes initsweep/conf/local/default.yaml (below)
#   sudo scripts/slurm-local-down.sh      # stops only what this script started
#
#   INSTALL=0     never run apt (fail if the packages are missing)
#   ACCOUNTING=0  skip slurmdbd + MariaDB (then submitit can hang on a cancelled job)
#
# Recipe and pitfalls: docs/how-to/slurm.md. The daemons this script started are
# listed (by pid file) in $STATE/started; slurm-local-down.sh stops exactly those.
set -euo pipefail
INSTALL=${INSTALL:-1}
ACCOUNTING=${ACCOUNTING:-1}
STATE=/run/initsweep-slurm
LOG=/var/log/slurm

say() { echo "slurm-local-up: $*"; }
fail() { echo "slurm-local-up: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (it installs packages and starts daemons as root)"
[ -r /etc/debian_version ] || fail "needs Debian (apt packages slurmctld, slurmd, munge)"
t0=$(date +%s%N)
elapsed() { local ds=$((($(date +%s%N) - t0) / 100000000)); echo "$((ds / 10)).$((ds % 10)) s"; }

# --- packages (8 debs without accounting, 32 with; --no-install-recommends keeps it lean) -------
PKGS="slurmctld slurmd slurm-client munge"
[ "$ACCOUNTING" = 1 ] && PKGS="$PKGS slurmdbd mariadb-server"
missing=$(for p in $PKGS; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null \
  | grep -q 'install ok installed' || echo "$p"; done)
if [ -n "$missing" ]; then
  [ "$INSTALL" = 1 ] || fail "packages missing and INSTALL=0: $(echo $missing)"
  say "installing $(echo $missing) with apt"
  apt-get update -qq
  # policy-rc.d may print "denied execution of start": harmless, we start the daemons by hand
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
    >"/tmp/slurm-local-apt.log" 2>&1 || { tail -20 /tmp/slurm-local-apt.log; fail "apt failed"; }
  say "packages installed after $(elapsed)"
fi

mkdir -p "$STATE" /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$LOG"
touch "$STATE/started"

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
started() { grep -qxF "$1" "$STATE/started" || echo "$1" >>"$STATE/started"; }
wait_for() { for _ in $(seq 1 150); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }
node_up() { sinfo -h -n localhost -o %t | grep -qE '^(idle|mix|alloc)$'; }

# --- config (rewritten only while slurmctld is down, so a running cluster is never disturbed) ---
if ! alive /run/slurmctld.pid; then
  # this machine's exact topology and RealMemory, named "localhost" (independent of the hostname)
  NODELINE=$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]*/NodeName=localhost/')
  if [ "$ACCOUNTING" = 1 ]; then
    ACCT=$'AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=localhost'
  else
    ACCT="AccountingStorageType=accounting_storage/none"
  fi
  # linuxproc/none: the cgroup plugins fail without a freezer cgroup; DefMemPerCPU lets jobs run
  # side by side; KillWait=5 makes scancel bite quickly; batch_sched_delay=0 starts arrays at once
  cat >/etc/slurm/slurm.conf <<CONF
ClusterName=localcluster
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerType=sched/backfill
ReturnToService=2
KillWait=5
SchedulerParameters=batch_sched_delay=0
MailProg=/bin/true
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
$ACCT
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.log
$NODELINE State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
fi

# --- munge ----------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then  # Debian's postinst normally creates it
  mungekey --create --force
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
fi
if ! alive /run/munge/munged.pid; then
  install -d -o munge -g munge -m 0755 /run/munge  # /run is not populated without systemd
  # --force: a munged killed with -9 (a session that ended) leaves its socket and lock behind
  runuser -u munge -- /usr/sbin/munged --force </dev/null >>"$LOG/daemons.log" 2>&1
  started /run/munge/munged.pid
fi
munge -n | unmunge >/dev/null || fail "munge does not work"

# --- accounting: MariaDB + slurmdbd -----------------------------------------------------------
if [ "$ACCOUNTING" = 1 ]; then
  if ! alive /run/mysqld/mysqld.pid; then
    install -d -o mysql -g root -m 0755 /run/mysqld
    setsid /usr/sbin/mariadbd --user=mysql --pid-file=/run/mysqld/mysqld.pid \
      >"$LOG/mariadbd.log" 2>&1 </dev/null &
    wait_for mysqladmin ping || fail "MariaDB did not start (see $LOG/mariadbd.log)"
    wait_for test -s /run/mysqld/mysqld.pid
    started /run/mysqld/mysqld.pid
  fi
  mysql -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  if ! alive /run/slurmdbd.pid; then
    cat >/etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=/run/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
CONF
    chmod 600 /etc/slurm/slurmdbd.conf  # slurmdbd refuses anything but 0600
    slurmdbd </dev/null >>"$LOG/daemons.log" 2>&1
    started /run/slurmdbd.pid
  fi
  wait_for sacctmgr -n list cluster || fail "slurmdbd did not answer (see $LOG/slurmdbd.log)"
fi

# --- slurmctld, slurmd ------------------------------------------------------------------------
if ! alive /run/slurmctld.pid; then
  slurmctld </dev/null >>"$LOG/daemons.log" 2>&1  # registers the cluster with slurmdbd by itself
  started /run/slurmctld.pid
fi
if ! alive /run/slurmd.pid; then
  slurmd -N localhost </dev/null >>"$LOG/daemons.log" 2>&1
  started /run/slurmd.pid
fi
wait_for node_up || { sinfo -N -l || true; fail "the node did not come up (see $LOG/slurmd.log)"; }
say "cluster up after $(elapsed): $(sinfo -h -o '%P %a %D %t %N' | head -1)"

# --- initsweep's `local` config for this node, so `hydra/launcher=slurm` runs here as written ---
# slurm.yaml asks for 4 CPUs and 16 GB per task; a smaller node keeps such jobs PENDING. Written
# only where no other local config is (its second line marks it as ours; remove it to keep edits)
LOCAL="$(cd "$(dirname "$0")/.." && pwd)/initsweep/conf/local/default.yaml"
MARK="# written by scripts/slurm-local-up.sh for this machine's SLURM node"
CPUS=$(sinfo -h -N -n localhost -o %c | head -1)
MEM_MB=$(sinfo -h -N -n localhost -o %m | head -1)
MEM_GB=$((MEM_MB / 1024 / CPUS)); [ "$MEM_GB" -ge 1 ] || MEM_GB=1
if [ ! -e "$LOCAL" ] || [ "$(sed -n 2p "$LOCAL")" = "$MARK" ]; then
  cat >"$LOCAL" <<YAML
# @package _global_
$MARK
# the node: $CPUS CPUs, $MEM_MB MB; one job per core, the memory shared evenly
resources:
  cpus_per_task: 1
  mem_gb: $MEM_GB
YAML
  chown --reference="$(dirname "$LOCAL")" "$LOCAL"
  say "wrote $LOCAL: resources.cpus_per_task=1, resources.mem_gb=$MEM_GB"
else
  say "$LOCAL is yours: for this node set resources.cpus_per_task=1, resources.mem_gb=$MEM_GB in it"
fi
