#!/usr/bin/env bash
# Upload the offline W&B runs of a sweep (or of one job) from a machine with network, e.g. the
# cluster's login node: compute nodes write them offline into <job dir>/wandb/offline-run-*.
#   scripts/wandb-sync.sh outputs/multirun/2026-11-22/12-00-00          # every job's runs
#   scripts/wandb-sync.sh outputs/multirun/2026-11-22/12-00-00 -p proj  # extra `wandb sync` options
#   DRY_RUN=1 scripts/wandb-sync.sh outputs/multirun/2026-11-22/12-00-00  # only list them
# A requeued job resumed its runs under the same ids, so its pieces land in the same W&B runs.
set -euo pipefail
dir=${1:?usage: scripts/wandb-sync.sh <sweep or job dir> [wandb sync options]}
shift
[ -d "$dir" ] || { echo "wandb-sync: no such directory: $dir" >&2; exit 2; }
WANDB=${WANDB:-$(dirname "$0")/../.venv/bin/wandb}
[ -x "$WANDB" ] || WANDB=wandb
mapfile -t runs < <(find "$dir" -type d -name 'offline-run-*' -path '*/wandb/*' | sort)
if [ ${#runs[@]} -eq 0 ]; then
  echo "wandb-sync: no offline W&B runs under $dir (were the jobs run with tracker=wandb?)" >&2
  exit 1
fi
echo "wandb-sync: ${#runs[@]} offline runs under $dir"
if [ "${DRY_RUN:-0}" = 1 ]; then
  printf '%s\n' "${runs[@]}"
  exit 0
fi
"$WANDB" sync "$@" "${runs[@]}"
