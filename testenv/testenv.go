// Package testenv gives integration tests real PostgreSQL, Redis and Kafka.
//
// Each service is found, in order: from the environment variable the worker
// itself reads (DATABASE_URL, REDIS_URL, KAFKA_BOOTSTRAP_SERVERS), which `make
// test` sets from scripts/services.sh; else from a container started with
// testcontainers-go when a Docker engine is reachable; else the test is
// skipped, except when CI is set: there a missing service fails the test.
//
// Tests share the services, never state: each test gets its own database, and
// Unique names for Redis key prefixes, Kafka topics and consumer groups.
//
// A test that must stop or restart PostgreSQL takes a server of its own
// with PrivatePostgres instead, so that the others do not notice.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

// Unique returns prefix followed by a random suffix, usable as a database,
// topic, consumer group or key prefix name.
func Unique(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return prefix + hex.EncodeToString(b[:])
}

// Name returns a unique name derived from the test's name, easy to find in
// broker and database listings.
func Name(tb testing.TB, kind string) string {
	base := strings.ToLower(nonWord.ReplaceAllString(tb.Name(), "_"))
	if len(base) > 30 {
		base = base[:30]
	}
	return Unique(kind + "_" + base + "_")
}

var nonWord = regexp.MustCompile(`[^A-Za-z0-9]+`)

// service resolves one backing service once per test binary.
type service struct {
	envVar string
	start  func(ctx context.Context) (string, error) // with a Docker engine

	once sync.Once
	addr string
	err  error
}

func (s *service) resolve(tb testing.TB) string {
	tb.Helper()
	s.once.Do(func() {
		if v := os.Getenv(s.envVar); v != "" {
			s.addr = v
			return
		}
		if !dockerAvailable() {
			s.err = fmt.Errorf("%s is not set and no Docker engine is reachable (run `make services` or `make test`)", s.envVar)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		s.addr, s.err = s.start(ctx)
	})
	if s.err != nil {
		missing(tb, s.err)
	}
	return s.addr
}

// missing fails the test in CI and skips it elsewhere.
func missing(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("integration service missing in CI: %v", err)
	}
	tb.Skipf("integration service missing: %v", err)
}

var dockerOnce = sync.OnceValue(func() bool {
	provider, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return false
	}
	defer provider.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return provider.Health(ctx) == nil
})

func dockerAvailable() (ok bool) {
	defer func() {
		// testcontainers panics when it finds no Docker configuration.
		if recover() != nil {
			ok = false
		}
	}()
	return dockerOnce()
}
