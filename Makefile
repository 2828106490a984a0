# kars - top-level build. `make help` lists the targets.
#
# Everything builds under build/ (build/asan/ for the sanitizer build used by
# `make check`). BPF objects are compiled with clang -target bpf against the
# checked-in vmlinux/ header (CO-RE); skeletons are generated, never committed.

SHELL := /bin/bash
ARCH ?= x86
BUILD ?= build
PREFIX ?= /usr/local
SANITIZE ?=

CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool

DEPS_PACKAGES := build-essential clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev \
	libjansson-dev libcmocka-dev libevent-dev liburing-dev libcap-dev pkg-config \
	iproute2 iptables util-linux procps clang-format libclang-rt-14-dev curl socat \
	libssl-dev libsodium-dev libcurl4-openssl-dev libyaml-dev nginx wrk \
	libidn2-dev dnsmasq-base qemu-system-x86 busybox-static cpio kmod dash libseccomp-dev \
	shellcheck
# e2e/sandbox_ops: a socket and an ioctl from inside a sandbox (python3), JSON (jq)
DEPS_PACKAGES += python3 jq

WARN := -Wall -Wextra -Werror -Wno-unused-parameter -Wmissing-prototypes -Wshadow
CFLAGS := -std=gnu11 -O2 -g $(WARN) -D_GNU_SOURCE -Iuserspace/lib -Ibpf/include -I$(BUILD)/bpf
LDLIBS := -lbpf -lelf -lz -ljansson -lsodium -lcrypto -lyaml -lidn2 -lm -lseccomp
ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Ivmlinux/$(ARCH) -Ibpf/include \
	-Wall -Werror

