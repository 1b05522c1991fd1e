#!/usr/bin/env bash
# Makes sure a Docker engine answers on the default socket.
#
#   scripts/ensure-docker.sh PIDFILE [LOGFILE]
#
# * If `docker info` answers: does nothing (and leaves PIDFILE absent).
# * Otherwise, as root on Debian (no systemd needed): installs docker.io if dockerd is missing
#   (scripts/need-packages.sh),
#   starts dockerd in the background with stdout and stderr going to LOGFILE (never to ours: a
#   server holding CI's stdout open hangs CI), waits until it answers, and writes its PID to
#   PIDFILE. The caller owns that process and should stop it, e.g.
#       trap 'kill "$(cat "$PIDFILE")"' EXIT
# Exits non-zero, with the tail of the daemon's log, if the engine cannot be made to answer.
set -euo pipefail

PIDFILE=${1:?usage: ensure-docker.sh PIDFILE [LOGFILE]}
LOGFILE=${2:-${PIDFILE%.pid}.log}
TIMEOUT=${DOCKERD_START_TIMEOUT:-60}

say() { echo "ensure-docker: $*"; }
die() { echo "ensure-docker: error: $*" >&2; exit 1; }

rm -f "$PIDFILE"

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  say "the Docker engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')); nothing to do"
  exit 0
fi

[[ $(id -u) == 0 ]] || die "no Docker engine answers and this is not root: start dockerd yourself (or run as root)"
[[ -f /etc/debian_version ]] || die "no Docker engine answers and this is not Debian: install and start Docker yourself"

if [[ -S /var/run/docker.sock ]] && command -v pgrep >/dev/null && pgrep -x dockerd >/dev/null 2>&1; then
  die "a dockerd is running but does not answer on /var/run/docker.sock; not starting a second one (pgrep -a dockerd)"
fi

"$(dirname "${BASH_SOURCE[0]}")/need-packages.sh" "a Docker engine" docker.io || die "no Docker engine to start"
command -v dockerd >/dev/null 2>&1 || die "dockerd is still missing after installing docker.io"
# On a machine with an init system the package starts its own engine.
if docker info >/dev/null 2>&1; then
  say "the Docker engine the package started answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
  exit 0
fi

# cgroups: the VM's init normally mounts them; a bare machine may not.
if [[ ! -e /sys/fs/cgroup/cgroup.controllers ]] && [[ -z $(ls -A /sys/fs/cgroup 2>/dev/null) ]]; then
  say "no cgroup hierarchy mounted; mounting cgroup v2 at /sys/fs/cgroup"
  mount -t cgroup2 none /sys/fs/cgroup || die "could not mount cgroups"
fi

mkdir -p "$(dirname "$LOGFILE")" "$(dirname "$PIDFILE")"
say "starting dockerd (log: $LOGFILE)"
# setsid: its own session, so a terminal's signals go to us, not to it; stdin from /dev/null.
setsid dockerd -H unix:///var/run/docker.sock </dev/null >"$LOGFILE" 2>&1 &
pid=$!
echo "$pid" >"$PIDFILE"

start=$SECONDS
until docker info >/dev/null 2>&1; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "ensure-docker: dockerd exited; last lines of $LOGFILE:" >&2
    tail -n 30 "$LOGFILE" >&2 || true
    rm -f "$PIDFILE"
    exit 1
  fi
  if (( SECONDS - start >= TIMEOUT )); then
    echo "ensure-docker: dockerd did not answer within ${TIMEOUT}s; last lines of $LOGFILE:" >&2
    tail -n 30 "$LOGFILE" >&2 || true
    kill "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
    exit 1
  fi
  sleep 0.2
done
say "dockerd (pid $pid) answers after $((SECONDS - start))s: $(docker version --format '{{.Server.Version}}')"
