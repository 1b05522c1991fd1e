#!/usr/bin/env bash
# Stops the dockerd whose PID scripts/ensure-docker.sh wrote, and only that one:
#
#   scripts/stop-docker.sh PIDFILE
#
# SIGTERM (the engine stops its containers, plugins and containerd), then SIGKILL after 30 s.
# Does nothing when PIDFILE is absent or its process is gone; removes PIDFILE.
set -uo pipefail

PIDFILE=${1:?usage: stop-docker.sh PIDFILE}
[[ -f $PIDFILE ]] || exit 0
pid=$(cat "$PIDFILE")
rm -f "$PIDFILE"
[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || exit 0
echo "stop-docker: stopping dockerd (pid $pid)"
kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 1 150); do
  kill -0 "$pid" 2>/dev/null || exit 0
  sleep 0.2
done
echo "stop-docker: dockerd (pid $pid) did not stop within 30 s; killing it" >&2
kill -KILL "$pid" 2>/dev/null || true
