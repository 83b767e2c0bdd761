package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/authworker/authworker/domain"
)

var _ domain.Transactor = (*DB)(nil)

// txKey is the context key of the transaction InTx passes to fn. It holds
// the DB, so that a context carrying one DB's transaction is never used on
// another's connections.
type txKey struct{ db *DB }

// txState is a transaction of InTx, or a savepoint of a nested InTx, and
// what is to run once the outermost transaction commits.
type txState struct {
	tx          pgx.Tx
	afterCommit []func()
}

// onCommit makes fn run once the outermost transaction has committed; never
// if it, or the savepoint fn was registered in, rolls back.
func (s *txState) onCommit(fn func()) {
	s.afterCommit = append(s.afterCommit, fn)
}

// state returns the transaction of an enclosing InTx, if there is one.
func (db *DB) state(ctx context.Context) (*txState, bool) {
	s, ok := ctx.Value(txKey{db}).(*txState)
	return s, ok
}

// querier is what the repositories need of the pool or of a transaction.
type querier interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// conn returns what to run statements on for ctx: the transaction of an
// enclosing InTx, or else the pool.
func (db *DB) conn(ctx context.Context) querier {
	if s, ok := db.state(ctx); ok {
		return s.tx
	}
	return db.pool
}

// tx returns the transaction of an enclosing InTx, if there is one.
func (db *DB) tx(ctx context.Context) (pgx.Tx, bool) {
	s, ok := db.state(ctx)
	if !ok {
		return nil, false
	}
	return s.tx, true
}

// atomic runs fn, a write that may fail with an error the caller expects
// (a unique or foreign-key violation), on the querier for ctx. In a
// transaction it runs fn in a savepoint and rolls back to it when fn fails:
// PostgreSQL would otherwise abort the whole transaction, and the use case
// could not go on after, say, CodeConflict. Outside one, fn's statement is
// atomic by itself and runs on the pool. fn's error is returned untranslated.
func (db *DB) atomic(ctx context.Context, fn func(q querier) error) error {
	tx, ok := db.tx(ctx)
	if !ok {
		return fn(db.pool)
	}
	sp, err := tx.Begin(ctx) // SAVEPOINT
	if err != nil {
		return err
	}
	if err := fn(sp); err != nil {
		// Should ROLLBACK TO SAVEPOINT fail, the connection is lost, and
		// with it the transaction: its commit reports that.
		_ = sp.Rollback(ctx)
		return err
	}
	return sp.Commit(ctx) // RELEASE SAVEPOINT
}

// InTx implements domain.Transactor: every repository built on db runs its
// statements on the transaction in the context passed to fn.
//
// The transaction holds one pooled connection from BEGIN to COMMIT, fn's
// work outside the database (password hashing, sealing) included, and runs
// at PostgreSQL's default isolation level, read committed. Row locks taken
// inside it, such as UpdateUser's, last until it ends. fn must not use its
// context from several goroutines at once: a transaction is one connection.
//
// A nested call joins the outer transaction and runs fn in a savepoint:
// when fn fails, only fn's work is undone and the outer fn may go on; when
// fn succeeds, the savepoint is released and its writes commit or roll back
// with the outer transaction. A context carrying another DB's transaction
// starts a transaction of its own.
//
// InTx rolls back when fn returns an error or panics (the panic goes on
// after the rollback) and returns fn's error as is. Failing to begin or to
// commit returns CodeUnavailable when the connection is at fault (the cause,
// such as context.Canceled, stays in the chain) and CodeInternal when fn
// returned nil after ignoring a failure that aborted the transaction.
func (db *DB) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	outer, nested := db.state(ctx)
	tx, err := db.conn(ctx).Begin(ctx) // BEGIN, or SAVEPOINT when nested
	if err != nil {
		return fmt.Errorf("begin transaction: %w", storeError("database", err))
	}
	// Runs on error and on panic, before the panic goes on; a no-op after
	// Commit. Should the rollback fail, the connection is closed, which
	// rolls back too.
	defer func() { _ = tx.Rollback(ctx) }()

	s := &txState{tx: tx}
	if err := fn(context.WithValue(ctx, txKey{db}, s)); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil { // COMMIT, or RELEASE SAVEPOINT when nested
		return fmt.Errorf("commit transaction: %w", storeError("database", err))
	}
	if nested {
		outer.afterCommit = append(outer.afterCommit, s.afterCommit...)
		return nil
	}
	for _, f := range s.afterCommit {
		f()
	}
	return nil
}
