# Recipes; each goes through scripts/dev.sh, which sets up what is missing.
default: test

build:
    bash scripts/dev.sh setup

test *ARGS:
    bash scripts/dev.sh test {{ARGS}}

# The whole suite on an AddressSanitizer + UBSan build (build/asan, .venv-asan).
test-asan *ARGS:
    bash scripts/dev.sh test-asan {{ARGS}}

# The threaded tests (or the given ones) on a ThreadSanitizer build (build/tsan, .venv-tsan).
test-tsan *ARGS:
    bash scripts/dev.sh test-tsan {{ARGS}}

# Every fuzz target in tests/fuzz for SECONDS each (0: once over the seed corpus).
fuzz SECONDS="60" *TARGETS:
    bash scripts/dev.sh fuzz {{SECONDS}} {{TARGETS}}

# The benchmark, on the profile-guided build (HTTPRS_BENCH_BUILD=editable: the editable one).
bench *ARGS:
    bash scripts/dev.sh bench {{ARGS}}

# The profile-guided build in .venv-pgo (scripts/pgo_profiles.sh trains it first).
pgo:
    bash scripts/dev.sh pgo

# The suite on the profile-guided build.
test-pgo *ARGS:
    bash scripts/dev.sh test-pgo {{ARGS}}

# sdist + auditwheel-repaired wheel, installed and smoke-tested in a fresh venv
wheel *ARGS:
    bash scripts/dev.sh wheel {{ARGS}}

soak *ARGS:
    bash scripts/dev.sh soak {{ARGS}}

faultmix *ARGS:
    bash scripts/dev.sh faultmix {{ARGS}}

# memcheck over a sync/async/TLS/fault workload (scripts/valgrind_check.py; minutes)
valgrind *ARGS:
    bash scripts/dev.sh valgrind {{ARGS}}

ecosystem *ARGS:
    bash scripts/dev.sh ecosystem {{ARGS}}

lint:
    bash scripts/dev.sh lint

fmt:
    bash scripts/dev.sh fmt
