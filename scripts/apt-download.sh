#!/usr/bin/env bash
# Downloads Debian packages without installing them or touching the machine's apt state:
#
#   scripts/apt-download.sh OUT_DIR ARCH SUITE[,SUITE...] PACKAGE...
#
# The .deb files of PACKAGE... for ARCH (amd64, arm64, ...) from the machine's own Debian archive
# (the URIs of /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list), in the suites
# given (e.g. sid, or bookworm,bookworm-updates), land in OUT_DIR. apt-get runs with a sources
# list, lists and cache of its own under OUT_DIR/.apt, removed afterwards (the lists are tens of MB).
set -euo pipefail

OUT=${1:?usage: apt-download.sh OUT_DIR ARCH SUITE[,SUITE...] PACKAGE...}
ARCH=${2:?usage: apt-download.sh OUT_DIR ARCH SUITE[,SUITE...] PACKAGE...}
SUITES=${3:?usage: apt-download.sh OUT_DIR ARCH SUITE[,SUITE...] PACKAGE...}
shift 3
(( $# > 0 )) || { echo "apt-download: error: no package given" >&2; exit 2; }
die() { echo "apt-download: error: $*" >&2; exit 1; }

uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[[ -n $uri ]] || uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list 2>/dev/null || true)
[[ -n $uri ]] || die "no Debian archive found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"

mkdir -p "$OUT"
apt=$OUT/.apt
rm -rf "$apt"
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
for suite in ${SUITES//,/ }; do
  echo "deb [arch=$ARCH signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main"
done > "$apt/sources.list"
A=(-o "APT::Architecture=$ARCH" -o "APT::Architectures::=$ARCH" -o "Dir::Etc::sourcelist=$apt/sources.list"
   -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Debug::NoLocking=1)
apt-get "${A[@]}" update -q >"$apt/update.log" 2>&1 || { tail -n 20 "$apt/update.log" >&2; die "apt-get update ($SUITES, $ARCH) failed"; }
(cd "$OUT" && apt-get "${A[@]}" download "$@" >"$apt/download.log" 2>&1) \
  || { tail -n 20 "$apt/download.log" >&2; die "apt-get download $* ($SUITES, $ARCH) failed"; }
rm -rf "$apt"
