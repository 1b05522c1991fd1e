#!/usr/bin/env bash
# The whole logship test suite, the one command (`make test`):
#
#   1. deps       npm ci when node_modules is missing or stale
#   2. typecheck  tsc -p tsconfig.json (src, test, bench)
#   3. unit       npm run test:unit
#   4. backend-tools  rsyslog, rsyslog-gnutls, systemd-journald and openssl (apt-installed if root on Debian)
#   5. integration    npm run test:integration: the backends against real rsyslog, journald and fluentd servers
#   6. docker     a Docker engine that answers (started here if needed, and stopped again on exit)
#   7. e2e-tools  busybox-static, docker-registry and openssl (installed with apt if root on Debian)
#   8. install    make install (the plugin from this tree, as logship:latest)
#   9. e2e        npm run test:e2e against the real engine
#
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

stop_dockerd() {
  [[ -f $DOCKERD_PIDFILE ]] || return 0
  local pid
  pid=$(cat "$DOCKERD_PIDFILE")
  rm -f "$DOCKERD_PIDFILE"
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  echo "test.sh: stopping the dockerd this script started (pid $pid; log $DOCKERD_LOG)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  echo "test.sh: dockerd did not stop within 30 s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
}
trap stop_dockerd EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

names=()
results=()
times=()
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
  results+=("skipped: $2")
  failed+=("$1")
  echo
  echo "=== [$1] skipped: $2" >&2
}

is_static_busybox() {
  local b
  for b in /bin/busybox /usr/bin/busybox; do
    # ldd exits 1 on a static binary: under pipefail its status, not grep's, would be the pipeline's.
    [[ -x $b ]] && { LC_ALL=C ldd "$b" 2>&1 || true; } | grep -q 'not a dynamic executable' && return 0
  done
  return 1
}

# apt_install WHAT PACKAGE...: installs the packages if root on Debian, else says what is missing.
apt_install() {
  local what=$1
  shift
  if [[ $(id -u) != 0 || ! -f /etc/debian_version ]]; then
    echo "test.sh: error: the $what need: $* (Debian packages); install them and run again" >&2
    return 1
  fi
  echo "installing $* with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

backend_tools() {
  local missing=()
  command -v rsyslogd >/dev/null || missing+=(rsyslog)
  [[ -n $(find /usr/lib -name lmnsd_gtls.so -print -quit 2>/dev/null) ]] || missing+=(rsyslog-gnutls)
  [[ -x /lib/systemd/systemd-journald ]] && command -v journalctl >/dev/null || missing+=(systemd)
  command -v openssl >/dev/null || missing+=(openssl)
  if [[ ${#missing[@]} == 0 ]]; then
    echo "rsyslog, rsyslog-gnutls, systemd-journald and openssl are present"
    return 0
  fi
  apt_install "backend tests" "${missing[@]}"
}

e2e_tools() {
  local missing=()
  is_static_busybox || missing+=(busybox-static)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v openssl >/dev/null || missing+=(openssl)
  if [[ ${#missing[@]} == 0 ]]; then
    echo "busybox-static, docker-registry and openssl are present"
    return 0
  fi
  apt_install "end-to-end tests" "${missing[@]}"
}

summary() {
  echo
  echo "=== summary"
  local i
  for i in "${!names[@]}"; do
    printf '  %-13s %-28s %4ss\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
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

if run_step docker scripts/ensure-docker.sh "$DOCKERD_PIDFILE" "$DOCKERD_LOG"; then
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

summary
echo "test.sh: took $((SECONDS - total_start))s"
[[ ${#failed[@]} == 0 ]]
