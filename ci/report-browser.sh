#!/usr/bin/env bash
# Render `idcrisis report` of small reproduce runs in a real headless Chromium and check that
# every image loads (naturalWidth > 0) and that the page logs no errors.
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
echo "report browser check: ok ($ok images)"
rm -rf "$profile"
