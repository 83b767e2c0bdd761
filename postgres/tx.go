package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

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
	tx          *pipeTx
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
	return s, ok && s != nil
}

// detached returns ctx without its transaction, if it has one: an InTx
// under it begins a transaction of its own.
func (db *DB) detached(ctx context.Context) context.Context {
	if _, ok := db.state(ctx); !ok {
		return ctx
	}
	return context.WithValue(ctx, txKey{db}, (*txState)(nil))
}

// querier is what the repositories need of the pool or of a transaction.
type querier interface {
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

// later runs a statement whose result its caller does not wait for. In a
// transaction of InTx it is sent with the transaction's next statement, or
// with its COMMIT, saving a round trip; translate turns the statement's
// error into the error that next statement, or the commit, then fails
// with. Outside a transaction it runs at once and its translated error is
// returned. The statement's arguments must not change after the call.
//
// Only a statement that fails on the server when it fails at all may be
// sent late: the statements after it in the same batch, COMMIT included,
// run unless the server refuses it. A statement that "fails" by affecting
// no row must raise an error for that itself (see SaveOutcome).
func (db *DB) later(ctx context.Context, translate func(error) error, sql string, args ...any) error {
	if err := ctx.Err(); err != nil {
		return translate(err)
	}
	if s, ok := db.state(ctx); ok {
		if s.tx.ended {
			return translate(pgx.ErrTxClosed)
		}
		s.tx.enqueue(laterStatement{sql: sql, args: args, translate: translate})
		return nil
	}
	if _, err := db.pool.Exec(ctx, sql, args...); err != nil {
		return translate(err)
	}
	return nil
}

// atomic runs fn, a write that may fail with an error the caller expects
// (a unique or foreign-key violation), on the querier for ctx. In a
// transaction it runs fn in a savepoint (a nested InTx), rolled back when fn
// fails: PostgreSQL would otherwise abort the whole transaction, and the use
// case could not go on after, say, CodeConflict. Outside one, fn's statement
// is atomic by itself and runs on the pool. fn's error is returned
// untranslated.
func (db *DB) atomic(ctx context.Context, fn func(q querier) error) error {
	if _, ok := db.state(ctx); !ok {
		return fn(db.pool)
	}
	return db.InTx(ctx, func(ctx context.Context) error { return fn(db.conn(ctx)) })
}

// InTx implements domain.Transactor: every repository built on db runs its
// statements on the transaction in the context passed to fn.
//
// The transaction holds one pooled connection from its first statement to
// COMMIT, fn's work outside the database (password hashing, sealing)
// included, and runs at PostgreSQL's default isolation level, read
// committed. Row locks taken inside it, such as UpdateUser's, last until it
// ends. fn must not use its context from several goroutines at once: a
// transaction is one connection.
//
// Statements go out as late as they can, to save round trips: BEGIN with
// the first statement, and the statements whose result nobody waits for
// (see later: the outbox's inserts, the stored reply) with the next one or
// with COMMIT. A transaction whose fn ran no statement sends nothing.
//
// A nested call joins the outer transaction and runs fn in a savepoint:
// when fn fails, only fn's work is undone and the outer fn may go on; when
// fn succeeds, the savepoint is released and its writes commit or roll back
// with the outer transaction.
//
// InTx rolls back when fn returns an error or panics (the panic goes on
// after the rollback) and returns fn's error as is. A statement sent late
// that fails fails the commit, with the error its check gave. Failing to
// begin or to commit otherwise returns CodeUnavailable when the connection
// is at fault (the cause, such as context.Canceled, stays in the chain) and
// CodeInternal when fn returned nil after ignoring a failure that aborted
// the transaction.
func (db *DB) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if outer, ok := db.state(ctx); ok {
		return outer.tx.savepoint(ctx, db, outer, fn)
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", storeError("database", err))
	}
	// A connection left inside a transaction, or busy, is destroyed rather
	// than returned to the pool (pgxpool checks both).
	defer conn.Release()
	t := &pipeTx{conn: conn}
	committed := false
	// Runs on error and on panic, before the panic goes on.
	defer func() {
		if !committed {
			t.rollback(ctx)
		}
		t.ended = true // a context kept past InTx fails, as pgx.Tx did
	}()

	s := &txState{tx: t}
	if err := fn(context.WithValue(ctx, txKey{db}, s)); err != nil {
		return err
	}
	if err := t.commit(ctx); err != nil {
		return err
	}
	committed = true
	for _, f := range s.afterCommit {
		f()
	}
	return nil
}

