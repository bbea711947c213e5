#!/usr/bin/env bash
# Render `idcrisis report` of small reproduce runs in a real headless Chromium and check that
# every image loads (naturalWidth > 0), that the page logs no errors, and (ci/report-contents.py)
# that every figure of the run directory and every summary table is on the page.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${IDCRISIS_DATA:?set IDCRISIS_DATA}"
command -v chromium >/dev/null || { echo "chromium not installed (apt-get install chromium)" >&2; exit 1; }
cargo build --release -q
bin=$PWD/target/release/idcrisis
work=$(mktemp -d /tmp/idcrisis-report.XXXXXX)
"$bin" reproduce all --micro --out "$work/all" -q >/dev/null
"$bin" report "$work/all"
profile=$(mktemp -d)
dom=$(timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$profile" \
  --virtual-time-budget=5000 --dump-dom "file://$work/all/report.html" 2>"$work/chromium.log")
body=$(printf '%s' "$dom" | grep -o '<body[^>]*>' | head -1)
echo "rendered: $body"
images=$(printf '%s' "$body" | sed -n 's/.*data-images="\([0-9]*\)".*/\1/p')
ok=$(printf '%s' "$body" | sed -n 's/.*data-images-ok="\([0-9]*\)".*/\1/p')
errors=$(printf '%s' "$body" | sed -n 's/.*data-errors="\([0-9]*\)".*/\1/p')
[ -n "$images" ] && [ "$images" -gt 0 ] || { echo "no images found in the report" >&2; exit 1; }
[ "$ok" = "$images" ] || { echo "only $ok of $images images loaded" >&2; exit 1; }
[ "$errors" = "0" ] || { echo "$errors script/console errors" >&2; exit 1; }
if grep -q 'CONSOLE' "$work/chromium.log"; then grep 'CONSOLE' "$work/chromium.log" >&2; echo "console output found" >&2; exit 1; fi
# Every figure of the run directory and every summary table is on the page; and the check can
# fail: the same page with one figure and one table removed must be refused.
printf '%s' "$dom" > "$work/dom.html"
ci/report-contents.py "$work/dom.html" "$work/all"
python3 - "$work/dom.html" "$work/broken.html" <<'PY'
import re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
dom = re.sub(r"<figure>.*?</figure>", "", dom, count=1, flags=re.S)
dom = re.sub(r"<table>.*?</table>", "", dom, count=1, flags=re.S)
open(sys.argv[2], "w", encoding="utf-8").write(dom)
PY
if ci/report-contents.py "$work/broken.html" "$work/all" 2>/dev/null; then
  echo "report-contents.py accepted a page with a figure and a table removed" >&2; exit 1
fi
echo "report browser check: ok ($ok images)"
# Passed: nothing to inspect (after a failure both stay).
rm -rf "$profile" "$work"
