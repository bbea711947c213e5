#!/usr/bin/env bash
# End-to-end: a real one-node Slurm cluster runs a sweep's generated job array, following exactly the
# README's steps: `sweep plan`, `sbatch DIR/slurm.sbatch`, `sweep status`, then the `resubmit:` line
# that status prints, run as printed. Nothing else touches the sweep directory (no mkdir of logs/).
#
# Six tiny cells: index 4 trains on a PNG that does not exist at the first submission (it fails,
# then succeeds once the test writes the file); index 5 diverges on purpose (it fails every time).
# After the resubmission: cell 4 must be DONE, its task log must show the run, cell 5 must have
# run again (fresh log, still failed), and the four cells done in the first job must be
# byte-identical (hashed before and after).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${IDCRISIS_DATA:?set IDCRISIS_DATA to a directory with mnist/ and fashion-mnist/}"
cargo build --release -q
bin=$PWD/target/release/idcrisis
work=$(mktemp -d /tmp/idcrisis-slurm-e2e.XXXXXX)
chmod 755 "$work"
state="$work/cluster"
# The cluster stops whatever happens; the work directory is removed only after a pass (kept for
# inspection after a failure).
passed=0
trap 'ci/slurm-local.sh stop "$state"; if [ "$passed" = 1 ]; then rm -rf "$work"; fi' EXIT
eval "$(ci/slurm-local.sh start "$state")"
echo "== cluster"; sinfo

late="$work/late.png"
cat > "$work/grid.toml" <<TOML
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
train.lr = [0.001, 0.001, 0.001, 0.001, 0.001, 1e6]
train.optimizer = ["adam", "adam", "adam", "adam", "adam", "gd"]
train_image = ["mnist:train:0", "mnist:train:0", "mnist:train:0", "mnist:train:0", "$late", "mnist:train:0"]
TOML
sw="$work/sweep"
# README: idcrisis sweep plan FILE --out DIR
"$bin" sweep plan "$work/grid.toml" --out "$sw" --cpus-per-task 1 --max-parallel 2 --time 00:05:00 --mem 1G
echo "== slurm.sbatch"; cat "$sw/slurm.sbatch"

wait_job() { # jobid, seconds
  local id=$1 limit=$2 t=0
  while [ -n "$(squeue -h -j "$id" 2>/dev/null)" ]; do
    sleep 1; t=$((t + 1))
    if [ "$t" -ge "$limit" ]; then echo "job $id still running after ${limit}s" >&2; squeue; return 1; fi
  done
}
cell_dir() { python3 -c 'import json,sys; print(sys.argv[2] + "/cells/" + json.loads(open(sys.argv[1]).readlines()[int(sys.argv[3])])["id"])' "$sw/plan.jsonl" "$sw" "$1"; }

# README: sbatch DIR/slurm.sbatch
job=$(cd / && sbatch --parsable "$sw/slurm.sbatch")
echo "== submitted array job $job"
squeue
wait_job "$job" 300
echo "== finished"; scontrol show job "$job" 2>/dev/null | grep -E "JobState|ArrayTaskId" | head -20 || true
ls "$sw/logs"
for i in 0 1 2 3 4 5; do
  test -f "$sw/logs/${job}_$i.out" || { echo "no Slurm log for task $i: did the task start at all?" >&2; exit 1; }
done

# README: idcrisis sweep status DIR
"$bin" sweep status "$sw"
status=$("$bin" sweep status "$sw" --format json)
python3 - "$status" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
assert s["total"] == 6, s
assert s["done"] == 4 and s["failed"] == 2 and s["missing"] == 0, s
assert s["failed_indices"] == [4, 5], s
assert s["array"] == "--array=4-5", s
assert "IDCRISIS_RETRY_FAILED=1" in s["resubmit"], s
print("status ok:", s["resubmit"])
PY
rows=$("$bin" sweep collect "$sw" --format csv 2>/dev/null | tail -n +2 | wc -l)
"$bin" sweep collect "$sw" --format table 2>&1 | cut -c1-160
[ "$rows" -eq 4 ] || { echo "collect gave $rows rows, expected 4" >&2; exit 1; }

hash_done() { for i in 0 1 2 3; do (cd "$(cell_dir $i)" && find . -type f | sort | xargs sha256sum); done | sha256sum; }
before=$(hash_done)

# Fix the cause of cell 4's failure: write the PNG it trains on (a 28x28 gray gradient).
python3 - "$late" <<'PY'
import struct, sys, zlib
w = h = 28
raw = b"".join(b"\0" + bytes((x * 9 + y * 3) % 256 for x in range(w)) for y in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY

# README: run the `resubmit:` line that `sweep status` printed, as printed.
line=$("$bin" sweep status "$sw" | sed -n 's/^resubmit: //p')
echo "== resubmitting: $line"
case "$line" in sbatch\ *) ;; *) echo "status printed no sbatch resubmit line" >&2; exit 1;; esac
job2=$(cd / && eval "${line/sbatch /sbatch --parsable }")
echo "== resubmitted as job $job2"
wait_job "$job2" 120
"$bin" sweep status "$sw"
test -f "$(cell_dir 4)/DONE" || { echo "cell 4 is not DONE after the resubmission" >&2; cat "$sw/logs/${job2}"_4.* >&2 || true; exit 1; }
test ! -e "$(cell_dir 4)/error.json" || { echo "cell 4 still has error.json" >&2; exit 1; }
grep -q "cell 4 done" "$sw/logs/${job2}_4.out" || { echo "the task log does not show cell 4's run:" >&2; cat "$sw/logs/${job2}"_4.* >&2; exit 1; }
# Cell 5 ran again (it diverges again): its log says so, and it wrote a new error.json.
grep -q "cell 5 failed:" "$sw/logs/${job2}_5.out" || { echo "the task log does not show cell 5's rerun:" >&2; cat "$sw/logs/${job2}"_5.* >&2; exit 1; }
test -f "$(cell_dir 5)/error.json"
[ "$(hash_done)" = "$before" ] || { echo "a finished cell changed during the resubmission" >&2; exit 1; }
test ! -e "$sw/logs/${job2}_0.out" || { echo "the resubmission ran a done cell" >&2; exit 1; }
"$bin" sweep status "$sw" --format json | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["done"]==5 and s["failed_indices"]==[5], s'
echo "slurm e2e: ok"
passed=1
