# FaceLink: GNU Makefile.
#
#   make              build the library and build/facelink
#   make run          set up (packages, models), build, start the server on 127.0.0.1:8085
#   make test         set up, build, run every test; last line: tests: N passed, N failed, N skipped
#   make test SAN=address,undefined   the same under sanitizers (own build dir)
#   make eval / make bench            long accuracy runs / benchmarks (not tests)
#
# Modules are picked up by wildcard: a new .c file in src/<module>/ needs no
# Makefile change. Files named *_avx2.c / *_avx512.c get their ISA flags here
# and nowhere else; callers dispatch at run time (core: fl_cpu_isa).

CC      ?= cc
OPT     ?= -O2
SAN     ?=
WERROR  ?=
PKGS    := jansson libturbojpeg spng libwebp libexif sqlite3 libmicrohttpd libcrypto

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS  := -std=c11 $(OPT) -g -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-missing-field-initializers -fvisibility=hidden \
           -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
           -Iinclude -Isrc $(PKG_CFLAGS) $(if $(WERROR),-Werror) $(EXTRA_CFLAGS)
LDLIBS  := $(PKG_LIBS) -lXNNPACK -lpthreadpool -lcpuinfo -lm -lpthread
LDFLAGS ?=
ifneq ($(strip $(SAN)),)
CFLAGS  += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SAN)
endif
-include config.mk

comma   := ,
BUILD   := build$(if $(strip $(SAN)),-$(subst $(comma),-,$(strip $(SAN))))

MODULES := core img nn face index store api server
LIB_SRC := $(foreach m,$(MODULES),$(wildcard src/$(m)/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB     := $(BUILD)/libfacelink.a
CLI_SRC := $(wildcard src/cli/*.c)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
BIN     := $(BUILD)/facelink
TESTS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
TEST_HELPERS := $(wildcard tests/helpers/*.c)
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz-replay/%,$(FUZZ_SRC))
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))

all: $(BIN)

$(BUILD)/%_avx2.o: CFLAGS += -mavx2 -mfma
$(BUILD)/%_avx512.o: CFLAGS += -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $(CLI_OBJ) $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(LIB) $(TEST_HELPERS) tests/runner/t.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/runner -Itests/helpers $< $(TEST_HELPERS) $(LIB) $(LDFLAGS) $(LDLIBS) -o $@

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< $(LIB) $(LDFLAGS) $(LDLIBS) -o $@

benches: $(BENCHES)
# Fuzz targets: replayed over their corpus in `make test` (any compiler);
# `make fuzz` builds them with libFuzzer (clang), `make fuzz-quick` runs each 60 s.
$(BUILD)/fuzz-replay/%: tests/fuzz/%.c tests/fuzz/standalone_main.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< tests/fuzz/standalone_main.c $(LIB) $(LDFLAGS) $(LDLIBS) -o $@

FUZZ_CFLAGS := -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L \
               -D_DEFAULT_SOURCE -Iinclude -Isrc $(PKG_CFLAGS)
build-fuzz/%: tests/fuzz/%.c $(LIB_SRC)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) $< $(LIB_SRC) $(LDLIBS) -o $@

fuzz: $(FUZZ_BIN)

fuzz-quick: fuzz
	@for t in $(FUZZ_BIN); do n=$$(basename $$t); c=tests/fuzz/corpus/$${n#fuzz_}; \
	  mkdir -p build-fuzz/corpus/$$n; echo "== $$n"; \
	  $$t -max_total_time=60 build-fuzz/corpus/$$n $$c || exit 1; done

setup:
	@scripts/setup

tests: $(TESTS) $(BIN) $(FUZZ_REPLAY)

# Every test binary and script; tests/run prints the total as the last line.
test: setup
	@$(MAKE) --no-print-directory tests
	@BUILD=$(BUILD) tests/run $(TESTS)

run: setup
	@$(MAKE) --no-print-directory $(BIN)
	$(BIN) serve --listen 127.0.0.1:8085 --data-dir data

eval: setup
	@$(MAKE) --no-print-directory $(BIN)
	@BUILD=$(BUILD) scripts/eval

bench: setup
	@$(MAKE) --no-print-directory $(BIN) benches
	@BUILD=$(BUILD) scripts/bench

lint:
	tools/checksrc.sh
	tools/check_headers.sh

clean:
	rm -rf build build-*

.PHONY: all setup tests test run eval bench benches lint fuzz fuzz-quick clean
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
