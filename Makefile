# Sluice. `make run` shows it working; `make test` runs every test.
CARGO ?= cargo

.PHONY: all deps build run test lint unit lab bench fuzz soak clean man install uninstall deb

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

# Every measurement of BENCHMARKS.md (about 18 minutes here): in-process
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

# Man pages and shell completions, generated from the programs' own
# argument definitions (`--generate`), into target/gen.
GEN = target/gen
man: build
	mkdir -p $(GEN)/man $(GEN)/completions
	for p in sluiced sluicectl; do \
	  ./target/release/$$p --generate man > $(GEN)/man/$$p.8; \
	  ./target/release/$$p --generate bash > $(GEN)/completions/$$p.bash; \
	  ./target/release/$$p --generate zsh > $(GEN)/completions/_$$p; \
	  ./target/release/$$p --generate fish > $(GEN)/completions/$$p.fish; \
	done

# `make install` (as root): the programs, the systemd unit, an example
# config, man pages, completions, the alert rules and the dashboard.
# PREFIX=/usr/local by default; DESTDIR for staging. The config itself
# (/etc/sluice/sluiced.toml) is the operator's: never overwritten.
PREFIX ?= /usr/local
SYSTEMD_DIR ?= /etc/systemd/system
install: man
	install -D -m 0755 target/release/sluiced $(DESTDIR)$(PREFIX)/bin/sluiced
	install -D -m 0755 target/release/sluicectl $(DESTDIR)$(PREFIX)/bin/sluicectl
	mkdir -p $(DESTDIR)$(SYSTEMD_DIR)
	sed 's|/usr/bin/|$(PREFIX)/bin/|g' conf/sluiced.service > $(DESTDIR)$(SYSTEMD_DIR)/sluiced.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_DIR)/sluiced.service
	install -D -m 0644 conf/production.toml $(DESTDIR)/etc/sluice/sluiced.toml.example
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/man/man8 $(GEN)/man/sluiced.8 $(GEN)/man/sluicectl.8
	install -D -m 0644 $(GEN)/completions/sluiced.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/sluiced
	install -D -m 0644 $(GEN)/completions/sluicectl.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/sluicectl
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/zsh/site-functions $(GEN)/completions/_sluiced $(GEN)/completions/_sluicectl
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d $(GEN)/completions/sluiced.fish $(GEN)/completions/sluicectl.fish
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/sluice/prometheus conf/prometheus/sluice-alerts.yml
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/sluice/grafana conf/grafana/sluice-dashboard.json
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/doc/sluice README.md docs/*.md

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/sluiced $(DESTDIR)$(PREFIX)/bin/sluicectl
	rm -f $(DESTDIR)$(SYSTEMD_DIR)/sluiced.service $(DESTDIR)/etc/sluice/sluiced.toml.example
	rm -f $(DESTDIR)$(PREFIX)/share/man/man8/sluiced.8 $(DESTDIR)$(PREFIX)/share/man/man8/sluicectl.8
	rm -f $(DESTDIR)$(PREFIX)/share/bash-completion/completions/sluiced $(DESTDIR)$(PREFIX)/share/bash-completion/completions/sluicectl
	rm -f $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_sluiced $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_sluicectl
	rm -f $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/sluiced.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/sluicectl.fish
	rm -rf $(DESTDIR)$(PREFIX)/share/sluice $(DESTDIR)$(PREFIX)/share/doc/sluice

# The Debian package (cargo-deb; target/debian/sluice_*.deb): the same
# files under /usr, the unit in /lib/systemd/system, not enabled.
deb: man
	command -v cargo-deb >/dev/null || $(CARGO) install cargo-deb --locked
	$(CARGO) deb -p sluice --no-build

clean:
	$(CARGO) clean
