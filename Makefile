# antibody — build, test and benchmark.
#   make            build build/antibody and build/libantibody.a (installs deps first)
#   make demo       run the embedded demo (the README's first command)
#   make test       all tests: unit + gradient checks, sanitizer build, oracle interop
#   make fuzz       the libFuzzer harnesses of tests/fuzz (clang) and their seed corpora
CC      ?= cc
STD     := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
# One binary for any x86-64 CPU: the library is built for a baseline (x86-64-v2) and the
# vector kernels carry their own AVX2 and AVX-512 bodies, chosen at run time
# (src/kernels/simd.h; ANTIBODY_ISA=avx512|avx2|scalar forces one).
MARCH   ?= $(if $(filter x86_64,$(shell uname -m)),-march=x86-64-v2 -mtune=generic)
OPT     ?= -O3 $(MARCH) -fno-math-errno
CFLAGS  := $(STD) $(WARN) $(OPT) -fopenmp -Isrc -g
# oneDNN is the SGEMM; OpenBLAS (optional) is loaded at run time (src/kernels/blas.c).
LDLIBS  := -ldnnl -ljansson -lpcre2-8 -lutf8proc -lm -ldl -lpthread -fopenmp

BUILD   ?= build
SRC     := $(filter-out src/cli/%,$(wildcard src/*/*.c))
CLI     := $(wildcard src/cli/*.c)
OBJ     := $(SRC:%.c=$(BUILD)/%.o)
CLIOBJ  := $(CLI:%.c=$(BUILD)/%.o)
TESTS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
TOOLS   := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(wildcard tests/tools/*.c))

.PHONY: all deps demo test test-unit test-asan test-oracle test-demo bench clean fuzz
all: deps $(BUILD)/antibody $(TESTS) $(BENCHES) $(TOOLS)

deps: $(BUILD)/.deps
$(BUILD)/.deps: scripts/deps.sh
	@bash scripts/deps.sh
	@mkdir -p $(BUILD) && touch $@

# The version and commit baked into the binary (antibody --version, provenance records):
# BUILD/gen/version.h is rewritten only when they change, so a commit rebuilds one file.
VERSION := $(shell cat VERSION)
COMMIT  := $(shell c=$$(git rev-parse --short=12 HEAD 2>/dev/null) && { git diff --quiet HEAD -- 2>/dev/null || c=$$c-dirty; echo $$c; } || echo unknown)
$(BUILD)/gen/version.h: FORCE
	@mkdir -p $(dir $@)
	@printf '#define ANTIBODY_VERSION "%s"\n#define ANTIBODY_COMMIT "%s"\n' '$(VERSION)' '$(COMMIT)' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
$(BUILD)/src/util/version.o: $(BUILD)/gen/version.h
$(BUILD)/src/util/version.o: CFLAGS += -I$(BUILD)
.PHONY: FORCE
FORCE:

$(BUILD)/%.o: %.c Makefile | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libantibody.a: $(OBJ)
	rm -f $@ && ar rcs $@ $^  # from scratch: a moved or deleted file leaves no stale member behind

$(BUILD)/antibody: $(CLIOBJ) $(BUILD)/libantibody.a
	$(CC) $(CFLAGS) -o $@ $(CLIOBJ) $(BUILD)/libantibody.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libantibody.a tests/testing.h tests/tiny_fixture.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(BUILD)/libantibody.a $(LDLIBS)

# drivers the oracle tests run (not tests themselves)
$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libantibody.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(BUILD)/libantibody.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libantibody.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libantibody.a $(LDLIBS)

demo: all
	./$(BUILD)/antibody demo

# Unit tests, the reduced demo end to end, the unit tests again under ASan+UBSan,
# then the interop tests against the Hugging Face stack; one summary line at the end.
test: all
	@bash tests/run_all.sh $(BUILD)

test-unit: all
	@bash tests/run_unit.sh $(BUILD)

test-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    build-asan/antibody $(patsubst $(BUILD)/%,build-asan/%,$(TESTS))
	@ASAN_OPTIONS=detect_leaks=1 ANTIBODY_SANITIZED=1 bash tests/run_unit.sh build-asan

test-oracle: all
	@bash tests/run_oracle.sh $(BUILD)

test-demo: all
	@bash tests/run_demo.sh $(BUILD)

bench: all
	@bash bench/run.sh

# libFuzzer harnesses (docs/reliability.md): the library again with clang, ASan and UBSan,
# one binary per loader, seeds from ../shared in build-fuzz/corpus/.
FUZZ_CC    ?= clang
FUZZ_BUILD := build-fuzz
FUZZ_FLAGS := $(STD) $(WARN) -Wno-unknown-warning-option -Wno-pass-failed -O1 -g -march=native -fno-math-errno -fno-omit-frame-pointer -fopenmp -Isrc \
              -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_OBJ   := $(SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZERS    := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))

fuzz: deps $(FUZZ_BUILD)/.deps $(FUZZERS) $(FUZZ_BUILD)/make_seeds $(BUILD)/antibody
	@bash tests/fuzz/seeds.sh $(FUZZ_BUILD) $(BUILD)
	@echo "fuzz: harnesses in $(FUZZ_BUILD)/; run them with: bash tests/fuzz/run.sh $(FUZZ_BUILD) SECONDS"

$(FUZZ_BUILD)/.deps: scripts/deps.sh
	@bash scripts/deps.sh --fuzz
	@mkdir -p $(FUZZ_BUILD) && touch $@

$(FUZZ_BUILD)/src/%.o: src/%.c Makefile | $(BUILD)/.deps $(FUZZ_BUILD)/.deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/src/util/version.o: $(BUILD)/gen/version.h
$(FUZZ_BUILD)/src/util/version.o: FUZZ_FLAGS += -I$(BUILD)

$(FUZZ_BUILD)/libantibody.a: $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^  # from scratch: a moved or deleted file leaves no stale member behind

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h tests/fuzz/tiny.c $(FUZZ_BUILD)/libantibody.a
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< tests/fuzz/tiny.c $(FUZZ_BUILD)/libantibody.a $(LDLIBS)

$(FUZZ_BUILD)/make_seeds: tests/fuzz/make_seeds.c tests/fuzz/tiny.c $(FUZZ_BUILD)/libantibody.a
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< tests/fuzz/tiny.c $(FUZZ_BUILD)/libantibody.a $(LDLIBS)

-include $(OBJ:.o=.d) $(CLIOBJ:.o=.d) $(FUZZ_OBJ:.o=.d)

clean:
	rm -rf build build-asan build-fuzz
