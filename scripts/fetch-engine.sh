#!/usr/bin/env bash
# A current Docker engine for the tests, from Debian's own archive, without touching the machine's:
#
#   scripts/fetch-engine.sh DIR
#
# Downloads unstable's docker.io and containerd packages (scripts/apt-download.sh: apt-get
# download with a private sources list and cache, so the machine's apt state is untouched),
# unpacks them into DIR/root
# and links the binaries dockerd needs into DIR/bin: dockerd, docker-proxy, containerd and
# containerd-shim-runc-v2 from the packages, runc and docker-init from the machine (bookworm's
# runc 1.1.5 works with containerd 2; unstable's needs a newer glibc). Start it with
# PATH=DIR/bin:$PATH dockerd ...
#
# If unstable's binaries need a newer glibc than the machine's, trixie's packages are taken
# instead. DIR/version says what was unpacked. A DIR already holding a working engine is kept
# (no download): delete it to take the archive's current build.
set -euo pipefail

DIR=${1:?usage: fetch-engine.sh DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

say() { echo "fetch-engine: $*"; }
die() { echo "fetch-engine: error: $*" >&2; exit 1; }

# The newest glibc symbol version an ELF file needs, e.g. 2.34.
glibc_needed() {
  objdump -T "$1" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1
}
glibc_have=$(getconf GNU_LIBC_VERSION | awk '{ print $2 }')

binaries_run() {
  local f need
  for f in "$DIR"/bin/dockerd "$DIR"/bin/containerd "$DIR"/bin/containerd-shim-runc-v2 "$DIR"/bin/docker-proxy; do
    [[ -x $f ]] || return 1
    need=$(glibc_needed "$f")
    [[ -z $need ]] || [[ $(printf '%s\n%s\n' "$need" "$glibc_have" | sort -V | tail -n 1) == "$glibc_have" ]] || return 1
  done
}

if [[ -f $DIR/version ]] && binaries_run; then
  say "$DIR has $(cat "$DIR/version"); kept"
  exit 0
fi

for tool in apt-get dpkg objdump; do
  command -v $tool >/dev/null || die "$tool not found (Debian: apt-get install apt dpkg binutils)"
done
for f in /usr/sbin/runc /usr/bin/docker-init; do
  [[ -x $f ]] || die "$f is missing: apt-get install runc tini (the engine uses the machine's runc and docker-init)"
done

# take SUITE: downloads and unpacks SUITE's docker.io and containerd; fails if they do not run here.
take() {
  local suite=$1
  rm -rf "$DIR/root" "$DIR/bin" "$DIR"/*.deb "$DIR/version"
  say "apt-get download docker.io containerd ($suite)"
  "$(dirname "${BASH_SOURCE[0]}")/apt-download.sh" "$DIR" "$(dpkg --print-architecture)" "$suite" docker.io containerd || return 1
  local deb
  for deb in "$DIR"/*.deb; do dpkg -x "$deb" "$DIR/root"; done
  mkdir -p "$DIR/bin"
  ln -sf "$DIR/root/usr/sbin/dockerd" "$DIR/root/usr/bin/containerd" "$DIR/root/usr/bin/containerd-shim-runc-v2" \
         "$DIR/root/usr/sbin/docker-proxy" "$DIR/bin/"
  ln -sf /usr/sbin/runc /usr/bin/docker-init "$DIR/bin/"
  for deb in "$DIR"/*.deb; do dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb"; done | paste -sd',' > "$DIR/version.new"
  rm -f "$DIR"/*.deb
  if ! binaries_run; then
    say "$suite's binaries do not run here (glibc $glibc_have; dockerd needs $(glibc_needed "$DIR/bin/dockerd"))"
    return 1
  fi
  mv "$DIR/version.new" "$DIR/version"
  say "unpacked $suite's $(sed 's/,/, /g' "$DIR/version") into $DIR/root"
}

take sid || take trixie || die "neither unstable's nor trixie's docker.io runs on this machine (glibc $glibc_have)"