// laterStatement is a statement waiting to go out with the next one.
type laterStatement struct {
	sql       string
	args      []any
	translate func(error) error
	seq       int
}

// pipeTx is a transaction of InTx on one connection, sending its
// statements as late as it can.
type pipeTx struct {
	conn *pgxpool.Conn
	// begun is set once BEGIN has gone out.
	begun bool
	// queue holds the statements to send before the next one.
	queue      []laterStatement
	savepoints int
	// seq numbers the queued statements; sent is the last one sent.
	seq, sent int
	ended     bool
}

func (t *pipeTx) enqueue(q laterStatement) int {
	t.seq++
	q.seq = t.seq
	t.queue = append(t.queue, q)
	return t.seq
}

// notRun reports whether a batch that failed never ran on the server: the
// connection is open and the transaction status is what it was (a server
// error would have left 'E').
func (t *pipeTx) notRun(before byte) bool {
	pc := t.conn.Conn().PgConn()
	return !pc.IsClosed() && before != 'E' && pc.TxStatus() == before
}

// requeue puts back the statements of a batch that never ran.
func (t *pipeTx) requeue(queued []laterStatement, begun bool) {
	t.queue = append(queued, t.queue...)
	t.begun = begun
	if len(queued) > 0 {
		t.sent = queued[0].seq - 1
	}
}

var _ querier = (*pipeTx)(nil)

// recover sends the queued statements one by one while the transaction is
// aborted (a statement failed), as ROLLBACK TO SAVEPOINT does: a batch
// would have the server parse every statement in it first, and in an
// aborted transaction it parses only those that end it. It returns the
// first error, translated.
func (t *pipeTx) recover(ctx context.Context) error {
	for len(t.queue) > 0 && t.conn.Conn().PgConn().TxStatus() == 'E' {
		q := t.queue[0]
		t.queue = t.queue[1:]
		t.sent = q.seq
		if _, err := t.conn.Exec(ctx, q.sql, q.args...); err != nil {
			t.queue = nil
			return &lateError{q.translate(err)}
		}
	}
	return nil
}

// batch returns a batch that begins the transaction if it has not begun
// and sends the queued statements, which it empties, for the caller to add
// its statement to.
func (t *pipeTx) batch() (b *pgx.Batch, queued []laterStatement) {
	b = &pgx.Batch{}
	if !t.begun {
		b.Queue("BEGIN")
		t.begun = true
	}
	for _, q := range t.queue {
		b.Queue(q.sql, q.args...)
		t.sent = q.seq
	}
	queued, t.queue = t.queue, nil
	return b, queued
}

// send sends b and reads the results of BEGIN and of the queued statements.
// It returns the batch's results, positioned at what the caller added, and
// the error of the first queued statement that failed, translated; when one
// failed, the server ran nothing after it in the batch.
func (t *pipeTx) send(ctx context.Context, b *pgx.Batch, begin bool, queued []laterStatement) (pgx.BatchResults, error) {
	br := t.conn.SendBatch(ctx, b)
	var failed error
	if begin {
		if _, err := br.Exec(); err != nil {
			failed = fmt.Errorf("begin transaction: %w", storeError("database", err))
		}
	}
	for _, q := range queued {
		_, err := br.Exec()
		if failed == nil && err != nil {
			failed = &lateError{q.translate(err)}
		}
	}
	return br, failed
}

