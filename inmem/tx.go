package inmem

import (
	"context"
	"sync"

	"github.com/authworker/authworker/domain"
)

// Transactor is a domain.Transactor that is NOT atomic: InTx only calls fn.
// Writes fn made before it failed or panicked stay, and other goroutines see
// them at once. It is fit only for unit tests of code whose atomicity is
// tested against PostgreSQL (postgres.DB.InTx). What it does share with
// PostgreSQL: each call of an in-memory repository inside fn succeeds or
// fails as a whole, as a savepoint makes it there, so fn may go on after,
// say, CodeConflict.
//
// The Outbox is the exception: its messages are recorded only when the
// outermost InTx's fn returns nil, and a nested InTx whose fn fails drops
// its own, as with PostgreSQL. A message that reports a change is published
// only if the change commits, and handler tests must be able to tell a use
// case that failed from one that succeeded by its messages.
//
// Outermost transactions run one at a time, process-wide, as if
// serializable: without rollback, two concurrent deliveries of one request
// could otherwise each see the other's half-done writes (an account
// created, its outcome not yet stored), which PostgreSQL's row locks and
// isolation never show. The zero value is ready for use.
type Transactor struct{}

// serial is held by every outermost InTx.
var serial sync.Mutex

var _ domain.Transactor = Transactor{}

// tx is what an InTx holds: the work to do if it commits.
type tx struct {
	mu       sync.Mutex
	onCommit []func()
}

type txKey struct{}

// afterCommit arranges for f to run if the transaction commits.
func (t *tx) afterCommit(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.onCommit = append(t.onCommit, f)
}

// InTx implements domain.Transactor, without rollback but for the Outbox.
// It returns fn's error as is, and CodeUnavailable wrapping ctx's error,
// without calling fn, when ctx is done, as beginning a transaction would.
func (Transactor) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := checkContext(ctx, "database"); err != nil {
		return err
	}
	if _, nested := ctx.Value(txKey{}).(*tx); !nested {
		serial.Lock()
		defer serial.Unlock()
	}
	t := &tx{}
	if err := fn(context.WithValue(ctx, txKey{}, t)); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if outer, ok := ctx.Value(txKey{}).(*tx); ok {
		for _, f := range t.onCommit { // released into the outer transaction
			outer.afterCommit(f)
		}
		return nil
	}
	for _, f := range t.onCommit {
		f()
	}
	return nil
}
