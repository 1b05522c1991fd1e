#!/usr/bin/env bash
# The whole logship test suite, the one command (`make test`, `make test ENGINE=28.5`):
#
#   1. deps       npm ci when node_modules is missing or stale
#   2. typecheck  tsc -p tsconfig.json (src, test, bench)
#   3. unit       npm run test:unit
#   4. backend-tools  rsyslog, rsyslog-gnutls, systemd-journald and openssl (apt-installed if root on Debian)
#   5. integration    npm run test:integration: the backends against real rsyslog, journald and fluentd servers
#   6. arm64      make plugin ARCH=arm64 (Node for linux-arm64 from npm, Debian's arm64 libraries, the
#                 native addon cross-built), then npm run test:platform: its Node runs the app under
#                 qemu-user-static in a chroot of its rootfs (as root; the tools apt-installed)
#   7. e2e-tools  busybox-static, docker-registry, openssl, docker.io (the 20.10 engine, runc, tini),
#                 iproute2 and binutils (installed with apt if root on Debian)
#   8. engine-28.5    Debian unstable's docker.io 28.5 and containerd 2, downloaded and unpacked into
#                     build/engines/28.5 once (scripts/fetch-engine.sh)
#   9. plugin     make plugin: built once for every engine
#  10. e2e-ENGINE npm run test:e2e against each real engine, all engines at once: each is started by
#                 scripts/e2e-engine.sh in namespaces of its own (scripts/isolate.sh: private /run,
#                 network, PIDs, /var/lib/docker, /var/lib/containerd, /var/lib/logship), stopped by
#                 its PID, its output in build/test/e2e-ENGINE.log (printed when it is done)
#
# ENGINE picks the engines: `all` (20.10 and 28.5, the default as root), `20.10`, `28.5`, or
# `running`: whichever engine answers on the default socket (started here if none does, and stopped
# again on exit), in the machine's own namespaces, for a machine where this is not root.
# Every step runs even when an earlier independent one failed; the exit status is non-zero if any
# step failed. A summary is printed at the end.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
WORK=${LOGSHIP_TEST_WORK:-$ROOT/build/test}
mkdir -p "$WORK"
DOCKERD_PIDFILE=$WORK/dockerd.pid
DOCKERD_LOG=$WORK/dockerd.log
export PLUGIN=${PLUGIN:-logship:latest}
export LOGSHIP_PLUGIN=$PLUGIN
# The plugin under test never looks for a cloud metadata server off this machine: a store the
# tests leave unshipped (a failed test) resumes after every re-install (make install reads this
# from the environment), and the SDKs' credential and project lookups would otherwise try
# 169.254.169.254. Port 9 on loopback is closed, so a gcplogs lookup fails at once.
export PLUGIN_SETTINGS=${PLUGIN_SETTINGS:-AWS_EC2_METADATA_DISABLED=true GCE_METADATA_HOST=127.0.0.1:9}
ALL_ENGINES=(20.10 28.5)

if [[ -z ${ENGINE:-} ]]; then
  [[ $(id -u) == 0 ]] && ENGINE=all || ENGINE=running
fi
case $ENGINE in
  all) engines=("${ALL_ENGINES[@]}") ;;
  running) engines=() ;;
  20.10 | 28.5) engines=("$ENGINE") ;;
  *) echo "test.sh: error: ENGINE=$ENGINE: expected all, ${ALL_ENGINES[*]} or running" >&2; exit 2 ;;
esac
if [[ $ENGINE != running && $(id -u) != 0 ]]; then
  echo "test.sh: error: ENGINE=$ENGINE starts engines in namespaces of their own, which needs root; ENGINE=running uses the engine that answers" >&2
  exit 2
fi

