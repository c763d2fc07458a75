#!/usr/bin/env bash
# Builds gopay into DIR (default: the project's .cache/bin), only when its sources changed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$HERE/../../.cache/bin}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
sum="$(cat "$HERE"/*.go "$HERE/go.mod" "$HERE/go.sum" | sha256sum | cut -d' ' -f1)"
if [ -x "$OUT/gopay" ] && [ "$(cat "$OUT/.gopay.sha256" 2>/dev/null)" = "$sum" ]; then
    exit 0
fi
command -v go >/dev/null 2>&1 || { echo "go not found; install Go 1.22 or newer" >&2; exit 1; }
echo "building gopay (examples/go-payments) into $OUT" >&2
(cd "$HERE" && CGO_ENABLED=0 go build -trimpath -o "$OUT/gopay.tmp" . && mv "$OUT/gopay.tmp" "$OUT/gopay")
echo "$sum" > "$OUT/.gopay.sha256"
