package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/storagetest"
)

// A statement sent late stays queued when the batch that was to carry it
// fails on the client before anything is sent (here the carrying
// statement's context is done already: a best-effort step with a timeout
// of its own) and the carrying statement's caller goes on: the commit
// still sends it, so a stored outcome is still found and the use case's
// writes do not commit beside another delivery's outcome.
func TestLateStatementKeptWhenItsBatchIsNotSent(t *testing.T) {
	e := newTxEnv(t)
	ctx := context.Background()
	stored := storagetest.NewOutcome("web")
	if err := e.outcomes.SaveOutcome(ctx, stored); err != nil {
		t.Fatal(err)
	}
	again := stored
	again.Reply = []byte("another delivery's reply")
	u := newTxUser(t)
	var carrierErr error
	err := e.db.InTx(ctx, func(ctx context.Context) error {
		if err := e.users.CreateUser(ctx, u); err != nil {
			return err
		}
		if err := e.outcomes.SaveOutcome(ctx, again); err != nil { // queued: nil
			return err
		}
		// A best-effort step with a deadline of its own, passed already;
		// fn tolerates its failure.
		stepCtx, cancel := context.WithCancel(ctx)
		cancel()
		_, carrierErr = e.users.UserByEmail(stepCtx, u.Email())
		return nil
	})
	if carrierErr == nil {
		t.Error("the carrying statement with a done context succeeded")
	}
	if domain.ErrorCode(err) != domain.CodeConflict {
		t.Errorf("InTx = %v, want conflict: the queued SaveOutcome never ran, and the transaction committed", err)
	}
	checkUser(t, e, u, false)
	got, err := e.outcomes.Outcome(ctx, stored.Key, stored.CreatedAt)
	if err != nil || string(got.Reply) != string(stored.Reply) {
		t.Errorf("Outcome = %q, %v", got.Reply, err)
	}
}

// When the first batch of a transaction ([BEGIN, statement]) fails before
// BEGIN runs (a prepare or build error, a context already done), the
// transaction has not begun: later statements do not run in autocommit,
// an error of fn undoes them, and what was queued before is kept.
func TestFailedFirstBatchLeavesNoAutocommit(t *testing.T) {
	e := newTxEnv(t)
	ctx := context.Background()
	u := newTxUser(t)
	if err := e.users.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	err := e.db.InTx(ctx, func(ctx context.Context) error {
		_ = e.db.Exec(ctx, "SELECT no_such_column FROM users") // fails at prepare; ignored
		_ = e.db.Exec(ctx, "UPDATE users SET password_hash = 'changed' WHERE id = $1", string(u.ID()))
		return errRefused
	})
	if err != errRefused {
		t.Fatalf("InTx = %v, want fn's error", err)
	}
	got, err := e.users.UserByEmail(ctx, u.Email())
	if err != nil {
		t.Fatal(err)
	}
	if got.PasswordHash() != "hash" {
		t.Errorf("password hash = %q after a rolled-back InTx, want %q: the update ran in autocommit", got.PasswordHash(), "hash")
	}

	// And what was queued before the failed first batch is kept: the
	// outcome conflict is found at the commit.
	stored := storagetest.NewOutcome("web")
	if err := e.outcomes.SaveOutcome(ctx, stored); err != nil {
		t.Fatal(err)
	}
	again := stored
	again.Reply = []byte("another delivery's reply")
	err = e.db.InTx(ctx, func(ctx context.Context) error {
		if err := e.outcomes.SaveOutcome(ctx, again); err != nil { // queued
			return err
		}
		_ = e.db.Exec(ctx, "SELECT no_such_column FROM users") // fails at prepare; ignored
		return nil
	})
	if domain.ErrorCode(err) != domain.CodeConflict {
		t.Errorf("InTx = %v, want conflict: the queued SaveOutcome must not be dropped", err)
	}
}