# On exit: the engine ENGINE=running started, if any, and the isolated runs still going (a run cut
# short): unshare killed takes its namespace, engine and tests along.
isolated=()
cleanup() {
  scripts/stop-docker.sh "$DOCKERD_PIDFILE"
  local pid
  # SIGKILL: unshare ignores SIGTERM while it waits for its child (seen: a run's namespace,
  # engine and tests outlived a TERM); its death SIGKILLs the namespace's init (--kill-child).
  for pid in "${isolated[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

names=()
results=()
times=()
counts=()
failed=()

# run_step NAME COMMAND...: runs it, records ok/FAILED and its duration.
run_step() {
  local name=$1
  shift
  echo
  echo "=== [$name] $*"
  local start=$SECONDS status=0
  "$@" || status=$?
  names+=("$name")
  times+=($((SECONDS - start)))
  counts+=("")
  if [[ $status == 0 ]]; then
    results+=(ok)
  else
    results+=("FAILED (exit $status)")
    failed+=("$name")
    echo "=== [$name] FAILED (exit $status)" >&2
  fi
  return $status
}

skip_step() {
  names+=("$1")
  times+=(0)
  counts+=("")
  results+=("skipped: $2")
  failed+=("$1")
  echo
  echo "=== [$1] skipped: $2" >&2
}

backend_tools() {
  # prometheus and promtool check the alert rules and dashboard; chromium shows the status page;
  # kcat hosts librdkafka's mock Kafka cluster and reads it back.
  scripts/need-packages.sh "the backend tests" rsyslog rsyslog-gnutls systemd openssl prometheus chromium kcat
}

e2e_tools() {
  local packages=(busybox-static docker-registry openssl kcat)
  # The engines run in namespaces of their own: the 20.10 engine is the machine's package, the
  # 28.5 one uses its runc and docker-init (tini), and fetch-engine.sh reads its binaries' glibc
  # needs with objdump.
  [[ ${#engines[@]} == 0 ]] || packages+=(docker.io runc tini iproute2 binutils)
  scripts/need-packages.sh "the end-to-end tests" "${packages[@]}"
}

# Runs the e2e suite on every engine of $engines at once, each in its own namespaces, and
# records a step per engine. Their output goes to files, printed one after the other at the end.
e2e_engines() {
  local e pids=() starts=()
  for e in "${engines[@]}"; do
    echo
    echo "=== [e2e-$e] scripts/e2e-engine.sh $e (in namespaces of its own; output in $WORK/e2e-$e.log)"
    scripts/isolate.sh "$WORK/engine-$e" scripts/e2e-engine.sh "$e" "$WORK/engine-$e" </dev/null >"$WORK/e2e-$e.log" 2>&1 &
    pids+=($!)
    isolated+=($!)
    starts+=("$SECONDS")
  done
  # As each ends (wait -n), so each one's time is its own.
  local i status pid running=("${pids[@]}")
  while (( ${#running[@]} > 0 )); do
    status=0
    wait -n -p pid "${running[@]}" || status=$?
    local left=() r
    for r in "${running[@]}"; do [[ $r == "$pid" ]] || left+=("$r"); done
    running=("${left[@]}")
    for i in "${!pids[@]}"; do [[ ${pids[$i]} == "$pid" ]] && break; done
    e=${engines[$i]}
    names+=("e2e-$e")
    times+=($((SECONDS - ${starts[$i]})))
    if [[ $status == 0 ]]; then results+=(ok); else results+=("FAILED (exit $status)"); failed+=("e2e-$e"); fi
    counts+=("$(test_counts "$WORK/e2e-$e.log")")
    echo "=== [e2e-$e] ${results[-1]} after ${times[-1]}s"
  done
  for e in "${engines[@]}"; do
    echo
    echo "=== [e2e-$e] output ($WORK/e2e-$e.log; the engine's log: $WORK/engine-$e/dockerd.log)"
    cat "$WORK/e2e-$e.log"
  done
}

# The node test runner's closing counts in a log, e.g. "tests 96, pass 96, fail 0".
test_counts() {
  grep -E '^ℹ (tests|pass|fail|cancelled|skipped) [0-9]+$' "$1" 2>/dev/null | sed 's/^ℹ //' | paste -sd',' | sed 's/,/, /g'
}

summary() {
  echo
  echo "=== summary"
  local i
  for i in "${!names[@]}"; do
    printf '  %-13s %-28s %4ss  %s\n' "${names[$i]}" "${results[$i]}" "${times[$i]}" "${counts[$i]}"
  done
  if [[ ${#failed[@]} == 0 ]]; then
    echo "test.sh: all steps succeeded"
  else
    echo "test.sh: FAILED: ${failed[*]}"
  fi
}

total_start=$SECONDS

if ! run_step deps make --no-print-directory deps; then
  summary
  exit 1
fi
run_step typecheck npm run --silent typecheck
run_step unit npm run --silent test:unit
if run_step backend-tools backend_tools; then
  run_step integration npm run --silent test:integration
else
  skip_step integration "rsyslog or systemd-journald is missing"
fi

if [[ $(id -u) != 0 ]]; then
  skip_step arm64 "the arm64 plugin runs in a chroot, which needs root"
elif run_step arm64-tools scripts/need-packages.sh "the arm64 plugin" qemu-user-static g++-aarch64-linux-gnu binutils; then
  run_step arm64 bash -c 'make --no-print-directory plugin ARCH=arm64 && npm run --silent test:platform'
else
  skip_step arm64 "qemu-user-static or g++-aarch64-linux-gnu is missing"
fi

if [[ $ENGINE == running ]]; then
  if run_step docker scripts/ensure-docker.sh "$DOCKERD_PIDFILE" "$DOCKERD_LOG"; then
    # The plugin's log is in the engine's, when this script started it.
    [[ ! -f $DOCKERD_PIDFILE ]] || export LOGSHIP_DOCKERD_LOG=$DOCKERD_LOG
    tools_ok=0
    run_step e2e-tools e2e_tools && tools_ok=1
    if run_step install make --no-print-directory install PLUGIN="$PLUGIN"; then
      if [[ $tools_ok == 1 ]]; then
        run_step e2e npm run --silent test:e2e
      else
        skip_step e2e "the e2e tools are missing"
      fi
    else
      skip_step e2e "the plugin could not be installed"
    fi
  else
    skip_step install "no Docker engine"
    skip_step e2e "no Docker engine"
  fi
else
  tools_ok=0
  run_step e2e-tools e2e_tools && tools_ok=1
  runnable=()
  for e in "${engines[@]}"; do
    if [[ $e == 28.5 ]] && ! run_step engine-28.5 scripts/fetch-engine.sh build/engines/28.5; then
      skip_step e2e-28.5 "the 28.5 engine could not be unpacked"
      continue
    fi
    runnable+=("$e")
  done
  engines=("${runnable[@]}")
  if [[ $tools_ok == 0 ]]; then
    for e in "${engines[@]}"; do skip_step "e2e-$e" "the e2e tools are missing"; done
  elif run_step plugin make --no-print-directory plugin; then
    [[ ${#engines[@]} == 0 ]] || e2e_engines
  else
    for e in "${engines[@]}"; do skip_step "e2e-$e" "the plugin could not be built"; done
  fi
fi

summary
echo "test.sh: took $((SECONDS - total_start))s"
[[ ${#failed[@]} == 0 ]]
