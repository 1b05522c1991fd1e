#!/usr/bin/env bash
# Makes sure the Debian packages a step needs are there:
#
#   scripts/need-packages.sh WHAT PACKAGE...
#
# Each PACKAGE is checked by what it brings (a command, a file), not by dpkg, so a machine that
# has the tool from elsewhere is fine. Missing ones are installed with apt-get when this is root
# on Debian; otherwise the script says exactly what to install and fails. WHAT names what they
# are for, in the messages ("the demo", "the end-to-end tests").
set -euo pipefail

WHAT=${1:?usage: need-packages.sh WHAT PACKAGE...}
shift

is_static_busybox() {
  local b
  for b in /bin/busybox /usr/bin/busybox; do
    # ldd exits 1 on a static binary: under pipefail its status, not grep's, would be the pipeline's.
    [[ -x $b ]] && { LC_ALL=C ldd "$b" 2>&1 || true; } | grep -q 'not a dynamic executable' && return 0
  done
  return 1
}

# present PACKAGE: whether what PACKAGE provides is on this machine.
present() {
  case $1 in
    busybox-static) is_static_busybox ;;
    docker.io) command -v dockerd >/dev/null && command -v docker >/dev/null ;;
    runc) command -v runc >/dev/null ;;
    tini) [[ -x /usr/bin/docker-init ]] ;;
    systemd) [[ -x /lib/systemd/systemd-journald ]] && command -v journalctl >/dev/null ;;
    rsyslog) command -v rsyslogd >/dev/null ;;
    rsyslog-gnutls) [[ -n $(find /usr/lib -name lmnsd_gtls.so -print -quit 2>/dev/null) ]] ;;
    iproute2) command -v ip >/dev/null ;;
    binutils) command -v objdump >/dev/null && command -v strip >/dev/null ;;
    qemu-user-static) [[ -x /usr/bin/qemu-aarch64-static ]] ;;
    g++-aarch64-linux-gnu) command -v aarch64-linux-gnu-g++ >/dev/null && command -v aarch64-linux-gnu-strip >/dev/null ;;
    nodejs) command -v node >/dev/null ;;
    g++) command -v g++ >/dev/null ;;
    *) command -v "$1" >/dev/null ;; # docker-registry, openssl, make, python3, npm, ...
  esac
}

# What to install where there is no apt-get: the thing itself, for any distribution.
describe() {
  case $1 in
    busybox-static) echo "a statically linked busybox at /bin/busybox or /usr/bin/busybox" ;;
    docker.io) echo "the Docker engine (dockerd) and the docker CLI" ;;
    runc) echo "runc" ;;
    tini) echo "tini as /usr/bin/docker-init" ;;
    systemd) echo "systemd-journald (/lib/systemd/systemd-journald) and journalctl" ;;
    rsyslog) echo "rsyslogd" ;;
    rsyslog-gnutls) echo "rsyslog's TLS module (lmnsd_gtls.so)" ;;
    iproute2) echo "ip (iproute2)" ;;
    binutils) echo "objdump and strip (binutils)" ;;
    qemu-user-static) echo "qemu-aarch64-static (qemu-user-static)" ;;
    g++-aarch64-linux-gnu) echo "a cross compiler for aarch64 (aarch64-linux-gnu-g++, -strip)" ;;
    nodejs | npm) echo "Node.js and npm (any version: the project brings Node 24 itself)" ;;
    *) echo "$1" ;;
  esac
}

missing=()
for p in "$@"; do present "$p" || missing+=("$p"); done
(( ${#missing[@]} > 0 )) || exit 0

if [[ ! -f /etc/debian_version ]] || ! command -v apt-get >/dev/null; then
  echo "need-packages: error: for $WHAT, this machine lacks:" >&2
  for p in "${missing[@]}"; do echo "  - $(describe "$p")" >&2; done
  echo "  (on Debian or Ubuntu, as root: apt-get install ${missing[*]})" >&2
  exit 1
fi
if [[ $(id -u) != 0 ]]; then
  echo "need-packages: error: for $WHAT, install the Debian packages ${missing[*]}: as root, apt-get install ${missing[*]}" >&2
  exit 1
fi

echo "need-packages: for $WHAT, installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
# A failed update (a mirror down, no network) still leaves the lists the machine has: try with them.
apt-get update -q >/dev/null 2>&1 || echo "need-packages: warning: apt-get update failed; installing from the package lists already here" >&2
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
  || { echo "need-packages: error: apt-get install ${missing[*]} failed" >&2; exit 1; }
still=()
for p in "${missing[@]}"; do present "$p" || still+=("$p"); done
if (( ${#still[@]} > 0 )); then
  echo "need-packages: error: installed ${missing[*]}, yet missing: $(for p in "${still[@]}"; do describe "$p"; done | paste -sd';')" >&2
  exit 1
fi
echo "need-packages: installed ${missing[*]}"
