#!/usr/bin/env bash
# Stop the localhost SLURM cluster that scripts/slurm-local-up.sh started: only the daemons it
# started (listed by pid file in /run/initsweep-slurm/started), by pid, in reverse start order.
# Idempotent: with nothing started it does nothing. Never uses pkill/killall.
set -euo pipefail
STATE=/run/initsweep-slurm
[ -s "$STATE/started" ] || { echo "slurm-local-down: nothing to stop"; exit 0; }
# reverse order: slurmd, slurmctld, slurmdbd, mariadbd, munged
left=()
while read -r pf; do
  [ -s "$pf" ] || continue
  pid=$(cat "$pf")
  kill -0 "$pid" 2>/dev/null || continue
  kill "$pid"
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "slurm-local-down: $pf ($pid) still running after 15 s" >&2
    left+=("$pf")
  else
    echo "slurm-local-down: stopped $(basename "$pf" .pid) ($pid)"
  fi
done < <(tac "$STATE/started")
# forget what is stopped; keep what still runs so that a second call can try again
if [ ${#left[@]} -eq 0 ]; then rm -f "$STATE/started"; else printf '%s\n' "${left[@]}" | tac >"$STATE/started"; fi
