# xlmr.c — build, test and run.
#   make                 ./xlmr, optimised for this CPU (NATIVE=1) with OpenMP (OMP=1)
#   make NATIVE=0 OMP=0  the portable scalar reference build (any C99 compiler, any CPU)
#   make test            builds everything and runs the test suite (tests/run.sh)
#   make run             builds, fetches data/ and runs the default experiment grid
#   make sanitize        ./xlmr-san with AddressSanitizer + UBSan (clang)
#   make test-sanitize   the whole suite against the sanitizer build
#   make mpi             ./xlmr-mpi with mpicc (-DXLMR_MPI, dist.h): mpirun -np P ./xlmr-mpi train|eval|...
CC      ?= gcc
NATIVE  ?= 1
OMP     ?= 1
BUILD   ?= build
BIN     ?= xlmr
SAN     ?= 0

# -fno-math-errno: nothing reads errno after a math call, and with it sqrtf is one
# (vectorisable) instruction, not a call guarded by a branch; results are unchanged.
CFLAGS_BASE = -std=c99 -O2 -g -fno-math-errno -Wall -Wextra -Wshadow -Wno-unused-parameter -D_POSIX_C_SOURCE=200809L -MMD -MP
ifeq ($(NATIVE),1)
  # -march=native only where the compiler accepts it (cross builds, odd hosts)
  ARCH := $(shell $(CC) -march=native -x c -c -o /dev/null /dev/null 2>/dev/null && echo -march=native)
else
  ARCH := -DXLMR_SCALAR_ONLY
endif
ifeq ($(OMP),1)
  OMPFLAG := $(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c -o /dev/null - 2>/dev/null && echo -fopenmp)
endif
ifeq ($(SAN),1)
  SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
endif
CFLAGS  += $(CFLAGS_BASE) $(ARCH) $(OMPFLAG) $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS += $(OMPFLAG) $(SANFLAGS)
LDLIBS  += -lm

# The program is main.c + the commands (cmd_*.c); every other .c at the top
# level is a module of the library libxlmr.a.
LIB_SRC  := $(filter-out main.c cmd_%.c,$(wildcard *.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CMD_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cmd_*.c))
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/%)

.PHONY: all test test-bins run data corpus sanitize test-sanitize fuzz clean check-scalar aarch64 test-aarch64 mpi

all: $(BIN)

$(BUILD)/%.o: %.c | $(BUILD)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/tests/%.o: tests/%.c | $(BUILD)
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS) -I. -c $< -o $@

$(BUILD)/libxlmr.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BIN): $(BUILD)/main.o $(CMD_OBJ) $(BUILD)/libxlmr.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/test_%: $(BUILD)/tests/test_%.o $(BUILD)/libxlmr.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD):
	@mkdir -p $(BUILD)

# with mpicc on the machine, `make test` builds ./xlmr-mpi too, for tests/test_mpi.sh
MPICC := $(shell command -v mpicc 2>/dev/null)
test: test-bins $(if $(and $(MPICC),$(filter build,$(BUILD))),mpi)
	XLMR=$(CURDIR)/$(BIN) tests/run.sh $(BUILD)

test-bins: $(BIN) $(TEST_BIN)

sanitize:
	$(MAKE) CC=clang SAN=1 BUILD=build-san BIN=xlmr-san xlmr-san

# The same program on MPI (Debian: openmpi-bin libopenmpi-dev), in its own build folder.
mpi:
	$(MAKE) CC=mpicc BUILD=build-mpi BIN=xlmr-mpi EXTRA_CFLAGS=-DXLMR_MPI xlmr-mpi

test-sanitize:
	$(MAKE) CC=clang SAN=1 BUILD=build-san BIN=xlmr-san test

# The portable reference build, as strict as the standard allows.
check-scalar:
	$(MAKE) NATIVE=0 OMP=0 BUILD=build-scalar BIN=xlmr-scalar EXTRA_CFLAGS="-pedantic -Werror" xlmr-scalar

# The portable build cross-compiled for 64-bit ARM and tested under qemu-user
# (Debian: gcc-aarch64-linux-gnu qemu-user).
AARCH64_CC  ?= aarch64-linux-gnu-gcc
AARCH64_RUN ?= qemu-aarch64 -L /usr/aarch64-linux-gnu
# Under qemu the C unit tests (the portability check: kernels, model, tokenizer,
# sampler, training maths) and the golden outputs run; the experiment grid (12+
# minutes) and the CLI scripts that test no arithmetic of their own are left to
# `make test` and `make test-sanitize` (AARCH64_SKIP= runs them here too).
AARCH64_SKIP ?= test_experiment test_ablation.sh test_ecosystem.sh test_badinput.sh test_tensor.sh test_train.sh test_pretrain.sh test_mpi.sh
aarch64:
	$(MAKE) CC=$(AARCH64_CC) NATIVE=0 BUILD=build-aarch64 BIN=xlmr-aarch64 test-bins

test-aarch64: aarch64
	printf '#!/bin/sh\nexec $(AARCH64_RUN) $(CURDIR)/xlmr-aarch64 "$$@"\n' > build-aarch64/xlmr-run
	chmod +x build-aarch64/xlmr-run
	RUNNER="$(AARCH64_RUN)" XLMR=$(CURDIR)/build-aarch64/xlmr-run SKIP_TESTS="$(AARCH64_SKIP)" tests/run.sh build-aarch64

# libFuzzer targets for every parser (clang); each runs FUZZ_SECONDS (fuzz/README.md).
FUZZ_SECONDS ?= 60
fuzz:
	fuzz/run.sh $(FUZZ_SECONDS)

data:
	scripts/get_data.sh

# The pretraining corpus (xlmr corpus: no evaluation text) in data/corpus/.
corpus: $(BIN) data
	./$(BIN) corpus --data data --out data/corpus --tokenizer tokenizer/xlmrc.model

# Idle OpenMP threads sleep rather than spin: the grid's models are small and
# spinning threads cost more than they save when anything else runs.
# RUN_FLAGS: more `xlmr experiment` options, e.g. RUN_FLAGS="--sizes nano,micro,tiny,3x192,mini".
RUN_FLAGS ?=
run: $(BIN) data
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-passive} ./$(BIN) experiment $(RUN_FLAGS)

clean:
	rm -rf build build-san build-scalar build-aarch64 build-fuzz build-ci build-mpi xlmr xlmr-san xlmr-scalar xlmr-aarch64 xlmr-mpi

-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d)