// A nested InTx whose fn panics is rolled back to its savepoint: an outer
// fn that recovers the panic and goes on does not commit the nested fn's
// writes.
func TestNestedPanicRollsBackItsSavepoint(t *testing.T) {
	e := newTxEnv(t)
	ctx := context.Background()
	outer, inner := newTxUser(t), newTxUser(t)
	err := e.db.InTx(ctx, func(ctx context.Context) error {
		if err := e.users.CreateUser(ctx, outer); err != nil {
			return err
		}
		func() {
			defer func() { _ = recover() }()
			_ = e.db.InTx(ctx, func(ctx context.Context) error {
				if err := e.users.CreateUser(ctx, inner); err != nil {
					return err
				}
				panic("boom")
			})
		}()
		return nil
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	checkUser(t, e, outer, true)
	checkUser(t, e, inner, false)
}

// A nested InTx that fails after a statement it queued (SaveOutcome here,
// an Enqueue alike) undoes only its own work: what it queued and did not
// send is dropped, so its failure cannot abort the outer transaction.
func TestNestedFailureDropsWhatItQueued(t *testing.T) {
	e := newTxEnv(t)
	ctx := context.Background()
	stored := storagetest.NewOutcome("web")
	if err := e.outcomes.SaveOutcome(ctx, stored); err != nil {
		t.Fatal(err)
	}
	again := stored
	again.Reply = []byte("another reply")
	u := newTxUser(t)
	err := e.db.InTx(ctx, func(ctx context.Context) error {
		if err := e.users.CreateUser(ctx, u); err != nil {
			return err
		}
		inner := e.db.InTx(ctx, func(ctx context.Context) error {
			if err := e.outcomes.SaveOutcome(ctx, again); err != nil {
				return err
			}
			return errRefused // fails after its write: the savepoint rolls back
		})
		if inner == nil {
			return fmt.Errorf("nested InTx = nil")
		}
		return nil // the outer goes on, as the nested InTx contract allows
	})
	if err != nil {
		t.Errorf("InTx = %v, want nil: the nested failure is undone by its savepoint", err)
	}
	checkUser(t, e, u, true)

	// The same with an ignored failure inside the savepoint, followed by a
	// queued statement: that statement is dropped with the savepoint, and
	// the ROLLBACK TO goes out.
	u2, o2 := newTxUser(t), storagetest.NewOutcome("web")
	err = e.db.InTx(ctx, func(ctx context.Context) error {
		if err := e.users.CreateUser(ctx, u2); err != nil {
			return err
		}
		_ = e.db.InTx(ctx, func(ctx context.Context) error {
			if err := e.db.Exec(ctx, "SELECT 1/0"); err != nil {
				_ = e.outcomes.SaveOutcome(ctx, storagetest.NewOutcome("web")) // queued after the failure
				return err
			}
			return nil
		})
		return e.outcomes.SaveOutcome(ctx, o2)
	})
	if err != nil {
		t.Errorf("InTx = %v, want nil: the nested failure is undone by its savepoint", err)
	}
	checkUser(t, e, u2, true)
	checkOutcome(t, e, o2, true)
}

// A context kept past the end of its InTx (a bug storeError names) fails
// with CodeInternal, for a late statement and for a statement alike: none
// is silently dropped, none runs on the connection the transaction
// released.
func TestContextKeptPastItsInTxFails(t *testing.T) {
	e := newTxEnv(t)
	ctx := context.Background()
	var kept context.Context
	if err := e.db.InTx(ctx, func(ctx context.Context) error {
		kept = ctx
		return e.db.Exec(ctx, "SELECT 1")
	}); err != nil {
		t.Fatal(err)
	}
	o := storagetest.NewOutcome("web")
	err := e.outcomes.SaveOutcome(kept, o)
	if err == nil {
		t.Errorf("SaveOutcome on a context kept past its InTx = nil, want an error")
		checkOutcome(t, e, o, false) // never written
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("a statement on a context kept past its InTx panicked: %v", p)
			}
		}()
		err = e.db.Exec(kept, "SELECT 1")
		if domain.ErrorCode(err) != domain.CodeInternal {
			t.Errorf("Exec on a context kept past its InTx = %v, want internal", err)
		}
	}()
}
