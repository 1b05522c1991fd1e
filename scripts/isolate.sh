#!/usr/bin/env bash
# Runs a command where a Docker engine of its own can run beside any other on the machine:
#
#   scripts/isolate.sh STATE_DIR COMMAND [ARG...]
#
# As root, COMMAND runs in new mount, network and PID namespaces (util-linux unshare):
#   - /run (so /var/run/docker.sock, /run/docker, /run/containerd, /run/systemd/journal) is a
#     fresh tmpfs;
#   - /var/lib/docker, /var/lib/containerd and /var/lib/logship (the plugin's data mount) are
#     STATE_DIR/docker, STATE_DIR/containerd and STATE_DIR/logship, kept between runs (so a test
#     image imported once stays);
#   - /etc/docker/certs.d (the CAs of registries, per host:port) is STATE_DIR/certs.d, so two
#     test registries on the same port in two namespaces do not trust each other's CA;
#   - /var/log/journal, where a test's systemd-journald keeps its namespace's files when the
#     folder exists, is STATE_DIR/journal: two runs' journalds of the same name stay apart;
#   - the network is a loopback of its own: a receiver's fixed port, the engine's docker0
#     bridge and its iptables rules are private;
#   - every process COMMAND leaves behind is killed when it exits (it is the namespace's init).
# Everything else (the source tree, build/, /tmp, /usr) is the machine's, as it is.
# The exit status is COMMAND's.
set -euo pipefail

STATE=${1:?usage: isolate.sh STATE_DIR COMMAND [ARG...]}
shift
(( $# > 0 )) || { echo "isolate: error: no command given" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "isolate: error: needs root (new namespaces, mounts)" >&2; exit 1; }
command -v unshare >/dev/null || { echo "isolate: error: unshare not found (Debian package util-linux)" >&2; exit 1; }
command -v ip >/dev/null || { echo "isolate: error: ip not found (Debian package iproute2)" >&2; exit 1; }

mkdir -p "$STATE"/{docker,containerd,logship,certs.d,journal} /etc/docker/certs.d
STATE=$(cd "$STATE" && pwd)

# --propagation private: the mounts made inside never show on the machine, nor the machine's later
# ones inside. --mount-proc: a /proc of the new PID namespace, so a test looking for the plugin's
# process among /proc's finds this engine's only. --kill-child: unshare SIGKILLed (a CI run cut short; it ignores SIGTERM)
# takes the namespace's init, and so everything in it, along.
ISOLATE_STATE=$STATE exec unshare --mount --net --pid --fork --kill-child --mount-proc --propagation private -- \
  bash -euc '
    ip link set lo up
    mount -t tmpfs -o mode=0755 isolate-run /run
    mkdir -p /run/lock
    for dir in docker containerd logship; do
      mkdir -p "/var/lib/$dir"
      mount --bind "$ISOLATE_STATE/$dir" "/var/lib/$dir"
    done
    mount --bind "$ISOLATE_STATE/certs.d" /etc/docker/certs.d
    [[ ! -d /var/log/journal ]] || mount --bind "$ISOLATE_STATE/journal" /var/log/journal
    "$@"
  ' isolate "$@"