LIB_SRCS := $(wildcard userspace/lib/*.c)
LIB_OBJS := $(patsubst userspace/%.c,$(BUILD)/%.o,$(LIB_SRCS))
LIBKARS := $(BUILD)/lib/libkars.a

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.skel.h,$(BPF_SRCS))

KARSD_SRCS := $(wildcard userspace/tracer/*.c)
KARSD_OBJS := $(patsubst userspace/%.c,$(BUILD)/%.o,$(KARSD_SRCS))
# Everything of karsd but its main(), for tests that drive its pieces.
KARSD_LIB_OBJS := $(filter-out $(BUILD)/tracer/karsd.o,$(KARSD_OBJS))

UNIT_SRCS := $(wildcard selftests/unit/test_*.c)
UNIT_BINS := $(patsubst selftests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))

BPFTEST_SRCS := $(wildcard selftests/bpf/*.c)
BPFTEST_BIN := $(BUILD)/tests/bpf_selftests

BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

ROUTER_SRCS := $(wildcard userspace/router/*.c)
ROUTER_OBJS := $(patsubst userspace/%.c,$(BUILD)/%.o,$(ROUTER_SRCS))
# Everything of kars-router but its main(), for unit tests.
ROUTER_LIB_OBJS := $(filter-out $(BUILD)/router/main.o,$(ROUTER_OBJS))

CONTROLLER_SRCS := $(wildcard userspace/controller/*.c)
CONTROLLER_OBJS := $(patsubst userspace/%.c,$(BUILD)/%.o,$(CONTROLLER_SRCS))

BINS := $(BUILD)/bin/karsd $(BUILD)/bin/kars $(BUILD)/bin/kars-router $(BUILD)/bin/kars-controller
# The fake OpenAI / Azure OpenAI model server the router's tests talk to.
FAKE_UPSTREAM := $(BUILD)/bin/fake-upstream
# The fake Azure AD token endpoint and IMDS the router's credential tests use.
FAKE_IDENTITY := $(BUILD)/bin/fake-identity

.PHONY: crds all deps check unit selftest vmtest fuzz bench bench-connect bench-audit bench-policy bench-router bench-dns bench-egress install demo demo-dataplane format format-check clean help
.DEFAULT_GOAL := all
# Keep the BPF object between the compile and the skeleton steps.
.SECONDARY:

all: $(BINS) $(FAKE_UPSTREAM) $(FAKE_IDENTITY) $(UNIT_BINS) $(BPFTEST_BIN) $(BENCH_BINS)

help:
	@echo "make deps        install every Debian package the build and tests need (apt-get)"
	@echo "make all         build karsd, the BPF objects, tests and benchmarks under $(BUILD)/"
	@echo "make check       deps + build + unit tests (plain and ASan/UBSan) + BPF selftests (host and VM)"
	@echo "make unit        unit tests only"
	@echo "make selftest    BPF selftests only (root: real sockets, netns, cgroups)"
	@echo "make vmtest      BPF selftests in a VM on Debian's 6.1 kernel with BPF LSM (qemu)"
	@echo "make fuzz        fuzz the parsers of untrusted input (FUZZ_SECONDS=$(FUZZ_SECONDS))"
	@echo "make bench       every benchmark; make bench-connect, bench-audit, bench-policy, bench-router, bench-dns or bench-egress for one area"
	@echo "make install     install binaries under PREFIX=$(PREFIX)"
	@echo "make crds        regenerate deploy/crds/ from the schema"
	@echo "make format-check clang-format of the C sources, shellcheck of selftests/e2e/*.sh"
	@echo "make demo        local mode on this host: kars up, a sandbox running the sample agent, kars trace, teardown"
	@echo "make demo-dataplane  the data plane alone: karsd, a sandbox's cgroups, kars trace --network"

# Installs only what is missing, so `make check` stays fast on a ready machine.
# Node.js and npm are looked for as commands (tests drive real npm clients such
# as `openai`); a machine with another Node.js build keeps it.
deps:
	@missing=$$(for p in $(DEPS_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	command -v node >/dev/null && command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing $$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "deps: all packages present"; fi

# --- BPF -------------------------------------------------------------------
$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/include/*.h) | $(BUILD)/bpf
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp.o
	$(BPFTOOL) gen object $@ $@.tmp.o
	@rm -f $@.tmp.o

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst .,_,$*)_bpf > $@

# --- userspace ---------------------------------------------------------------
$(BUILD)/%.o: userspace/%.c $(BPF_SKELS) $(wildcard userspace/*/*.h bpf/include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(dir $<) -Iuserspace/tracer -c $< -o $@

# Built afresh, so that the object of a deleted source never lingers in it.
$(LIBKARS): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/bin/karsd: $(KARSD_OBJS) $(LIBKARS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -levent

$(BUILD)/bin/kars-router: $(ROUTER_OBJS) $(LIBKARS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -levent -levent_openssl -lssl -lcurl

$(BUILD)/bin/kars-controller: $(CONTROLLER_OBJS) $(LIBKARS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lcurl

$(FAKE_UPSTREAM): $(wildcard selftests/fake_upstream/*.c selftests/fake_upstream/*.h) $(LIBKARS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $(filter %.c,$^) $(LIBKARS) -o $@ $(LDLIBS) -levent -lm

$(FAKE_IDENTITY): $(wildcard selftests/fake_identity/*.c) $(LIBKARS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $(filter %.c,$^) $(LIBKARS) -o $@ $(LDLIBS) -levent

# test_credentials starts the fake identity server of its own build.
$(BUILD)/tests/unit/test_credentials: $(FAKE_IDENTITY)

$(BUILD)/bin/kars: $(patsubst userspace/%.c,$(BUILD)/%.o,$(wildcard userspace/cli/*.c)) $(LIBKARS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/unit/%: selftests/unit/%.c $(KARSD_LIB_OBJS) $(ROUTER_LIB_OBJS) $(LIBKARS) $(wildcard selftests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iuserspace/tracer -Iuserspace/router -Iselftests/unit $(LDFLAGS) $< $(KARSD_LIB_OBJS) $(ROUTER_LIB_OBJS) $(LIBKARS) -o $@ $(LDLIBS) -levent -levent_openssl -lssl -lcurl -lcmocka

# What the local sandbox tests run inside a sandbox: no sanitizer, since it
# runs under the kars-strict seccomp profile.
LOCAL_PROBE := $(BUILD)/tests/local_probe
$(LOCAL_PROBE): selftests/local/probe.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 $(WARN) -D_GNU_SOURCE $< -o $@
$(BUILD)/tests/unit/test_local_sandbox: $(LOCAL_PROBE)

# A local sandbox made with the library, for selftests/e2e/sandbox_ops.sh.
SANDBOX_TOOL := $(BUILD)/tests/sandbox_tool
$(SANDBOX_TOOL): selftests/local/sandbox_tool.c $(LIBKARS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(LIBKARS) -o $@ $(LDLIBS)
all: $(SANDBOX_TOOL)

$(BPFTEST_BIN): $(BPFTEST_SRCS) $(wildcard selftests/bpf/*.h) $(LIBKARS) $(BPF_SKELS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iselftests/bpf $(LDFLAGS) $(BPFTEST_SRCS) $(LIBKARS) -o $@ $(LDLIBS) -luring -lpthread -lresolv

$(BUILD)/bench/%: bench/%.c $(LIBKARS) $(wildcard bench/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iselftests/bpf $(LDFLAGS) $< $(LIBKARS) -o $@ $(LDLIBS)

$(BUILD)/bpf:
	@mkdir -p $@

# --- tests -------------------------------------------------------------------
# Each runner prints "<name>: N passed, N failed"; selftests/run.sh adds them
# up into the final "N passed, N failed" line and the exit status. The BPF
# selftests run twice: with the build karsd picks here, and with the build for
# kernels before 6.2 (socket cgroups stamped at creation).
unit: $(UNIT_BINS)
	@selftests/run.sh $(UNIT_BINS)

selftest: $(BINS) $(BPFTEST_BIN)
	@selftests/run.sh "selftests/e2e/cli.sh $(BUILD)" "$(BPFTEST_BIN) --karsd $(BUILD)/bin/karsd"

# The same binaries and CO-RE objects on Debian 12's own kernel (6.1) with BPF
# LSM active, in qemu (selftests/vm/vmtest.sh; the kernel .deb is unpacked
# under $(BUILD)/vm, never installed).
vmtest: $(BINS) $(BPFTEST_BIN)
	@selftests/run.sh "selftests/vm/vmtest.sh $(BUILD)"

# A short fuzz run of every parser of untrusted bytes; `make fuzz FUZZ_SECONDS=600`
# for a longer one.
FUZZ_SECONDS ?= 30
fuzz:
	@selftests/run.sh "selftests/fuzz/run.sh $(FUZZ_SECONDS)"

ASAN_UNIT_BINS := $(patsubst $(BUILD)/%,build/asan/%,$(UNIT_BINS))

check: deps
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=1 $(ASAN_UNIT_BINS)
	@selftests/run.sh $(UNIT_BINS) \
		$(foreach t,$(ASAN_UNIT_BINS),"ASAN_OPTIONS=detect_leaks=1 $(t) --tag asan") \
		"selftests/fuzz/run.sh 10" \
		"selftests/e2e/cli.sh $(BUILD)" \
		"selftests/e2e/audit.sh $(BUILD)" \
		"selftests/e2e/schema.sh $(BUILD)" \
		"selftests/e2e/cel.sh $(BUILD)" \
		"selftests/e2e/store.sh $(BUILD)" \
		"selftests/e2e/migrate.sh $(BUILD)" \
		"selftests/e2e/openai_client.sh $(BUILD)" \
		"selftests/e2e/openai_client.sh $(BUILD) router" \
		"selftests/e2e/router_policy.sh $(BUILD)" \
		"selftests/e2e/router_governance.sh $(BUILD)" \
		"selftests/e2e/controller.sh $(BUILD)" \
		"selftests/e2e/local_mode.sh $(BUILD)" \
		"selftests/e2e/local_verbs.sh $(BUILD)" \
		"selftests/e2e/router_flow.sh $(BUILD)" \
		"selftests/e2e/egress_proxy.sh $(BUILD)" \
		"selftests/e2e/egress_transparent.sh $(BUILD)" \
		"selftests/e2e/sandbox_ops.sh $(BUILD)" \
		"$(BPFTEST_BIN) --karsd $(BUILD)/bin/karsd" \
		"$(BPFTEST_BIN) --karsd $(BUILD)/bin/karsd --socket-cgroup stamp" \
		"selftests/vm/vmtest.sh $(BUILD)"

bench: bench-connect bench-audit bench-policy bench-router bench-dns bench-egress

bench-connect: $(BINS) $(BUILD)/bench/connect
	@bench/connect.sh $(BUILD)

# The audit chain's group commit against plain write()+fdatasync() of the
# same bytes, on the file system that holds $(BUILD)/.
bench-audit: $(BUILD)/bench/audit
	@$(BUILD)/bench/audit run --dir $(BUILD)

# Governance evaluation latency per call, profiles of 10 to 10,000 rules
# against an empty profile, in one run.
bench-policy: $(BUILD)/bench/policy
	@$(BUILD)/bench/policy
# kars-router against nginx proxy_pass in front of the fake upstream, with
# wrk; then the audit chain's group-commit rate. Root (its own netns).
bench-router: $(BUILD)/bin/kars-router $(FAKE_UPSTREAM) $(BUILD)/bench/audit
	@bench/router.sh $(BUILD)
# The DNS blocklist at 1M names: load time, kernel memory, queries/s through
# dnsmasq with and without the programs (the agent's, and the router's with its
# FQDN allowlist learning every answer), lookups/s (bench/dns.sh).
bench-dns: $(BINS) $(BUILD)/bench/dns
	@bench/dns.sh $(BUILD)
# HTTPS downloads and handshakes through the egress proxy (CONNECT) against
# the same direct, interleaved, in its own netns (bench/egress.sh).
bench-egress: $(BUILD)/bin/kars-router
	@bench/egress.sh $(BUILD)

install: $(BINS)
	install -d $(DESTDIR)$(PREFIX)/sbin
	install -m 0755 $(BUILD)/bin/karsd $(DESTDIR)$(PREFIX)/sbin/karsd
	install -m 0755 $(BUILD)/bin/kars-router $(DESTDIR)$(PREFIX)/sbin/kars-router
	install -m 0755 $(BUILD)/bin/kars-controller $(DESTDIR)$(PREFIX)/sbin/kars-controller
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/bin/kars $(DESTDIR)$(PREFIX)/bin/kars

# Local mode: kars up --local, a sandbox running demo/sample-agent, kars trace,
# teardown. demo-dataplane: the data plane alone (karsd, a sandbox's cgroups,
# a UID-1000 agent trying to get out, kars trace).
demo: deps $(BINS)
	@demo/local.sh $(BUILD)

demo-dataplane: deps $(BINS)
	@demo/dataplane.sh $(BUILD)

# deploy/crds/ is generated from the schema (userspace/lib/schema_*.c);
# unit/test_crd fails when the checked-in files differ from this output.
crds: $(BUILD)/bin/kars
	$(BUILD)/bin/kars crds --out deploy/crds

format:
	clang-format -i $$(git ls-files '*.c' '*.h' | grep -v '^vmlinux/')

format-check:
	@bad=$$(for f in $$(git ls-files '*.c' '*.h' | grep -v '^vmlinux/'); do \
		clang-format --dry-run --Werror $$f >/dev/null 2>&1 || echo $$f; done); \
	if [ -n "$$bad" ]; then echo "format-check: not clang-formatted (run 'make format'):"; \
		echo "$$bad"; exit 1; fi
	@# the e2e scripts: no shellcheck finding (warnings and style alike)
	@shellcheck -x selftests/e2e/*.sh || { echo "format-check: shellcheck selftests/e2e/*.sh"; exit 1; }

clean:
	rm -rf build
