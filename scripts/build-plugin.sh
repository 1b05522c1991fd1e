#!/usr/bin/env bash
# Assembles the managed-plugin directory that `docker plugin create` takes:
#
#   <out>/config.json         copied from ./config.json
#   <out>/rootfs/usr/bin/node  the Node 24 binary of the `node` devDependency, stripped
#   <out>/rootfs/lib*/...      the shared libraries `ldd` lists for it and the native addons, at the same paths
#   <out>/rootfs/app/dist/     the bundled application (`npm run build`: the core, the cloud SDKs' chunks,
#                              the files they read, the native addons as packages): nothing else of node_modules
#   <out>/rootfs/etc/logship-release   names the build (also makes each build's layer unique)
#
# No image, no registry, no `docker build`. Usage: scripts/build-plugin.sh [OUT_DIR] [PLUGIN_REF]
# Run from the repository root after `npm run build`.
set -euo pipefail

OUT=${1:-plugin}
REF=${2:-logship:latest}

die() { echo "build-plugin: error: $*" >&2; exit 1; }

[[ -f package.json && -f config.json ]] || die "run from the repository root (package.json and config.json are needed)"
[[ -f dist/main.js && -f dist/package.json ]] || die "dist/ is missing or not a bundle: run 'make build' (npm run build) first"
[[ -e node_modules/.bin/node ]] || die "node_modules/.bin/node is missing: run 'npm ci' (the devDependency 'node' provides Node 24)"

NODE=$(readlink -f node_modules/.bin/node)
[[ -x $NODE ]] || die "$NODE is not executable"
file_head=$(head -c 4 "$NODE" | od -An -c | tr -d ' ')
[[ $file_head == '177ELF' ]] || die "$NODE is not an ELF binary (got a script?); the plugin needs the real Node binary"
NODE_VERSION=$("$NODE" --version)
[[ $NODE_VERSION == v24.* ]] || die "node_modules/.bin/node is $NODE_VERSION, expected v24.x"
command -v ldd >/dev/null || die "ldd not found (Debian package libc-bin)"

NEW="$OUT.new"
rm -rf "$NEW"
R="$NEW/rootfs"
mkdir -p "$R/usr/bin" "$R/app" "$R/etc" "$R/proc" "$R/dev" "$R/sys" "$R/tmp" \
         "$R/run/docker/plugins" "$R/run/systemd/journal" "$R/var/lib/logship"
chmod 1777 "$R/tmp"

# Node: stripped (the npm build ships debug info).
if command -v strip >/dev/null; then
  strip -o "$R/usr/bin/node" "$NODE" || die "strip failed on $NODE"
else
  echo "build-plugin: warning: strip not found (Debian package binutils); shipping Node unstripped" >&2
  cp "$NODE" "$R/usr/bin/node"
fi
chmod 755 "$R/usr/bin/node"

# The libraries the dynamic loader needs, at the paths ldd resolves them to (on x86_64 Debian:
# /lib/x86_64-linux-gnu/* and /lib64/ld-linux-x86-64.so.2). glibc finds them there without ld.so.cache.
# The native addons' libraries too (libstdc++ and friends, mostly the same as Node's).
addons=$(find dist/node_modules -name '*.node')
libs=$(ldd "$NODE" $addons | grep -o '/[^ ]*' | grep -v '\.node$' | grep -v ':$' | sort -u)
[[ -n $libs ]] || die "ldd listed no libraries for $NODE"
for lib in $libs; do
  mkdir -p "$R$(dirname "$lib")"
  cp -L "$lib" "$R$lib"
done

# The application: the bundle as it is.
cp -a dist "$R/app/dist"

rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
version=$("$NODE" -p 'require("./dist/package.json").version')
printf 'logship %s (%s) %s, node %s, built %s\n' "$version" "$rev" "$REF" "$NODE_VERSION" "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" \
  > "$R/etc/logship-release"

cp config.json "$NEW/config.json"
"$NODE" -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$NEW/config.json" \
  || die "config.json is not valid JSON"

# Quick check that the rootfs runs Node and finds what the app loads from files (needs root for chroot).
if [[ $(id -u) == 0 ]] && command -v chroot >/dev/null; then
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
