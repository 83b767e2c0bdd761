package postgres_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/postgres"
	"github.com/authworker/authworker/storagetest"
)

// txEnv is a fresh database with the repositories that join its
// transactions.
type txEnv struct {
	db       *postgres.DB
	users    *postgres.UserRepository
	sessions *postgres.SessionRepository
	outcomes *postgres.OutcomeRepository
	keys     *postgres.SigningKeyRepository
}

func newTxEnv(t *testing.T) txEnv {
	t.Helper()
	db, _ := openDB(t)
	return txEnv{
		db:       db,
		users:    postgres.NewUserRepository(db),
		sessions: postgres.NewSessionRepository(db),
		outcomes: postgres.NewOutcomeRepository(db),
		keys:     postgres.NewSigningKeyRepository(db),
	}
}

// errRefused stands for a use case's failure after its writes.
var errRefused = errors.New("refused after writing")

// TestInTx checks the atomicity of DB.InTx, a property of PostgreSQL that
// the in-memory Transactor does not have.
func TestInTx(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, e txEnv)
	}{
		{"CommitKeepsAllWrites", testCommitKeepsAllWrites},
		{"ErrorRollsBackAll", testErrorRollsBackAll},
		{"PanicRollsBackAndRepanics", testPanicRollsBackAndRepanics},
		{"ConflictInsideTxKeepsTxUsable", testConflictInsideTxKeepsTxUsable},
		{"NestedUpdateUserJoins", testNestedUpdateUserJoins},
		{"NestedInTxFailureUndoesOnlyItsWork", testNestedInTxFailureUndoesOnlyItsWork},
		{"NestedInTxRollsBackWithOuter", testNestedInTxRollsBackWithOuter},
		{"ConcurrentSameOutcome", testConcurrentSameOutcome},
		{"ReadsSeeOwnWrites", testReadsSeeOwnWrites},
		{"CancelledContext", testInTxCancelledContext},
		{"SigningKeysCommitOnTheirOwn", testSigningKeysCommitOnTheirOwn},
		{"AfterCommitRunsOnlyOnceCommitted", testAfterCommit},
		{"IgnoredFailureFailsTheCommit", testIgnoredFailureFailsTheCommit},
		{"LateFailureIsNotTheNextStatements", testLateFailureIsNotTheNextStatements},
		{"NothingToCommit", testNothingToCommit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newTxEnv(t))
		})
	}
}

// newTxUser returns a new user with a unique address, not yet stored.
func newTxUser(tb testing.TB) *domain.User {
	tb.Helper()
	return newTxUserWithEmail(tb, domain.Email("user-"+storagetest.NewUUID()+"@example.com"))
}

func newTxUserWithEmail(tb testing.TB, email domain.Email) *domain.User {
	tb.Helper()
	u, err := domain.NewUser(domain.UserID(storagetest.NewUUID()), email, "hash", time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// checkUser reports an error unless u is stored (committed) or not, as want
// says.
func checkUser(tb testing.TB, e txEnv, u *domain.User, want bool) {
	tb.Helper()
	_, err := e.users.UserByEmail(context.Background(), u.Email())
	switch code := domain.ErrorCode(err); {
	case want && err != nil:
		tb.Errorf("user %s: %v, want it stored", u.Email(), err)
	case !want && code != domain.CodeNotFound:
		tb.Errorf("user %s: error %v, want not found", u.Email(), err)
	}
}

// checkOutcome reports an error unless o is stored (committed) or not, as
// want says.
func checkOutcome(tb testing.TB, e txEnv, o domain.Outcome, want bool) {
	tb.Helper()
	_, err := e.outcomes.Outcome(context.Background(), o.Key, o.CreatedAt)
	switch code := domain.ErrorCode(err); {
	case want && err != nil:
		tb.Errorf("outcome %+v: %v, want it stored", o.Key, err)
	case !want && code != domain.CodeNotFound:
		tb.Errorf("outcome %+v: error %v, want not found", o.Key, err)
	}
}

// checkPoolUsable fails unless a connection can be had: a transaction that
// did not end would keep its connection from the pool for good.
func checkPoolUsable(tb testing.TB, e txEnv) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.db.InTx(ctx, func(context.Context) error { return nil }); err != nil {
		tb.Errorf("InTx after the test: %v (connections not returned to the pool?)", err)
	}
}

// rounds exceeds the pool size of openDB, so that a transaction left open
// in each round would exhaust the pool.
const rounds = 5

// boundedContext returns a context that ends with the test or after 30
// seconds, so that waiting for a connection that never comes back fails
// the test instead of hanging it.
func boundedContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// createAndSave is the unit of work the tests make: a use case's write and
// the request's outcome.
func createAndSave(e txEnv, u *domain.User, o domain.Outcome) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if err := e.users.CreateUser(ctx, u); err != nil {
			return err
		}
		return e.outcomes.SaveOutcome(ctx, o)
	}
}

