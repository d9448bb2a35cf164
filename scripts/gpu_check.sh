#!/usr/bin/env bash
# The one-shot GPU check (issue 27): under 8 minutes on one GPU, one JSON file and one markdown
# table in the output dir (default outputs/gpu_check/):
#   1. the cuda-marked tests (tests/test_cuda.py);
#   2. the per-step bench (scripts/bench.py) with --device cuda;
#   3. the whole-study bench (scripts/bench_study.py) with --device cuda;
#   4. the seed study's shape (scripts/bench_seed_study.py): EfficientNet-B1, 32x32x3 binary,
#      10 seeds, sequential against stacked, bf16 autocast off and on.
# Each part runs under its own time limit, so one that hangs or fails still leaves the others'
# results in the table. Installs nothing: it runs from the repository root with the first python
# that imports torch (.venv/bin/python, python3, python; PYTHON=... to choose).
#
#   scripts/gpu_check.sh                        # on the GPU machine
#   scripts/gpu_check.sh --device cpu --quick   # a dry run on a CPU: every part, tiny sizes
set -uo pipefail
cd "$(dirname "$0")/.."

device=cuda quick="" out=outputs/gpu_check
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device=${2:?--device needs cpu or cuda}; shift 2 ;;
        --quick) quick=--quick; shift ;;
        --out) out=${2:?--out needs a dir}; shift 2 ;;
        *) echo "usage: scripts/gpu_check.sh [--device cuda|cpu] [--quick] [--out DIR]" >&2; exit 2 ;;
    esac
done

py=${PYTHON:-}
if [ -z "$py" ]; then
    for candidate in .venv/bin/python python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import torch" 2>/dev/null; then
            py=$candidate
            break
        fi
    done
fi
if [ -z "$py" ]; then
    echo "gpu_check: no python that imports torch (set PYTHON=...)" >&2
    exit 2
fi
mkdir -p "$out"
: > "$out/parts.jsonl"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # initsweep from this checkout, installed or not

# part NAME SECONDS CMD...: run one part under its time limit; its output goes to NAME.log
part() {
    local name=$1 limit=$2 start rc seconds
    shift 2
    echo "gpu_check: $name (at most ${limit} s)"
    start=$(date +%s.%N)
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    rc=$?
    seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
    printf '{"part": "%s", "rc": %d, "seconds": %s, "limit": %d}\n' \
        "$name" "$rc" "$seconds" "$limit" >>"$out/parts.jsonl"
    [ "$rc" -eq 0 ] || echo "gpu_check: $name failed (rc $rc), see $out/$name.log" >&2
}

# the limits add up to 7.5 minutes on the GPU; a dry run on a shared CPU gets room instead
if [ -n "$quick" ]; then  # every part at its smallest
    bench=(--quick --models mlp,resnet18) study=(--quick --schemes 2) seed=(--quick)
    limits=(600 600 600 600)
else
    bench=(--rounds 2) study=(--rounds 2) seed=()
    limits=(120 110 150 70)
fi
export PYTHONUNBUFFERED=1  # a part stopped at its limit still leaves its log
part tests "${limits[0]}" "$py" -m pytest tests/test_cuda.py -m cuda -q -p no:cacheprovider \
    --junitxml="$out/tests.xml"
part bench "${limits[1]}" "$py" scripts/bench.py --device "$device" "${bench[@]}" \
    --out "$out/bench.json"
part study "${limits[2]}" "$py" scripts/bench_study.py --device "$device" "${study[@]}" \
    --out "$out/study.json"
part seed_study "${limits[3]}" "$py" scripts/bench_seed_study.py --device "$device" "${seed[@]}" \
    --out "$out/seed_study.json"
"$py" scripts/gpu_report.py "$out"
