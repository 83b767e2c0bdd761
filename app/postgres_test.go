package app_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authworker/authworker/app"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/postgres"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/seal"
	"github.com/authworker/authworker/testenv"
)

// usePostgres puts f's stores on a fresh PostgreSQL database whose pool
// holds at most maxConns connections, and returns its URL.
func (f *fixture) usePostgres(t *testing.T, maxConns int32) string {
	t.Helper()
	url := testenv.Database(t)
	db, err := postgres.Open(context.Background(), postgres.Config{URL: url, MaxConns: maxConns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.outcomes.OutcomeRepository = postgres.NewOutcomeRepository(db)
	f.deps.Tx = db
	f.deps.Users = postgres.NewUserRepository(db)
	f.deps.Sessions = postgres.NewSessionRepository(db)
	box, err := seal.NewBox(kek, "outbox")
	if err != nil {
		t.Fatal(err)
	}
	f.deps.Outbox = postgres.NewOutbox(db, box)
	return url
}

// registerVia registers email through the service itself.
func registerVia(t *testing.T, f *fixture, email string) {
	t.Helper()
	rep, err := f.service(t).Answer(context.Background(), request("register-"+email, registerOp(email, password)), origin)
	if err != nil || rep.Code != "" {
		t.Fatalf("register %s: %v %q", email, err, rep.Code)
	}
}

// barrierHasher holds every password check until n of them wait at once,
// or gives up after a while and records that they never did.
type barrierHasher struct {
	domain.PasswordHasher
	n       int
	mu      sync.Mutex
	waiting int
	all     chan struct{}
	missed  bool
}

func (h *barrierHasher) Verify(ctx context.Context, password, encoded string) (bool, bool, error) {
	h.mu.Lock()
	h.waiting++
	if h.waiting == h.n {
		close(h.all)
	}
	h.mu.Unlock()
	select {
	case <-h.all:
	case <-time.After(10 * time.Second):
		h.mu.Lock()
		h.missed = true
		h.mu.Unlock()
	}
	return h.PasswordHasher.Verify(ctx, password, encoded)
}

// TestLoginHoldsNoConnectionWhileHashing: with a pool of one connection,
// four logins check their passwords at the same time. A login that kept a
// transaction open while hashing would hold the only connection, and the
// others could not get as far as their password check.
func TestLoginHoldsNoConnectionWhileHashing(t *testing.T) {
	const logins = 4
	f := newFixture(t)
	f.usePostgres(t, 1)
	for i := range logins {
		registerVia(t, f, emailOf(i))
	}
	h := &barrierHasher{PasswordHasher: f.deps.Hasher, n: logins, all: make(chan struct{})}
	f.deps.Hasher = h
	s := f.service(t)
	var wg sync.WaitGroup
	codes := make([]domain.Code, logins)
	for i := range logins {
		wg.Go(func() {
			rep, err := s.Answer(context.Background(), request("login-"+emailOf(i), loginOp(emailOf(i), password)), origin)
			if err != nil {
				t.Error(err)
			}
			codes[i] = rep.Code
		})
	}
	wg.Wait()
	if h.missed {
		t.Errorf("the %d logins never checked their passwords at the same time: a login held the pool's one connection while hashing", logins)
	}
	for i, c := range codes {
		if c != "" {
			t.Errorf("login %d: code %q, want OK", i, c)
		}
	}
}

func emailOf(i int) string { return "user" + string(rune('a'+i)) + "@example.com" }

// TestSuccessfulLoginRetriesOnlyTheUnitOfWork: the transaction that writes
// the session and stores the reply fails once and is retried. The session
// is written once, and the password is not checked nor the throttle told
// again.
func TestSuccessfulLoginRetriesOnlyTheUnitOfWork(t *testing.T) {
	f := newFixture(t)
	url := f.usePostgres(t, 4)
	registerVia(t, f, "ada@example.com")
	f.outcomes.saveFails = 1
	rep, err := f.service(t).Answer(context.Background(), request("r1", loginOp("ada@example.com", password)), origin)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Code != "" {
		t.Fatalf("code %q, want OK", rep.Code)
	}
	if _, succeeded := f.throttle.counts(); succeeded != 1 {
		t.Errorf("throttle saw %d successes, want 1", succeeded)
	}
	sid := f.decode(t, rep).Result.(*schemas.LoginResult).SessionID
	if n := countRows(t, url, "SELECT count(*) FROM sessions"); n != 1 {
		t.Errorf("%d sessions stored, want 1", n)
	}
	if n := countRows(t, url, "SELECT count(*) FROM sessions WHERE id = '"+sid+"'"); n != 1 {
		t.Errorf("the session in the reply (%s) is stored %d times, want 1", sid, n)
	}
	// The registration's event and the login's, the retried attempt's
	// rolled back with it.
	if n := countRows(t, url, "SELECT count(*) FROM outbox WHERE topic = 'auth.events'"); n != 2 {
		t.Errorf("%d events in the outbox, want 2", n)
	}
}

// TestConcurrentDeliveriesOnPostgres: eight deliveries of one Register at
// once create one account and all get its reply.
func TestConcurrentDeliveriesOnPostgres(t *testing.T) {
	f := newFixture(t)
	url := f.usePostgres(t, 8)
	s := f.service(t)
	req := request("r1", registerOp("ada@example.com", password))
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			rep, err := s.Answer(context.Background(), req, origin)
			if err != nil {
				t.Error(err)
				return
			}
			if res, ok := f.decode(t, rep).Result.(*schemas.RegisterResult); ok {
				ids[i] = res.UserID
			}
		})
	}
	wg.Wait()
	for i, id := range ids {
		if id == "" || id != ids[0] {
			t.Errorf("delivery %d got user id %q, delivery 0 %q: want one account for all", i, id, ids[0])
		}
	}
	if n := countRows(t, url, "SELECT count(*) FROM users"); n != 1 {
		t.Errorf("%d accounts, want 1", n)
	}
	if n := countRows(t, url, "SELECT count(*) FROM outbox WHERE topic = 'auth.events'"); n != 1 {
		t.Errorf("%d events in the outbox, want the one of the delivery that stored the outcome", n)
	}
}

