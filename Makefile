# Maoga real-time backend. `make run` starts the server on embedded defaults; `make test` runs everything.
GO       ?= go
NPM      ?= npm
GOFLAGS  ?=
TEST_TIMEOUT ?= 12m

.PHONY: run build test test-go test-js js-deps interop-deps vet fmt-check fuzz fuzz-short conformance-engineio conformance-socketio conformance-client clean

run:
	$(GO) run ./cmd/maoga

build:
	$(GO) build -o bin/ ./cmd/...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# All tests: Go with -race (unit, integration, multi-node), then the JS suites with the real npm clients.
test: fmt-check vet test-go fuzz-short test-js bench-smoke test-web soak-short

test-go: js-deps interop-deps
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# npm packages of the JS suites and of the Node interop peer (socket.io + @socket.io/redis-adapter).
js-deps:
	cd clienttest/js && $(NPM) ci --no-audit --no-fund --loglevel=error
interop-deps:
	cd clienttest/interop && $(NPM) ci --no-audit --no-fund --loglevel=error

test-js: js-deps
	cd clienttest/js && SERVER=go $(NPM) test

# Fuzzing (go test -fuzz): every target, one after the other, FUZZTIME each (`make fuzz`, 60s) or
# FUZZSHORT each (`make fuzz-short`, 5s, part of `make test`). The seed corpora are committed under each
# package's testdata/fuzz/<Target>/; a crasher found is written there too and stays as a regression
# test. FUZZFLAGS passes more flags, e.g. FUZZFLAGS=-parallel=1 on a shared machine.
FUZZTIME  ?= 60s
FUZZSHORT ?= 5s
FUZZFLAGS ?=
FUZZ_TARGETS = ./server/engineio:FuzzDecodePacket ./server/engineio:FuzzDecodePayload \
	./server/parser:FuzzDecoder ./server/parser:FuzzRoundTrip \
	./server/socketio:FuzzPollingPost ./adapter/redis:FuzzDecode
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== $$fn ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz '^'$$fn'$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) $$pkg; \
	done
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZSHORT)

# The reference servers of the official protocol suites (see README).
conformance-engineio:
	$(GO) run ./cmd/conformance -suite engineio
conformance-socketio:
	$(GO) run ./cmd/conformance -suite socketio
conformance-client:
	$(GO) run ./cmd/conformance -suite client

clean:
	rm -rf bin data test-output

# Three nodes on one Redis and one shared store, without Docker (see README, "Running a cluster").
.PHONY: cluster
cluster:
	deploy/cluster.sh

# Benchmarks against Node's socket.io 4.8 (BENCHMARKS.md): every scenario, Go and Node back to back with
# the same generator, then the ratios, bench/results/{results.jsonl,plot.png} and the tables of
# BENCHMARKS.md. Under 10 minutes; needs node/npm and redis-server (cluster rows). bench-smoke runs every
# scenario at tiny sizes in seconds and fails when the harness does.
.PHONY: bench bench-smoke
bench:
	bench/run.sh
bench-smoke:
	bench/run.sh smoke

# The web client (web/): `make web` rebuilds web/dist (committed and embedded into cmd/maoga). `make test-web`
# rebuilds it and plays two players through a match in headless Chromium (/usr/bin/chromium, Debian's
# `chromium`; `.ci/run` installs it), once with the default transports and once with polling forced.
# Screenshots: test-output/web/.
.PHONY: web web-deps test-web
web-deps:
	cd web && $(NPM) ci --no-audit --no-fund --loglevel=error
web: web-deps
	cd web && $(NPM) run build
test-web: web-deps
	cd web && $(NPM) run test:e2e

# Soak test (issue 8; internal/soak, cmd/soak): a real cmd/maoga process with the embedded store in a
# temporary directory and SOAK_CLIENTS Socket.IO clients that connect, drop and recover, chat, create,
# join and leave lobbies, queue for matchmaking and cancel, and set their status at random. Afterwards
# goroutines, live heap and open fds must be back at the warmed-up baseline, the stored state must pass
# internal/consistency and agree with the clients, and no call may fail unexpectedly or time out.
# Prints a table, writes the JSON report to SOAK_JSON, exits 1 on failure. `make soak`: 10 minutes;
# `make soak-short`: 300 clients for 30 s, about 80 s in all. SOAK_FLAGS adds driver flags (see
# `bin/soak -h`), e.g. SOAK_FLAGS=-seed=42.
SOAK_CLIENTS ?= 1000
SOAK_DURATION ?= 10m
SOAK_JSON ?= test-output/soak.json
SOAK_SHORT_JSON ?= test-output/soak-short.json
SOAK_FLAGS ?=
.PHONY: soak soak-short soak-bin
soak-bin:
	@mkdir -p test-output
	$(GO) build -o bin/ ./cmd/maoga ./cmd/soak
soak: soak-bin
	bin/soak -server bin/maoga -clients $(SOAK_CLIENTS) -duration $(SOAK_DURATION) -warmup 150s -settle 10s -leave 60s \
		-think-min 180s -think-max 420s -json $(SOAK_JSON) $(SOAK_FLAGS)
soak-short: soak-bin
	bin/soak -server bin/maoga -clients 300 -duration 30s -warmup 12s -settle 6s -leave 3s \
		-think-min 15s -think-max 30s -json $(SOAK_SHORT_JSON) $(SOAK_FLAGS)
