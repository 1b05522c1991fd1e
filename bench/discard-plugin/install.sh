#!/usr/bin/env bash
# Builds and (re)installs the discard-only plugin that bench/drivers.ts uses as its floor.
# It is logship's plugin directory (plugin/, from `make plugin`: the same Node binary and
# libraries) with this program and logship's FIFO reader added and its own config.json.
# The copy is hard-linked; every file that changes is replaced, never written through.
# Usage (from the repository root): bench/discard-plugin/install.sh PLUGIN_NAME [KEY=value...]
#   (settings, e.g. READ_LINES=1000000: what its docker logs return)
#   or bench/discard-plugin/install.sh --assemble DIR: the plugin folder only, in DIR
set -euo pipefail

usage="usage: bench/discard-plugin/install.sh PLUGIN_NAME [KEY=value...] | --assemble DIR"
if [[ ${1:-} == --assemble ]]; then
  NAME=logship-discard
  OUT=${2:?$usage}
else
  NAME=${1:?$usage}
  OUT=build/discard-plugin
fi
DOCKER=${DOCKER:-docker}

[[ -f plugin/config.json && -x plugin/rootfs/usr/bin/node ]] \
  || { echo "discard-plugin: plugin/ is missing: run 'make plugin' first" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$(dirname "$OUT")"
cp -al plugin "$OUT"
R="$OUT/rootfs"
rm "$OUT/config.json" "$R/etc/logship-release"
cp bench/discard-plugin/config.json "$OUT/config.json"
mkdir -p "$R/app/bench/discard-plugin" "$R/app/src/ingest"
cp bench/discard-plugin/main.ts "$R/app/bench/discard-plugin/main.ts"
# The reader and what it imports (ingest/pressure.ts): the floor reads as logship does.
cp src/ingest/fifo-reader.ts src/ingest/pressure.ts "$R/app/src/ingest/"
# A file the copy left out fails here, not as a plugin the engine cannot enable.
"$R/usr/bin/node" --input-type=module -e "await import('$(realpath "$R")/app/src/ingest/fifo-reader.ts')" \
  || { echo "discard-plugin: $R/app does not load: copy what src/ingest/fifo-reader.ts imports" >&2; exit 1; }
# A layer unlike every other build's (see `make push`).
echo "logship-discard $NAME, built $(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" > "$R/etc/logship-release"
[[ ${1:-} != --assemble ]] || exit 0

if "$DOCKER" plugin inspect "$NAME" >/dev/null 2>&1; then
  "$DOCKER" plugin disable -f "$NAME" >/dev/null 2>&1 || true
  "$DOCKER" plugin rm -f "$NAME" >/dev/null
fi
"$DOCKER" plugin create "$NAME" "$OUT" >/dev/null
(( $# < 2 )) || "$DOCKER" plugin set "$NAME" "${@:2}"
"$DOCKER" plugin enable --timeout 0 "$NAME" >/dev/null
rm -rf "$OUT"
echo "discard-plugin: $NAME installed"
