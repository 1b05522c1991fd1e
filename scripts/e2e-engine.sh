#!/usr/bin/env bash
# The end-to-end suite on one Docker engine, which this script starts and stops again:
#
#   scripts/e2e-engine.sh ENGINE WORK_DIR [TEST_FILE...]
#
# ENGINE is one of
#   20.10  the machine's dockerd (Debian bookworm's docker.io 20.10, the oldest engine supported)
#   28.5   Debian unstable's docker.io 28.5 with containerd 2, unpacked by scripts/fetch-engine.sh
#          into build/engines/28.5 (the machine's runc and docker-init)
# It starts dockerd on the default socket, so it runs where no other engine does: in namespaces
# of its own (scripts/test.sh runs it under scripts/isolate.sh). Then `make install` of the
# plugin already built in plugin/, then `npm run test:e2e` (or only the TEST_FILEs given). The
# engine's log is WORK_DIR/dockerd.log.
# Exits non-zero if the engine does not start, is not ENGINE, or a step fails.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
ENGINE=${1:?usage: e2e-engine.sh ENGINE WORK_DIR}
export PLUGIN=${PLUGIN:-logship:latest}
export LOGSHIP_PLUGIN=${LOGSHIP_PLUGIN:-$PLUGIN}
WORK=${2:?usage: e2e-engine.sh ENGINE WORK_DIR}
shift 2
mkdir -p "$WORK"

say() { echo "e2e-engine $ENGINE: $*"; }
die() { echo "e2e-engine $ENGINE: error: $*" >&2; exit 1; }

# The open-file limit each engine's processes get from its packaged systemd units: Debian's
# docker.io 20.10 sets LimitNOFILE=1048576 (containerd's unit: infinity); 28.5's units and
# containerd 2's set none, so systemd's default soft limit of 1024 applies (the hard one stays).
# The hard limit cannot be raised here; the soft one is set as those units would.
soft_files=
case $ENGINE in
  20.10) engine_path=$PATH ;;
  28.5)
    [[ -x $ROOT/build/engines/28.5/bin/dockerd ]] || die "build/engines/28.5 has no engine: run scripts/fetch-engine.sh build/engines/28.5"
    engine_path=$ROOT/build/engines/28.5/bin:$PATH
    soft_files=1024
    ;;
  *) die "unknown engine '$ENGINE' (20.10 or 28.5)" ;;
esac

trap 'scripts/stop-docker.sh "$WORK/dockerd.pid"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

(
  [[ -z $soft_files ]] || ulimit -S -n "$soft_files"
  PATH=$engine_path exec scripts/ensure-docker.sh "$WORK/dockerd.pid" "$WORK/dockerd.log"
) || exit 1
[[ -f $WORK/dockerd.pid ]] || die "an engine already answered on the default socket: run this in namespaces of its own (scripts/isolate.sh)"
version=$(docker version --format '{{.Server.Version}}') || die "docker version failed"
[[ $version == "$ENGINE".* ]] || die "dockerd is $version, not $ENGINE (for 20.10 the machine needs Debian bookworm's docker.io)"
say "dockerd $version, containerd $(PATH=$engine_path containerd --version | awk '{ print $3 }'), runc $(runc --version | awk 'NR == 1 { print $3 }'), started with an open-file limit of ${soft_files:-$(ulimit -S -n)} (hard $(ulimit -H -n))"
# The plugin's own log is in the engine's (test/e2e/engine.test.ts reads it).
export LOGSHIP_DOCKERD_LOG=$WORK/dockerd.log

# -o plugin: plugin/ was built before, for every engine at once; never rebuilt under a running test.
start=$SECONDS
make --no-print-directory -o plugin install PLUGIN="$PLUGIN" || die "make install failed"
say "installed $PLUGIN in $((SECONDS - start))s"

if (( $# == 0 )); then
  npm run --silent test:e2e
else
  node_modules/.bin/node --test --test-timeout=300000 --test-concurrency=1 --test-reporter=spec "$@"
fi
