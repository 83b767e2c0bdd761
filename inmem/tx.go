package inmem

import (
	"context"

	"github.com/authworker/authworker/domain"
)

// Transactor is a domain.Transactor that is NOT atomic: InTx only calls fn.
// Writes fn made before it failed or panicked stay, and other goroutines see
// them at once. It is fit only for unit tests of code whose atomicity is
// tested against PostgreSQL (postgres.DB.InTx). What it does share with
// PostgreSQL: each call of an in-memory repository inside fn succeeds or
// fails as a whole, as a savepoint makes it there, so fn may go on after,
// say, CodeConflict. The zero value is ready for use.
type Transactor struct{}

var _ domain.Transactor = Transactor{}

// InTx implements domain.Transactor, without rollback. It returns fn's
// error as is, and CodeUnavailable wrapping ctx's error, without calling
// fn, when ctx is done, as beginning a transaction would.
func (Transactor) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := checkContext(ctx, "database"); err != nil {
		return err
	}
	return fn(ctx)
}
