#!/usr/bin/env bash
# Regenerate crates/idcrisis/tests/fixtures/torch_golden.json (needs python with torch + safetensors).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
: "${IDCRISIS_DATA:?set IDCRISIS_DATA}"
work=$(mktemp -d)
cat > "$work/cases.json" <<'JSON'
[
 {"name": "cnn-adam", "arch": "cnn", "depth": 3, "channels": 4, "kernel": 3, "act": "relu", "bias": true, "seed": 5, "optimizer": "adam", "lr": 0.001, "momentum": 0.0, "steps": 6, "full": true},
 {"name": "cnn-momentum", "arch": "cnn", "depth": 3, "channels": 4, "kernel": 5, "act": "relu", "bias": true, "seed": 6, "optimizer": "momentum", "lr": 0.01, "momentum": 0.9, "steps": 6, "full": true},
 {"name": "cnn-gd-linear", "arch": "cnn", "depth": 2, "channels": 3, "kernel": 3, "act": "linear", "bias": false, "seed": 7, "optimizer": "gd", "lr": 0.05, "momentum": 0.0, "steps": 6, "full": true},
 {"name": "fcn-adam", "arch": "fcn", "depth": 3, "width": 32, "act": "relu", "bias": true, "seed": 8, "optimizer": "adam", "lr": 0.0003, "momentum": 0.0, "steps": 6, "full": false}
]
JSON
cargo build --release -q
"$PY" - "$work" <<'PY'
import json, subprocess, sys
work = sys.argv[1]
for c in json.load(open(f"{work}/cases.json")):
    args = ["target/release/idcrisis", "train", "--arch", c["arch"], "--depth", str(c["depth"]), "--act", c["act"],
            "--seed", str(c["seed"]), "--steps", "0", "--dtype", "f64", "--out", f"{work}/{c['name']}", "-q"]
    args += ["--bias"] if c["bias"] else ["--no-bias"]
    if c["arch"] == "cnn":
        args += ["--channels", str(c["channels"]), "--kernel", str(c["kernel"])]
    else:
        args += ["--width", str(c["width"])]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
PY
"$PY" scripts/torch_golden.py "$IDCRISIS_DATA" "$work" crates/idcrisis/tests/fixtures/torch_golden.json
echo "wrote crates/idcrisis/tests/fixtures/torch_golden.json"