func countRows(t *testing.T, url, query string, args ...any) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReusedRequestIDRace: two different requests under one client id and
// request id at once: one is answered, the other refused, and the refused
// one never gets the other's reply.
func TestReusedRequestIDRace(t *testing.T) {
	f := newFixture(t)
	f.usePostgres(t, 8)
	registerVia(t, f, "ada@example.com")
	s := f.service(t)
	reqs := []*schemas.Request{
		request("r1", loginOp("ada@example.com", password)),
		request("r1", loginOp("ada@example.com", "not the password at all")),
	}
	codes := make([]domain.Code, len(reqs))
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Go(func() {
			rep, err := s.Answer(context.Background(), req, origin)
			if err != nil {
				t.Error(err)
			}
			codes[i] = rep.Code
		})
	}
	wg.Wait()
	ok := (codes[0] == "" && codes[1] == domain.CodeConflict) ||
		(codes[0] == domain.CodeConflict && codes[1] == domain.CodeUnauthorized)
	if !ok {
		t.Errorf("codes %q, want one request answered and the other refused with conflict", codes)
	}
}

// TestRetriedUnitOfWorkPublishesOnce: the transaction of a Register fails
// twice before it commits; the attempts that rolled back take their events
// with them, and the account has one UserRegistered.
func TestRetriedUnitOfWorkPublishesOnce(t *testing.T) {
	f := newFixture(t)
	url := f.usePostgres(t, 4)
	f.outcomes.saveFails = 2
	rep, err := f.service(t).Answer(context.Background(), request("r1", registerOp("ada@example.com", password)), origin)
	if err != nil || rep.Code != "" {
		t.Fatalf("register: %v %q", err, rep.Code)
	}
	if f.outcomes.saves != 3 {
		t.Fatalf("unit of work ran %d times, want 3", f.outcomes.saves)
	}
	if n := countRows(t, url, "SELECT count(*) FROM outbox WHERE topic = 'auth.events'"); n != 1 {
		t.Errorf("%d events in the outbox, want 1", n)
	}
}

