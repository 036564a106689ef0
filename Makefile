# agent-iam: `make` builds the CLI and the library; `make test` installs
# what is missing (scripts/install-deps.sh), builds and runs every test.
# See README.md for the other targets.

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc

PKGS    := openssl jansson sqlite3 libcurl libmicrohttpd raft libuv
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
           -Wmissing-prototypes -Wpointer-arith -Wwrite-strings -Wcast-qual -Wvla
OPT     ?= -O2 -g -D_FORTIFY_SOURCE=2
CFLAGS  ?=
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(OPT) $(WARN) \
           -fstack-protector-strong -fPIC -fvisibility=hidden -pthread \
           -Iinclude -Isrc $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -pthread

LIB_SRC := $(sort $(wildcard src/core/*.c src/http/*.c src/store/*.c src/providers/*.c src/broker/*.c src/leader/*.c src/server/*.c src/cluster/*.c src/follower/*.c src/runtime/*.c))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/*.c tests/core/*.c tests/http/*.c tests/store/*.c tests/broker/*.c tests/leader/*.c tests/follower/*.c tests/providers/*.c tests/server/*.c tests/cluster/*.c tests/runtime/*.c))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

SOVER   := 0
BIN     := $(BUILD)/agent-iam
ALIB    := $(BUILD)/libagentiam.a
SOLIB   := $(BUILD)/libagentiam.so
TESTBIN := $(BUILD)/tests/check_agent_iam
EXAMPLES := $(BUILD)/examples/quickstart $(BUILD)/examples/agent

.PHONY: all deps demo demo-cluster bench-cluster test test-slow unit-test cli-test server-test follower-test cluster-test clients-test security-test netns-test install-test interop-test asan bench fuzz fuzz-build \
        install uninstall clean run lint

DOCS    := $(BUILD)/agent-iam.1 $(BUILD)/agent-iam.bash

all: $(BIN) $(ALIB) $(SOLIB) $(EXAMPLES) $(DOCS)

deps:
	@sh scripts/install-deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tests/%.o: CFLAGS += $(CHECK_CFLAGS)

$(ALIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(SOLIB): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libagentiam.so.$(SOVER) -o $@ $^ $(LDLIBS)

$(BIN): $(CLI_OBJ) $(ALIB)
	$(CC) -o $@ $(CLI_OBJ) $(ALIB) $(LDLIBS)

# The man page and the bash completion, made from `agent-iam help` (the
# command list of src/cli/main.c) so they cannot drift from it.
$(BUILD)/agent-iam.1: $(BIN) scripts/gen-doc.sh
	sh scripts/gen-doc.sh man $(BIN) > $@.tmp && mv $@.tmp $@
$(BUILD)/agent-iam.bash: $(BIN) scripts/gen-doc.sh
	sh scripts/gen-doc.sh completion $(BIN) > $@.tmp && mv $@.tmp $@

$(BUILD)/examples/%: examples/%.c $(ALIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(ALIB) $(LDLIBS)

$(TESTBIN): $(TEST_OBJ) $(ALIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(TEST_OBJ) $(ALIB) $(CHECK_LIBS) $(LDLIBS)

# `make test` starts with the dependencies so a fresh Debian machine needs
# nothing else; the sub-make re-reads pkg-config after they are installed.
test: deps
	@$(MAKE) --no-print-directory lint bench-build unit-test cli-test server-test follower-test cluster-test clients-test security-test netns-test install-test interop-test

# Every test run goes through $(NOLEFT): it fails the run that leaves a
# process behind (tests/lib/no_leftovers.py lists, kills and names them).
NOLEFT  := python3 tests/lib/no_leftovers.py

unit-test: $(TESTBIN)
	$(NOLEFT) $(TESTBIN)

cli-test: $(BIN) $(EXAMPLES)
	$(NOLEFT) sh tests/cli/run.sh $(BIN) $(BUILD)/examples

# The leader as a process over TLS (python3, openssl, curl).
server-test: $(BIN)
	$(NOLEFT) sh tests/server/run.sh $(BIN)

# A leader and its followers as processes over TLS (python3, openssl).
follower-test: $(BIN)
	$(NOLEFT) sh tests/follower/run.sh $(BIN)

# A leader group of three voters as processes over TLS (DESIGN §9).
cluster-test: $(BIN) $(EXAMPLES)
	$(NOLEFT) sh tests/cluster/run.sh $(BIN)

# The Python and Node clients and the OpenAPI document (DESIGN §10)
# against a real leader and follower over TLS (tests/clients/run.sh).
clients-test: $(BIN)
	$(NOLEFT) sh tests/clients/run.sh $(BIN)

# The service under attack (DESIGN §8): real processes on 127.0.0.0/8.
security-test: $(BIN)
	$(NOLEFT) sh tests/security/run.sh $(BIN)

# A follower on a bad network: a veth into a network namespace, a silent
# partition and a 16 kbit/s link (ip and tc from iproute2; as root, else
# it says why it skips).
netns-test: $(BIN)
	$(NOLEFT) sh tests/netns/run.sh $(BIN)

install-test: all
	$(NOLEFT) sh tests/install/run.sh

interop-test: $(BIN) $(BUILD)/tests/interop_tool
	$(NOLEFT) sh tests/interop/run.sh $(BUILD)/tests/interop_tool

# The tests that take a minute or more each, kept out of `make test` (CI
# runs both): eight CLI writers at once on one home, 1,600 revocations.
test-slow: deps
	@$(MAKE) --no-print-directory $(BIN)
	$(NOLEFT) sh tests/cli/fault_parallel.sh $(BIN)

$(BUILD)/tests/interop_tool: tests/interop/interop_tool.c $(ALIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(ALIB) $(LDLIBS)

# Sanitizers: a separate tree, Check in no-fork mode so leaks are reported.
asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan \
	    OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    LDFLAGS="-fsanitize=address,undefined" asan-run

.PHONY: asan-run
asan-run: LDLIBS += -fsanitize=address,undefined
asan-run: $(TESTBIN) $(BIN) $(EXAMPLES) $(BUILD)/tests/interop_tool
	CK_FORK=no ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(NOLEFT) $(TESTBIN)
	ASAN_OPTIONS=detect_leaks=1 $(NOLEFT) sh tests/cli/run.sh $(BIN) $(BUILD)/examples
	ASAN_OPTIONS=detect_leaks=1 $(NOLEFT) sh tests/server/run.sh $(BIN)
	ASAN_OPTIONS=detect_leaks=1 $(NOLEFT) sh tests/follower/run.sh $(BIN)
	ASAN_OPTIONS=detect_leaks=1 $(NOLEFT) sh tests/cluster/run.sh $(BIN)
	ASAN_OPTIONS=detect_leaks=1 $(NOLEFT) sh tests/security/run.sh $(BIN)
	ASAN_OPTIONS=detect_leaks=1 $(NOLEFT) sh tests/netns/run.sh $(BIN)
	ASAN_OPTIONS=detect_leaks=1 $(NOLEFT) sh tests/interop/run.sh $(BUILD)/tests/interop_tool

# ThreadSanitizer over the unit tests (the threads suite is the point).
tsan: deps
	@$(MAKE) --no-print-directory BUILD=build/tsan \
	    OPT="-O1 -g -fsanitize=thread -fno-omit-frame-pointer" tsan-run

.PHONY: tsan tsan-run
tsan-run: LDLIBS += -fsanitize=thread -Wl,--export-dynamic-symbol=syscall
tsan-run: $(TESTBIN)
	CK_FORK=no TSAN_OPTIONS=halt_on_error=1 $(TESTBIN)

# The benchmark programs build in `make test` too, so a change of an
# internal call cannot leave them broken until the next `make bench`.
.PHONY: bench-build
bench-build: $(BUILD)/bench/verify $(BUILD)/bench/revocations

bench: deps
	@$(MAKE) --no-print-directory $(BUILD)/bench/verify $(BUILD)/bench/revocations $(BIN)
	sh bench/run.sh $(BUILD)/bench/verify $(BUILD)/bench/revocations
	sh bench/http/run.sh $(BIN)
	sh bench/follower/run.sh $(BIN)
	$(NOLEFT) sh bench/cluster/run.sh $(BIN)

# The leader group alone: failover under SIGKILL (KILLS=20), write latency
# at RATE=500/s and the ceiling, catch-up after CATCHUP=100000 writes.
bench-cluster: deps
	@$(MAKE) --no-print-directory $(BIN)
	$(NOLEFT) sh bench/cluster/run.sh $(BIN)

# Memory over time: a leader and two followers under mixed traffic for
# SOAK_MINUTES (default 30), resident set and descriptors sampled each
# minute, a verdict on the second half (bench/README.md). Not in make test.
SOAK_MINUTES ?= 30
.PHONY: soak
soak: $(BIN)
	sh bench/soak/run.sh $(BIN) --minutes $(SOAK_MINUTES)

$(BUILD)/bench/verify: bench/verify.c $(ALIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(ALIB) $(LDLIBS)

$(BUILD)/bench/revocations: bench/revocations.c $(ALIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(ALIB) $(LDLIBS)

# libFuzzer: one target per parser of untrusted bytes (fuzz/README.md).
# `make fuzz` runs each for FUZZ_SECONDS and fails when any finds a crash,
# a leak or a hang; FUZZ_TARGETS="body sts" picks some. The library is
# compiled once into $(BUILD)/fuzz/obj with coverage and sanitizers.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= token body feed snapshot provider sts
FUZZ_FLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -O1 -g \
              -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
              -fno-omit-frame-pointer -I. -Iinclude -Isrc $(PKG_CFLAGS)
FUZZ_OBJ := $(LIB_SRC:%.c=$(BUILD)/fuzz/obj/%.o)
FUZZ_BINS := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)

fuzz:
	@sh scripts/install-deps.sh --fuzz
	@$(MAKE) --no-print-directory fuzz-build
	sh fuzz/run.sh $(BUILD)/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-build: $(FUZZ_BINS)

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -MMD -MP -c $< -o $@

# Kept between builds (make would delete them as intermediate files).
.SECONDARY: $(FUZZ_OBJ)

# The replica targets share a temporary home (fuzz/home.c).
$(BUILD)/fuzz/fuzz_feed $(BUILD)/fuzz/fuzz_snapshot: fuzz/home.c fuzz/home.h

$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) $(WARN) -fsanitize=fuzzer -o $@ $(filter %.c,$^) \
	    $(FUZZ_OBJ) $(PKG_LIBS)

demo: deps
	@$(MAKE) --no-print-directory $(BIN)
	sh scripts/demo.sh $(BIN)

# A leader group of three voters and a follower; the leader killed with
# SIGKILL during a stream of revocations (DESIGN §9).
demo-cluster: deps
	@$(MAKE) --no-print-directory $(BIN)
	$(NOLEFT) sh scripts/demo-cluster.sh $(BIN)

run: deps
	@$(MAKE) --no-print-directory all
	sh scripts/walkthrough.sh $(BIN) $(BUILD)/examples

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
	    $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	    $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/agent-iam
	install -m 0644 $(BUILD)/agent-iam.1 $(DESTDIR)$(PREFIX)/share/man/man1/agent-iam.1
	install -m 0644 $(BUILD)/agent-iam.bash \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions/agent-iam
	install -m 0644 $(ALIB) $(DESTDIR)$(PREFIX)/lib/libagentiam.a
	install -m 0755 $(SOLIB) $(DESTDIR)$(PREFIX)/lib/libagentiam.so.$(SOVER)
	ln -sf libagentiam.so.$(SOVER) $(DESTDIR)$(PREFIX)/lib/libagentiam.so
	install -m 0644 include/agent_iam.h $(DESTDIR)$(PREFIX)/include/agent_iam.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(shell sed -n 's/^#define AI_VERSION "\(.*\)"/\1/p' include/agent_iam.h)|g' \
	    agent-iam.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/agent-iam.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/agent-iam $(DESTDIR)$(PREFIX)/lib/libagentiam.* \
	    $(DESTDIR)$(PREFIX)/include/agent_iam.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/agent-iam.pc \
	    $(DESTDIR)$(PREFIX)/share/man/man1/agent-iam.1 \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions/agent-iam

# Footguns banned mechanically; includes checked against DESIGN §1's module
# order and private headers (scripts/lint-layers.py, its own test tests/lint).
lint:
	@! grep -nE '\b(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|gets)\s*\(' \
	    src/*/*.c || (echo "lint: banned function" && false)
	@python3 scripts/lint-layers.py || (echo "lint: include against DESIGN §1 (scripts/lint-layers.py)" && false)
	@sh tests/lint/run.sh

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d)
