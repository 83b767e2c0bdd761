# authworker: `make run` starts the services and the worker; `make test`
# starts the services and runs every test with the race detector; `make
# bench` runs the standard load scenario (authctl bench) against a worker of
# its own and writes bench/results.{md,json}.

SHELL    := /bin/bash
GO       ?= go
SERVICES := scripts/services.sh
# Exports DATABASE_URL, REDIS_URL and KAFKA_BOOTSTRAP_SERVERS for the local
# services, unless they are set already.
WITH_ENV := eval "$$($(SERVICES) env)" &&
# The local key-encryption key belongs with the local database, which is the
# machine's PostgreSQL cluster, not this checkout's: every clone on the
# machine must open the signing keys the others stored.
KEK      := $(or $(XDG_STATE_HOME),$(HOME)/.local/state)/authworker/dev-kek

.PHONY: build test lint run services services-down bench bench-go fuzz docker clean

build:
	$(GO) build -trimpath -o bin/ ./cmd/...

services:
	$(SERVICES) up

services-down:
	$(SERVICES) down

test: services
	$(WITH_ENV) $(GO) test -race -count=1 ./...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# A key-encryption key for local runs, made once per machine.
$(KEK):
	@mkdir -p $(dir $@)
	@umask 077 && head -c 32 /dev/urandom | base64 > $@

run: services build $(KEK)
	$(WITH_ENV) AUTH_KEY_ENCRYPTION_KEY="$${AUTH_KEY_ENCRYPTION_KEY:-$$(cat $(KEK))}" exec bin/authworker

# The standard scenario: starts the services and a worker as `make run`
# does (on topics, a database and a port of its own), runs authctl bench
# against it, stops it, and writes the figures the README quotes.
bench:
	scripts/bench.sh

# The Go benchmarks, against the real services.
bench-go: services
	$(WITH_ENV) $(GO) test -run='^$$' -bench=. -benchmem -count=1 ./...

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecodeRequest -fuzztime=60s ./schemas/

docker:
	docker build -t authworker .

clean:
	rm -rf bin

# A real Spring ReplyingKafkaTemplate against a real worker (interop/spring),
# and the README's "Verifying tokens" recipes (interop/java, go, python,
# node) against another; starts the services and workers of its own on
# dedicated topics. Needs Maven, Go, Python 3 with venv, Node.js and npm.
.PHONY: interop
interop:
	scripts/interop.sh