// TestRefreshAnsweredAgainOnPostgres: Refresh looks its stored outcome up
// only when storing finds one. A refresh delivered again, in turn or at
// once, still gets the first reply byte for byte, its rerun (which finds
// the token spent, and would revoke the session as reuse) rolls back
// whole, and the session lives on; a request id reused for another token
// is refused and rotates nothing.
func TestRefreshAnsweredAgainOnPostgres(t *testing.T) {
	tests := []struct {
		name string
		// again delivers req again, after its first answer first; it returns
		// the replies.
		again func(t *testing.T, f *fixture, s *app.Service, req *schemas.Request) []app.Reply
	}{
		{"InTurn", func(t *testing.T, f *fixture, s *app.Service, req *schemas.Request) []app.Reply {
			return []app.Reply{answer(t, s, req), answer(t, s, req)}
		}},
		{"AtOnce", func(t *testing.T, f *fixture, s *app.Service, req *schemas.Request) []app.Reply {
			reps := make([]app.Reply, 8)
			var wg sync.WaitGroup
			for i := range reps {
				wg.Go(func() { reps[i] = answer(t, s, req) })
			}
			wg.Wait()
			return reps
		}},
		{"WhileTheThrottleIsDown", func(t *testing.T, f *fixture, s *app.Service, req *schemas.Request) []app.Reply {
			first := answer(t, s, req)
			f.throttle.lockedErr = domain.Unavailable("throttle store", errors.New("down"))
			return []app.Reply{first, answer(t, s, req)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			url := f.usePostgres(t, 16)
			registerVia(t, f, "ada@example.com")
			s := f.service(t)
			login := answer(t, s, request("login", loginOp("ada@example.com", password)))
			session := f.decode(t, login).Result.(*schemas.LoginResult)
			req := request("refresh", &schemas.Refresh{RefreshToken: session.RefreshToken})

			reps := tt.again(t, f, s, req)
			for i, rep := range reps {
				if rep.Code != "" || !bytes.Equal(rep.Value, reps[0].Value) {
					t.Fatalf("delivery %d: code %q, same reply %v; want the first OK reply", i, rep.Code, bytes.Equal(rep.Value, reps[0].Value))
				}
			}
			if n := countRows(t, url, "SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL"); n != 0 {
				t.Errorf("%d sessions revoked, want none", n)
			}
			if n := countRows(t, url, "SELECT count(*) FROM refresh_tokens WHERE used_at IS NOT NULL"); n != 1 {
				t.Errorf("%d tokens spent, want the one rotated", n)
			}
			// registered, logged in, refreshed once
			if n := countRows(t, url, "SELECT count(*) FROM outbox WHERE topic = 'auth.events'"); n != 3 {
				t.Errorf("%d events, want 3", n)
			}

			// The same request id for another session's token.
			other := f.decode(t, answer(t, s, request("login-2", loginOp("ada@example.com", password)))).Result.(*schemas.LoginResult)
			rep := answer(t, s, request("refresh", &schemas.Refresh{RefreshToken: other.RefreshToken}))
			if e, ok := f.decode(t, rep).Result.(*schemas.Error); rep.Code != domain.CodeConflict || !ok || e.Field == nil || *e.Field != "requestId" {
				t.Errorf("reused request id: code %q, want CONFLICT on requestId", rep.Code)
			}
			if n := countRows(t, url, "SELECT count(*) FROM refresh_tokens WHERE used_at IS NOT NULL"); n != 1 {
				t.Errorf("%d tokens spent after the reused id, want still 1", n)
			}
		})
	}
}
