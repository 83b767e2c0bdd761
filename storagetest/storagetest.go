// Package storagetest holds the conformance suites of authworker's storage
// ports, in the style of dex's storage/conformance: every implementation,
// the PostgreSQL adapters and the in-memory fakes alike, runs the same
// RunXRepositoryTests from its own tests, so the fakes that handler tests
// rely on behave as the real thing does.
//
// Each suite runs its cases as parallel subtests named by outcome, each on a
// fresh repository from the factory it is given. Timestamps are written with
// nanoseconds and in a zone other than UTC; the suites expect them back in
// UTC, truncated to the microsecond.
package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
)

// NewUUID returns a random (version 4) UUID in canonical text form, for the
// ids of users and sessions in tests.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// uniqueEmail returns an address no other test uses.
func uniqueEmail() domain.Email {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return domain.Email("user-" + hex.EncodeToString(b[:]) + "@example.com")
}

// baseTime has nanoseconds and a zone other than UTC, to check that
// repositories return UTC at microsecond precision.
var baseTime = time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.FixedZone("UTC+1", 3600))

// stored is t as the repositories return it.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// checkTime reports an error unless got is want as stored: UTC, truncated
// to the microsecond, or zero for zero.
func checkTime(tb testing.TB, name string, got, want time.Time) {
	tb.Helper()
	want = stored(want)
	if want.IsZero() {
		if !got.IsZero() {
			tb.Errorf("%s = %v, want zero", name, got)
		}
		return
	}
	if !got.Equal(want) || got.Location() != time.UTC {
		tb.Errorf("%s = %v, want %v (UTC, microseconds)", name, got, want)
	}
}

// checkCode reports an error unless err carries the code.
func checkCode(tb testing.TB, what string, err error, want domain.Code) {
	tb.Helper()
	if got := domain.ErrorCode(err); got != want {
		tb.Errorf("%s: error %v has code %q, want %q", what, err, got, want)
	}
}

// checkCanceled reports an error unless err is what a call with a
// cancelled context returns: CodeUnavailable with context.Canceled in the
// chain.
func checkCanceled(tb testing.TB, what string, err error) {
	tb.Helper()
	if !errors.Is(err, context.Canceled) || domain.ErrorCode(err) != domain.CodeUnavailable {
		tb.Errorf("%s with a cancelled context: error %v, want %q with context.Canceled in the chain", what, err, domain.CodeUnavailable)
	}
}

// together runs f and g at once, as far as the scheduler allows, and waits
// for both. Which starts first alternates with i, since a scheduler tends
// to run the goroutine made last first.
func together(i int, f, g func()) {
	if i%2 == 1 {
		f, g = g, f
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { <-start; f() })
	wg.Go(func() { <-start; g() })
	close(start)
	wg.Wait()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func describe(v any) string { return fmt.Sprintf("%+v", v) }
