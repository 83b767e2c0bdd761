// Package inmem implements authworker's storage ports in memory, as fakes
// for unit tests of handlers. They keep the contracts of the PostgreSQL
// adapters, proven by the same conformance suites (package storagetest):
// the same error codes, row locks held across update closures, and
// timestamps returned in UTC truncated to the microsecond. Values are copied
// in and out, so a caller never aliases stored state.
//
// Transactor runs units of work without atomicity: it has no rollback,
// except that the Outbox records only the messages of units of work that
// commit. Test atomicity against PostgreSQL.
//
// Nothing is persisted. Zero values are not ready for use, Transactor's
// aside: build the repositories with their constructors.
package inmem

import (
	"context"
	"time"

	"github.com/authworker/authworker/domain"
)

// storedTime is t as PostgreSQL would return it.
func storedTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// checkContext fails like the PostgreSQL adapters do when ctx is done.
func checkContext(ctx context.Context, what string) error {
	if err := ctx.Err(); err != nil {
		return domain.Unavailable(what, err)
	}
	return nil
}

// rowLock is a mutex whose Lock gives up when the context is done, as a
// database lock wait does.
type rowLock chan struct{}

func newRowLock() rowLock { return make(rowLock, 1) }

func (l rowLock) lock(ctx context.Context, what string) error {
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return domain.Unavailable(what, ctx.Err())
	}
}

func (l rowLock) unlock() { <-l }
