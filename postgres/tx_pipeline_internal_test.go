package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/storagetest"
	"github.com/authworker/authworker/testenv"
)

func pipelineDB(t *testing.T) *DB {
	url := testenv.Database(t)
	db, err := Open(context.Background(), Config{URL: url, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestBatchRowsAreClosed: the rows of a statement sent in a batch are closed,
// and the batch with them, on a scan error, on CollectRows' early return,
// and by QueryRow over several rows: the connection goes back to the pool
// usable.
func TestBatchRowsAreClosed(t *testing.T) {
	db := pipelineDB(t)
	ctx := context.Background()
	for i := 0; i < 6; i++ { // more than MaxConns
		err := db.InTx(ctx, func(ctx context.Context) error {
			q := db.conn(ctx)
			var n int
			// first statement: batch [BEGIN, SELECT]; scan error
			if err := q.QueryRow(ctx, "SELECT 'x'::text").Scan(&n); err == nil {
				t.Error("scan of text into int succeeded")
			}
			// queue a late statement, so the next Query goes in a batch
			if err := db.later(ctx, func(err error) error { return err }, "SELECT $1::int", 1); err != nil {
				return err
			}
			rows, err := q.Query(ctx, "SELECT g FROM generate_series(1, 1000) g")
			if err != nil {
				return err
			}
			boom := errors.New("stop")
			_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (int, error) {
				var v int
				if err := r.Scan(&v); err != nil {
					return 0, err
				}
				if v == 3 {
					return 0, boom
				}
				return v, nil
			})
			if !errors.Is(err, boom) {
				t.Errorf("CollectRows = %v", err)
			}
			_ = db.later(ctx, func(err error) error { return err }, "SELECT $1::int", 2)
			// QueryRow over many rows, in a batch
			if err := q.QueryRow(ctx, "SELECT g FROM generate_series(1, 1000) g").Scan(&n); err != nil || n != 1 {
				t.Errorf("QueryRow = %d, %v", n, err)
			}
			// a statement error inside rows
			_ = db.later(ctx, func(err error) error { return err }, "SELECT $1::int", 3)
			return db.later(ctx, func(err error) error { return err }, "SELECT $1::int", 4)
		})
		if err != nil {
			t.Fatalf("InTx: %v", err)
		}
	}
	st := db.pool.Stat()
	if st.AcquiredConns() != 0 {
		t.Errorf("acquired conns after the transactions: %d", st.AcquiredConns())
	}
}

// TestCancelledCommitDoesNotCommit: a commit reported failed has not
// committed. The commit batch [SaveOutcome, COMMIT] waits on another
// transaction's outcome row when the context ends. Were the connection
// dropped at once (and a cancel request sent, racing), COMMIT would still
// be in the server's input, and run if the other transaction ended before
// the cancel landed; the application would answer DEADLINE_EXCEEDED,
// documented as "it had no effect", for a change that committed. Open has
// pgx cancel on the server and read its answer instead.
func TestCancelledCommitDoesNotCommit(t *testing.T) {
	db := pipelineDB(t)
	users, outcomes := NewUserRepository(db), NewOutcomeRepository(db)
	for attempt := range 10 {
		o := storagetest.NewOutcome("web")
		holding, release, held := make(chan struct{}), make(chan struct{}), make(chan struct{})
		go func() {
			defer close(held)
			_ = db.InTx(context.Background(), func(ctx context.Context) error {
				if err := outcomes.SaveOutcome(ctx, o); err != nil {
					return err
				}
				if err := db.conn(ctx).QueryRow(ctx, "SELECT 1").Scan(new(int)); err != nil { // send it
					return err
				}
				close(holding)
				<-release
				return errors.New("roll back")
			})
		}()
		<-holding
		u, err := domain.NewUser(domain.UserID(storagetest.NewUUID()), domain.Email("c-"+storagetest.NewUUID()+"@example.com"), "hash", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err = db.InTx(ctx, func(ctx context.Context) error {
			if err := users.CreateUser(ctx, u); err != nil {
				return err
			}
			return outcomes.SaveOutcome(ctx, o)
		})
		cancel()
		close(release) // the other transaction ends just after the deadline
		<-held
		if err == nil {
			t.Fatal("InTx succeeded while waiting")
		}
		time.Sleep(100 * time.Millisecond)
		if _, uerr := users.UserByEmail(context.Background(), u.Email()); domain.ErrorCode(uerr) != domain.CodeNotFound {
			t.Fatalf("attempt %d: InTx = %v (code %s), yet its user is committed (%v)", attempt, err, domain.ErrorCode(err), uerr)
		}
	}
}