func testCommitKeepsAllWrites(t *testing.T, e txEnv) {
	u, o := newTxUser(t), storagetest.NewOutcome("web")
	if err := e.db.InTx(context.Background(), createAndSave(e, u, o)); err != nil {
		t.Fatalf("InTx: %v", err)
	}
	checkUser(t, e, u, true)
	checkOutcome(t, e, o, true)
}

func testErrorRollsBackAll(t *testing.T, e txEnv) {
	ctx := boundedContext(t)
	owner := newTxUser(t)
	if err := e.users.CreateUser(ctx, owner); err != nil {
		t.Fatal(err)
	}
	for range rounds {
		u, o := newTxUser(t), storagetest.NewOutcome("web")
		s, tok := newTxSession(t, owner.ID())
		err := e.db.InTx(ctx, func(ctx context.Context) error {
			if err := createAndSave(e, u, o)(ctx); err != nil {
				return err
			}
			if err := e.sessions.CreateSession(ctx, s, tok); err != nil {
				return err
			}
			return errRefused
		})
		// Identity, not errors.Is: fn's error is returned as is.
		if err != errRefused {
			t.Fatalf("InTx = %v, want fn's error as is", err)
		}
		checkUser(t, e, u, false)
		checkOutcome(t, e, o, false)
		// The session's id and token are free again.
		if err := e.sessions.CreateSession(ctx, s, tok); err != nil {
			t.Errorf("CreateSession after the rollback: %v", err)
		}
	}
	checkPoolUsable(t, e)
}

func testPanicRollsBackAndRepanics(t *testing.T, e txEnv) {
	type boom struct{ round int }
	ctx := boundedContext(t)
	for i := range rounds {
		u, o := newTxUser(t), storagetest.NewOutcome("web")
		got := func() (p any) {
			defer func() { p = recover() }()
			_ = e.db.InTx(ctx, func(ctx context.Context) error {
				if err := createAndSave(e, u, o)(ctx); err != nil {
					t.Errorf("writes before the panic: %v", err)
				}
				panic(boom{i})
			})
			return nil
		}()
		if got != (boom{i}) {
			t.Fatalf("recovered %v, want fn's panic value %v", got, boom{i})
		}
		checkUser(t, e, u, false)
		checkOutcome(t, e, o, false)
	}
	checkPoolUsable(t, e)
}

