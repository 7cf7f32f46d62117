# Sluice. `make run` shows it working; `make test` runs every test.
CARGO ?= cargo

.PHONY: all deps build run test lint unit lab bench fuzz soak clean

all: build

deps:
	@./scripts/deps.sh

build: deps
	$(CARGO) build --release --bins

# Build the lab, run sluiced on conf/lab.toml + the demo's rules, show every
# scenario working (inbound, port forwarding, egress, a failed probe, a reload), tear down.
run: deps
	$(CARGO) build --release --bins
	./target/release/sluice-lab

# Everything CI runs: formatting, lints, unit tests, pcap golden tests, labs,
# and a minute of fuzzing per cargo-fuzz target (a crash fails it).
test: deps lint
	$(CARGO) build --bins
	$(CARGO) build --release --bins
	$(CARGO) test --workspace
	./scripts/fuzz.sh 60

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace --lib --bins

lab: deps
	$(CARGO) build --bins
	$(CARGO) test -p sluice-tests

# Every measurement of BENCHMARKS.md (about 13 minutes here): in-process
# criterion, probe cost, and on the wire (bench/wire.py; results in
# target/wire-results.md and .json).
bench: deps
	$(CARGO) build --release --bins
	./bench/pipeline.sh 3
	./bench/probes.sh 3
	python3 bench/wire.py 3

# A long mixed load through sluiced in the namespace lab (root): inbound
# TCP/UDP/HTTP, SNAT, a flapping probe, a reload a minute; every loss at both
# ends against a zero-loss baseline, and memory growth (target/soak-results.md).
SOAK_MINUTES ?= 30
soak: deps
	$(CARGO) build --release --bins
	./target/release/sluice-soak --minutes $(SOAK_MINUTES)

# Five minutes of fuzzing per target (installs cargo-fuzz if missing).
fuzz:
	./scripts/fuzz.sh 300

clean:
	$(CARGO) clean
