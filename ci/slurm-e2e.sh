#!/usr/bin/env bash
# End-to-end: a real one-node Slurm cluster runs a sweep's generated job array.
# Plans 6 tiny cells (one diverges on purpose), submits slurm.sbatch, waits, checks status and
# collect, resubmits the failed index with --array, and stops the daemons it started.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${IDCRISIS_DATA:?set IDCRISIS_DATA to a directory with mnist/ and fashion-mnist/}"
cargo build --release -q
bin=$PWD/target/release/idcrisis
work=$(mktemp -d /tmp/idcrisis-slurm-e2e.XXXXXX)
chmod 755 "$work"
state="$work/cluster"
trap 'ci/slurm-local.sh stop "$state"' EXIT
eval "$(ci/slurm-local.sh start "$state")"
echo "== cluster"; sinfo

cat > "$work/grid.toml" <<'TOML'
threads = 1
rho = [0.5]
[model]
arch = "cnn"
channels = 4
kernel = 3
[train]
steps = 30
[zip]
model.depth = [1, 2, 1, 2, 1, 2]
seed = [0, 0, 1, 1, 2, 2]
train.lr = [0.001, 0.001, 0.001, 0.001, 1e6, 0.001]
train.optimizer = ["adam", "adam", "adam", "adam", "gd", "adam"]
TOML
sw="$work/sweep"
"$bin" sweep plan "$work/grid.toml" --out "$sw" --cpus-per-task 1 --max-parallel 2 --time 00:05:00 --mem 1G
echo "== slurm.sbatch"; cat "$sw/slurm.sbatch"
mkdir -p "$sw/logs"

wait_job() { # jobid, seconds
  local id=$1 limit=$2 t=0
  while [ -n "$(squeue -h -j "$id" 2>/dev/null)" ]; do
    sleep 1; t=$((t + 1))
    if [ "$t" -ge "$limit" ]; then echo "job $id still running after ${limit}s" >&2; squeue; return 1; fi
  done
}

job=$(cd / && sbatch --parsable "$sw/slurm.sbatch")
echo "== submitted array job $job"
squeue
wait_job "$job" 300
echo "== finished"; scontrol show job "$job" 2>/dev/null | grep -E "JobState|ArrayTaskId" | head -20 || true

"$bin" sweep status "$sw"
status=$("$bin" sweep status "$sw" --format json)
python3 - "$status" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
assert s["total"] == 6, s
assert s["done"] == 5 and s["failed"] == 1 and s["missing"] == 0, s
assert s["failed_indices"] == [4], s
assert s["array"] == "--array=4", s
print("status ok:", s["array"])
PY
rows=$("$bin" sweep collect "$sw" --format csv 2>/dev/null | tail -n +2 | wc -l)
"$bin" sweep collect "$sw" --format table 2>&1 | cut -c1-160
[ "$rows" -eq 5 ] || { echo "collect gave $rows rows, expected 5" >&2; exit 1; }

# Resubmit just the failed cell; it fails again (it diverges), and nothing else runs.
job2=$(cd / && sbatch --parsable --array=4 "$sw/slurm.sbatch")
echo "== resubmitted index 4 as job $job2"
wait_job "$job2" 120
test -f "$sw/cells/$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[4])["id"])' "$sw/plan.jsonl")/error.json"
"$bin" sweep status "$sw"
echo "slurm e2e: ok"