// testConflictInsideTxKeepsTxUsable: each expected failure undoes only its
// own work; without savepoints PostgreSQL would abort the transaction. A
// stored reply found at commit is the exception: it fails the transaction.
func testConflictInsideTxKeepsTxUsable(t *testing.T, e txEnv) {
	ctx := context.Background()
	taken := newTxUser(t)
	if err := e.users.CreateUser(ctx, taken); err != nil {
		t.Fatal(err)
	}
	stored := storagetest.NewOutcome("web")
	if err := e.outcomes.SaveOutcome(ctx, stored); err != nil {
		t.Fatal(err)
	}
	u, o := newTxUser(t), storagetest.NewOutcome("web")
	dup := newTxUserWithEmail(t, taken.Email())
	s, tok := newTxSession(t, domain.UserID(storagetest.NewUUID())) // no such user
	again := stored
	again.Reply = []byte("another delivery's reply")

	err := e.db.InTx(ctx, func(ctx context.Context) error {
		if err := e.users.CreateUser(ctx, dup); domain.ErrorCode(err) != domain.CodeConflict {
			return fmt.Errorf("CreateUser with a taken address = %v, want conflict", err)
		}
		if err := e.sessions.CreateSession(ctx, s, tok); domain.ErrorCode(err) != domain.CodeNotFound {
			return fmt.Errorf("CreateSession for a missing user = %v, want not found", err)
		}
		return createAndSave(e, u, o)(ctx)
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	checkUser(t, e, u, true)
	checkOutcome(t, e, o, true)
	checkUser(t, e, taken, true)

	// SaveOutcome goes out with the commit: its conflict fails the commit,
	// and the transaction's other writes roll back.
	other, another := newTxUser(t), storagetest.NewOutcome("web")
	err = e.db.InTx(ctx, func(ctx context.Context) error {
		if err := createAndSave(e, other, another)(ctx); err != nil {
			return err
		}
		return e.outcomes.SaveOutcome(ctx, again)
	})
	if domain.ErrorCode(err) != domain.CodeConflict {
		t.Errorf("InTx with an outcome stored already = %v, want conflict", err)
	}
	checkUser(t, e, other, false)
	checkOutcome(t, e, another, false)
	got, err := e.outcomes.Outcome(ctx, stored.Key, stored.CreatedAt)
	if err != nil || string(got.Reply) != string(stored.Reply) {
		t.Errorf("Outcome = %x, %v; want the first reply", got.Reply, err)
	}
}

// testNestedUpdateUserJoins: UpdateUser inside InTx commits or rolls back
// with the transaction, and holds its row lock until then.
func testNestedUpdateUserJoins(t *testing.T, e txEnv) {
	ctx := context.Background()
	u := newTxUser(t)
	if err := e.users.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	err := e.db.InTx(ctx, func(ctx context.Context) error {
		err := e.users.UpdateUser(ctx, u.ID(), func(u *domain.User) error {
			return u.SetPasswordHash("rehashed", time.Now())
		})
		if err != nil {
			return err
		}
		got, err := e.users.UserByEmail(ctx, u.Email())
		if err != nil || got.PasswordHash() != "rehashed" {
			return fmt.Errorf("UserByEmail in the transaction = %v, %v; want the update", got, err)
		}
		// The row lock outlives UpdateUser: an update from outside waits.
		waitCtx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err = e.users.UpdateUser(waitCtx, u.ID(), func(*domain.User) error { return nil })
		if domain.ErrorCode(err) != domain.CodeUnavailable {
			return fmt.Errorf("UpdateUser from outside = %v, want unavailable after waiting for the lock", err)
		}
		return errRefused
	})
	if err != errRefused {
		t.Fatalf("InTx = %v, want fn's error as is", err)
	}
	got, err := e.users.UserByEmail(ctx, u.Email())
	if err != nil || got.PasswordHash() != "hash" {
		t.Errorf("UserByEmail after the rollback = %v, %v; want the user unchanged", got, err)
	}
}

func testNestedInTxFailureUndoesOnlyItsWork(t *testing.T, e txEnv) {
	outer, inner, o := newTxUser(t), newTxUser(t), storagetest.NewOutcome("web")
	err := e.db.InTx(context.Background(), func(ctx context.Context) error {
		if err := e.users.CreateUser(ctx, outer); err != nil {
			return err
		}
		err := e.db.InTx(ctx, func(ctx context.Context) error {
			if err := e.users.CreateUser(ctx, inner); err != nil {
				return err
			}
			return errRefused
		})
		if err != errRefused {
			return fmt.Errorf("nested InTx = %v, want fn's error as is", err)
		}
		return e.outcomes.SaveOutcome(ctx, o)
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	checkUser(t, e, outer, true)
	checkUser(t, e, inner, false)
	checkOutcome(t, e, o, true)
}

func testNestedInTxRollsBackWithOuter(t *testing.T, e txEnv) {
	u := newTxUser(t)
	err := e.db.InTx(context.Background(), func(ctx context.Context) error {
		if err := e.db.InTx(ctx, func(ctx context.Context) error { return e.users.CreateUser(ctx, u) }); err != nil {
			return err
		}
		return errRefused
	})
	if err != errRefused {
		t.Fatalf("InTx = %v, want fn's error as is", err)
	}
	checkUser(t, e, u, false)
}

// testConcurrentSameOutcome is two deliveries of one request handled at
// once: one commits, the other finds the outcome taken and leaves nothing.
func testConcurrentSameOutcome(t *testing.T, e txEnv) {
	o := storagetest.NewOutcome("web")
	users := []*domain.User{newTxUser(t), newTxUser(t)}
	replies := [][]byte{[]byte("reply 0"), []byte("reply 1")}
	errs := make([]error, len(users))
	var ready, wg sync.WaitGroup
	ready.Add(len(users))
	for i := range users {
		wg.Go(func() {
			errs[i] = e.db.InTx(context.Background(), func(ctx context.Context) error {
				err := e.users.CreateUser(ctx, users[i])
				ready.Done()
				if err != nil {
					return err
				}
				ready.Wait() // both transactions are open, each with its user
				mine := o
				mine.Reply = replies[i]
				return e.outcomes.SaveOutcome(ctx, mine)
			})
		})
	}
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch domain.ErrorCode(err) {
		case "":
			if winner >= 0 {
				t.Fatalf("both deliveries committed")
			}
			winner = i
		case domain.CodeConflict:
		default:
			t.Fatalf("delivery %d: %v, want success or conflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no delivery committed: %v", errs)
	}
	loser := 1 - winner
	checkUser(t, e, users[winner], true)
	checkUser(t, e, users[loser], false)
	got, err := e.outcomes.Outcome(context.Background(), o.Key, o.CreatedAt)
	if err != nil || string(got.Reply) != string(replies[winner]) {
		t.Errorf("Outcome = %q, %v; want the winner's reply %q", got.Reply, err, replies[winner])
	}
}

// testReadsSeeOwnWrites: reads in the transaction see its writes; reads
// outside it do not until it commits.
func testReadsSeeOwnWrites(t *testing.T, e txEnv) {
	u, o := newTxUser(t), storagetest.NewOutcome("web")
	err := e.db.InTx(context.Background(), func(ctx context.Context) error {
		if err := createAndSave(e, u, o)(ctx); err != nil {
			return err
		}
		if _, err := e.users.UserByEmail(ctx, u.Email()); err != nil {
			return fmt.Errorf("UserByEmail in the transaction: %v", err)
		}
		if _, err := e.outcomes.Outcome(ctx, o.Key, o.CreatedAt); err != nil {
			return fmt.Errorf("Outcome in the transaction: %v", err)
		}
		if _, err := e.users.UserByEmail(context.Background(), u.Email()); domain.ErrorCode(err) != domain.CodeNotFound {
			return fmt.Errorf("UserByEmail outside the transaction = %v, want not found before the commit", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	checkUser(t, e, u, true)
}

func testInTxCancelledContext(t *testing.T, e txEnv) {
	t.Run("Before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		called := false
		err := e.db.InTx(ctx, func(context.Context) error { called = true; return nil })
		if !errors.Is(err, context.Canceled) || domain.ErrorCode(err) != domain.CodeUnavailable {
			t.Errorf("InTx = %v, want unavailable wrapping context.Canceled", err)
		}
		if called {
			t.Error("InTx called fn with a cancelled context")
		}
	})
	t.Run("DuringFn", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		u, o := newTxUser(t), storagetest.NewOutcome("web")
		err := e.db.InTx(ctx, func(ctx context.Context) error {
			if err := e.users.CreateUser(ctx, u); err != nil {
				return err
			}
			cancel()
			return e.outcomes.SaveOutcome(ctx, o)
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("InTx = %v, want context.Canceled in the chain", err)
		}
		checkUser(t, e, u, false)
		checkOutcome(t, e, o, false)
	})
	t.Run("BeforeCommit", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		u := newTxUser(t)
		err := e.db.InTx(ctx, func(ctx context.Context) error {
			if err := e.users.CreateUser(ctx, u); err != nil {
				return err
			}
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) || domain.ErrorCode(err) != domain.CodeUnavailable {
			t.Errorf("InTx = %v, want unavailable wrapping context.Canceled", err)
		}
		checkUser(t, e, u, false)
	})
	checkPoolUsable(t, e)
}

// testSigningKeysCommitOnTheirOwn: key management never joins a request's
// transaction.
func testSigningKeysCommitOnTheirOwn(t *testing.T, e txEnv) {
	now := time.Now()
	key := domain.SigningKey{
		ID: "k1", Algorithm: "EdDSA", PublicKey: []byte("public"), SealedPrivateKey: []byte("sealed"),
		CreatedAt: now, SignFrom: now,
	}
	err := e.db.InTx(context.Background(), func(ctx context.Context) error {
		err := e.keys.UpdateSigningKeys(ctx, now, func(context.Context, []domain.SigningKey) ([]domain.SigningKey, error) {
			return []domain.SigningKey{key}, nil
		})
		if err != nil {
			return err
		}
		return errRefused
	})
	if err != errRefused {
		t.Fatalf("InTx = %v, want fn's error as is", err)
	}
	keys, err := e.keys.SigningKeys(context.Background(), now)
	if err != nil || len(keys) != 1 || keys[0].ID != key.ID {
		t.Errorf("SigningKeys = %+v, %v; want the key stored despite the rollback", keys, err)
	}
}

// newTxSession returns a session of userID and its first refresh token.
func newTxSession(tb testing.TB, userID domain.UserID) (*domain.Session, domain.RefreshToken) {
	tb.Helper()
	now := time.Now()
	s, err := domain.NewSession(domain.SessionID(storagetest.NewUUID()), userID, domain.Client{ID: "web"}, now, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	_, tok, err := domain.NewRefreshToken(rand.Reader, s, now, time.Minute)
	if err != nil {
		tb.Fatal(err)
	}
	return s, tok
}

// testAfterCommit: what a transaction asks to run after its commit runs
// once the outermost transaction has committed, never before; what a
// savepoint that failed, or a transaction that rolled back, asked never
// runs.
func testAfterCommit(t *testing.T, e txEnv) {
	ctx := context.Background()
	var ran []string
	record := func(what string) func() { return func() { ran = append(ran, what) } }
	err := e.db.InTx(ctx, func(ctx context.Context) error {
		e.db.OnCommit(ctx, record("outer"))
		if err := e.db.InTx(ctx, func(ctx context.Context) error {
			e.db.OnCommit(ctx, record("nested"))
			return nil
		}); err != nil {
			return err
		}
		_ = e.db.InTx(ctx, func(ctx context.Context) error {
			e.db.OnCommit(ctx, record("failed savepoint"))
			return errRefused
		})
		if len(ran) != 0 {
			t.Errorf("ran %v before the commit", ran)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = e.db.InTx(ctx, func(ctx context.Context) error {
		e.db.OnCommit(ctx, record("rolled back"))
		return errRefused
	})
	if want := []string{"outer", "nested"}; fmt.Sprint(ran) != fmt.Sprint(want) {
		t.Errorf("ran %v, want %v", ran, want)
	}
	if e.db.OnCommit(ctx, record("outside")) {
		t.Error("OnCommit outside a transaction accepted")
	}
}

// testIgnoredFailureFailsTheCommit: a statement that failed aborts the
// transaction even when fn ignores its error; the commit then fails, and
// nothing is written.
func testIgnoredFailureFailsTheCommit(t *testing.T, e txEnv) {
	u := newTxUser(t)
	err := e.db.InTx(context.Background(), func(ctx context.Context) error {
		if err := e.users.CreateUser(ctx, u); err != nil {
			return err
		}
		_ = e.db.Exec(ctx, "SELECT 1/0") // ignored
		return nil
	})
	if domain.ErrorCode(err) != domain.CodeInternal {
		t.Errorf("InTx = %v, want internal", err)
	}
	checkUser(t, e, u, false)
	checkPoolUsable(t, e)
}

// testLateFailureIsNotTheNextStatements: a statement sent late that fails
// makes the statement it went out with fail with the late statement's own
// error, not one the next statement's repository would read as its own (a
// taken address, say).
func testLateFailureIsNotTheNextStatements(t *testing.T, e txEnv) {
	ctx := context.Background()
	stored := storagetest.NewOutcome("web")
	if err := e.outcomes.SaveOutcome(ctx, stored); err != nil {
		t.Fatal(err)
	}
	again := stored
	again.Reply = []byte("another delivery's reply")
	u := newTxUser(t)
	var createErr error
	err := e.db.InTx(ctx, func(ctx context.Context) error {
		if err := e.outcomes.SaveOutcome(ctx, again); err != nil {
			return err
		}
		createErr = e.users.CreateUser(ctx, u)
		return createErr
	})
	if domain.ErrorCode(createErr) != domain.CodeConflict || !strings.Contains(createErr.Error(), "outcome already stored") ||
		strings.Contains(createErr.Error(), "email already registered") {
		t.Errorf("CreateUser after a failed late statement = %v, want the outcome's conflict", createErr)
	}
	if err == nil {
		t.Error("InTx committed")
	}
	checkUser(t, e, u, false)
	checkPoolUsable(t, e)
}

// testNothingToCommit: a transaction that ran no statement commits
// nothing, and fails nothing.
func testNothingToCommit(t *testing.T, e txEnv) {
	var ran []string
	err := e.db.InTx(context.Background(), func(ctx context.Context) error {
		e.db.OnCommit(ctx, func() { ran = append(ran, "after commit") })
		return nil
	})
	if err != nil || len(ran) != 1 {
		t.Errorf("InTx = %v, ran %v; want nil and the after-commit hook", err, ran)
	}
}
