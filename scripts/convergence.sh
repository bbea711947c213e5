#!/usr/bin/env bash
# Measure steps and seconds to reach the default stopping loss for the paper's CNNs (5x5, 128
# channels, depths 1-20) and FCNs (width 784, depths 1-6, ReLU and linear), with the defaults.
# Usage: scripts/convergence.sh OUTDIR [extra train flags...]   (prints a markdown table)
set -euo pipefail
out=${1:?usage: convergence.sh OUTDIR [flags]}; shift
bin=${IDCRISIS_BIN:-target/release/idcrisis}
mkdir -p "$out"
echo "| arch | depth | act | status | steps | final loss | seconds | ms/step |"
echo "|---|---|---|---|---|---|---|---|"
row() {
  local dir=$1
  python3 - "$dir" <<'PY'
import json, sys
r = json.load(open(sys.argv[1] + "/result.json"))
m = r["config"]["model"]
print(f"| {m['arch']} | {m['depth']} | {m['act']} | {r['status']} | {r['steps']} | {r['final_loss']:.2e} | {r['train_seconds']:.1f} | {r['ms_per_step']:.1f} |")
PY
}
for d in ${FCN_DEPTHS-1 2 3 4 5 6}; do
  for act in relu linear; do
    dir="$out/fcn-d$d-$act"; [ -f "$dir/result.json" ] || "$bin" train --arch fcn --depth "$d" --act "$act" --out "$dir" -q "$@" >/dev/null || true
    row "$dir"
  done
done
for d in ${CNN_DEPTHS-1 3 5 7 9 11 12 14 15 16 18 19 20}; do
  dir="$out/cnn-d$d"; [ -f "$dir/result.json" ] || "$bin" train --arch cnn --depth "$d" --out "$dir" -q "$@" >/dev/null || true
  row "$dir"
done