// Exec implements querier.
func (t *pipeTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.ended {
		return pgconn.CommandTag{}, pgx.ErrTxClosed
	}
	if err := t.recover(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	begin := !t.begun
	if !begin && len(t.queue) == 0 {
		return t.conn.Exec(ctx, sql, args...)
	}
	status := t.conn.Conn().PgConn().TxStatus()
	b, queued := t.batch()
	b.Queue(sql, args...)
	br, failed := t.send(ctx, b, begin, queued)
	tag, err := br.Exec()
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	if (failed != nil || err != nil) && t.notRun(status) {
		t.requeue(queued, !begin)
		return pgconn.CommandTag{}, err
	}
	if failed != nil {
		return pgconn.CommandTag{}, failed
	}
	return tag, err
}

// Query implements querier.
func (t *pipeTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t.ended {
		return nil, pgx.ErrTxClosed
	}
	if err := t.recover(ctx); err != nil {
		return nil, err
	}
	begin := !t.begun
	if !begin && len(t.queue) == 0 {
		return t.conn.Query(ctx, sql, args...)
	}
	status := t.conn.Conn().PgConn().TxStatus()
	b, queued := t.batch()
	b.Queue(sql, args...)
	br, failed := t.send(ctx, b, begin, queued)
	rows, err := br.Query()
	if failed != nil || err != nil {
		rows.Close()
		_ = br.Close()
		if t.notRun(status) {
			t.requeue(queued, !begin)
			return nil, err
		}
		return nil, firstError(failed, err)
	}
	return &batchRows{Rows: rows, br: br}, nil
}

// QueryRow implements querier.
func (t *pipeTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := t.Query(ctx, sql, args...)
	return &row{rows: rows, err: err}
}

// savepoint runs fn in a savepoint of t, as a nested InTx does. The
// SAVEPOINT, RELEASE and ROLLBACK TO statements go out late: with the next
// statement, or the commit.
func (t *pipeTx) savepoint(ctx context.Context, db *DB, outer *txState, fn func(ctx context.Context) error) (err error) {
	if t.ended {
		return statementError("savepoint")(pgx.ErrTxClosed)
	}
	t.savepoints++
	name := "sp" + strconv.Itoa(t.savepoints)
	sp := t.enqueue(laterStatement{sql: "SAVEPOINT " + name, translate: statementError("savepoint")})
	s := &txState{tx: t}
	ok := false
	defer func() {
		if ok {
			return
		}
		// fn failed or panicked: what it queued and did not send is
		// dropped, and what it sent is rolled back.
		keep := t.queue[:0]
		for _, q := range t.queue {
			if q.seq < sp {
				keep = append(keep, q)
			}
		}
		t.queue = keep
		if t.sent >= sp {
			t.enqueue(laterStatement{sql: "ROLLBACK TO SAVEPOINT " + name, translate: statementError("rollback to savepoint")})
		}
	}()
	if err := fn(context.WithValue(ctx, txKey{db}, s)); err != nil {
		return err
	}
	ok = true
	t.enqueue(laterStatement{sql: "RELEASE SAVEPOINT " + name, translate: statementError("release savepoint")})
	outer.afterCommit = append(outer.afterCommit, s.afterCommit...)
	return nil
}

// commit sends what is queued and COMMIT. A transaction that sent and
// queued nothing has nothing to commit.
func (t *pipeTx) commit(ctx context.Context) error {
	if !t.begun && len(t.queue) == 0 {
		return nil
	}
	if err := t.recover(ctx); err != nil {
		return err
	}
	begin := !t.begun
	if t.begun && t.conn.Conn().PgConn().TxStatus() == 'I' {
		return domain.Errorf(domain.CodeInternal, "commit transaction: no transaction in progress")
	}
	b, queued := t.batch()
	b.Queue("COMMIT")
	br, failed := t.send(ctx, b, begin, queued)
	tag, err := br.Exec()
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	switch {
	case failed != nil:
		return failed
	case err != nil:
		return fmt.Errorf("commit transaction: %w", storeError("database", err))
	case tag.String() == "ROLLBACK":
		// fn ignored a failure that aborted the transaction.
		return domain.Errorf(domain.CodeInternal, "commit transaction: the transaction was aborted earlier, and rolled back")
	}
	t.begun = false
	return nil
}

// rollback ends t without its writes. When ROLLBACK fails, the connection
// is closed, which rolls back too.
func (t *pipeTx) rollback(ctx context.Context) {
	t.queue = nil
	if !t.begun || t.conn.Conn().PgConn().TxStatus() == 'I' {
		return
	}
	if _, err := t.conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
		_ = t.conn.Conn().Close(context.WithoutCancel(ctx))
	}
}

// statementError translates the error of a statement of the transaction's
// own, such as SAVEPOINT.
func statementError(what string) func(error) error {
	return func(err error) error {
		return fmt.Errorf("%s: %w", what, storeError("database", err))
	}
}

// lateError is the failure of a statement sent late, translated by the
// statement's own translation. It is returned by the statement it went out
// with, or by the commit; the repositories' translations pass it on as it
// is, for it is not the failure of their own statement.
type lateError struct{ err error }

func (e *lateError) Error() string { return e.err.Error() }
func (e *lateError) Unwrap() error { return e.err }

// firstError returns the first non-nil error.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// batchRows are the rows of a statement sent in a batch: closing them
// closes the batch.
type batchRows struct {
	pgx.Rows
	br pgx.BatchResults
}

func (r *batchRows) Close() {
	r.Rows.Close()
	_ = r.br.Close()
}

// row is what QueryRow returns: pgx's single-row semantics over Query.
type row struct {
	rows pgx.Rows
	err  error
}

func (r *row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}
