#!/usr/bin/env bash
# The README's first command as a new user meets it: `make demo`, as root, in a fresh clone, on
# this Debian machine as it would be before anything of Docker's was installed:
#
#   scripts/first-run-check.sh [WORK_DIR]      (default build/first-run)
#
# In mount and PID namespaces of its own, the machine's root filesystem is seen through an
# overlay whose upper layer is a tmpfs, and there the Debian packages docker.io, containerd,
# runc, tini and busybox-static are purged (and any docker CLI or engine state removed), so the
# run has no engine and no busybox. A fresh `git clone` of this repository's HEAD is made and
# `make demo` runs in it, chrooted into that overlay: it has to install the packages itself, with
# apt-get, from the machine's archive, start an engine, build and install the plugin, and print
# the demo container's logs, which are checked. Nothing of the machine changes: the overlay,
# the engine and everything started go when the namespaces do.
#
# It shares the machine's network (apt-get and npm download) and starts an engine on it, like
# `make demo` itself: run it where no other engine runs in this network namespace (CI runs it
# first). The output of `make demo` is in WORK_DIR/demo.log.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
if [[ ${1:-} != --in-namespaces ]]; then
  W=${1:-build/first-run}
  mkdir -p "$W"
  W=$(cd "$W" && pwd)
fi

say() { echo "first-run: $*"; }
die() { echo "first-run: error: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "needs root (namespaces, an overlay mount, apt-get in it)"
[[ -f /etc/debian_version ]] || die "this checks a Debian machine's first run"
git rev-parse --verify -q HEAD >/dev/null || die "$ROOT is not a git checkout with a commit to clone"

# Stage 2, in the namespaces: the overlay, the purge, make demo.
if [[ ${1:-} == --in-namespaces ]]; then
  W=$2
  R=$W/mnt/root
  mount -t tmpfs -o mode=0755 first-run "$W/mnt"
  mkdir -p "$W/mnt/upper" "$W/mnt/work" "$R"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$W/mnt/upper,workdir=$W/mnt/work" "$R"
  mount -t proc proc "$R/proc"
  mount --rbind /sys "$R/sys"
  mount --rbind /dev "$R/dev"
  mount -t tmpfs -o mode=0755 run "$R/run"
  mount -t tmpfs -o mode=1777 tmp "$R/tmp"
  mkdir -p "$R/run/lock" "$R/var/lib/docker" "$R/var/lib/containerd" "$R/root/logship"
  mount --bind "$W/docker" "$R/var/lib/docker"
  mount --bind "$W/containerd" "$R/var/lib/containerd"
  mount --bind "$W/clone" "$R/root/logship"

  # The machine before Docker: no engine, no runtime, no busybox, no docker CLI.
  chroot "$R" /bin/bash -euo pipefail -s <<'PURGE'
    export DEBIAN_FRONTEND=noninteractive
    purge=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' docker.io containerd runc tini busybox-static busybox 2>/dev/null \
            | awk '$1 == "ii" { print $2 }' || true)
    [[ -z $purge ]] || dpkg --purge --force-depends $purge >/dev/null
    rm -rf /usr/local/bin/docker /etc/docker /var/log/logship-dockerd.log
    for f in docker dockerd containerd runc busybox; do
      ! command -v $f >/dev/null || { echo "first-run: error: $f is still there: $(command -v $f)" >&2; exit 1; }
    done
    echo "first-run: purged ${purge//$'\n'/ } in the overlay: no docker, dockerd, containerd, runc or busybox"
PURGE

  echo "first-run: make demo (as root, in a fresh clone; output in $W/demo.log)"
  status=0
  chroot "$R" /bin/bash -c 'cd /root/logship && make demo' </dev/null >"$W/demo.log" 2>&1 || status=$?
  # make demo leaves its engine running; this one goes with the namespaces, by its PID first.
  chroot "$R" /root/logship/scripts/stop-docker.sh /root/logship/build/dockerd.pid >/dev/null 2>&1 || true
  cat "$W/demo.log"
  [[ $status == 0 ]] || die "make demo failed (exit $status)"
  for expected in "installing docker.io with apt-get" "installing busybox-static with apt-get" "hello from logship, line 1" \
                  "hello from logship, line 3" "this went to stderr" "no newline at the end"; do
    grep -qF -- "$expected" "$W/demo.log" || die "make demo did not print '$expected'"
  done
  say "make demo installed docker.io and busybox-static, started an engine, built and installed the plugin, and showed the demo's logs"
  exit 0
fi

# Stage 1: a fresh clone, and the engine's data, on disk (overlay2 cannot sit on an overlay).
rm -rf "$W/clone" "$W/docker" "$W/containerd" "$W/demo.log"
mkdir -p "$W/docker" "$W/containerd" "$W/mnt"
git clone -q --no-hardlinks "$ROOT" "$W/clone"
say "a fresh clone of $(git -C "$W/clone" rev-parse --short HEAD) in $W/clone"
start=$SECONDS
status=0
unshare --mount --pid --fork --kill-child --mount-proc --propagation private -- "$0" --in-namespaces "$W" || status=$?
say "took $((SECONDS - start))s"
exit $status
