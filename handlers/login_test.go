package handlers_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/inmem"
)

// loginFixture is a LoginHandler over in-memory stores holding
// ada@example.com (active), dora@example.com (disabled) and
// olga@example.com (hash made with old parameters).
type loginFixture struct {
	users    *inmem.UserRepository
	sessions *inmem.SessionRepository
	work     *fakeWork
	hasher   *fakeHasher
	throttle *fakeThrottle
	events   *recordingEvents
	sleeps   *sleepRecorder
	handler  *handlers.LoginHandler
}

const (
	adaID  = domain.UserID("00000000-0000-7000-8000-00000000ada0")
	doraID = domain.UserID("00000000-0000-7000-8000-00000000d0a0")
)

func newLoginFixture(t *testing.T) *loginFixture {
	t.Helper()
	work := &fakeWork{}
	f := &loginFixture{
		users:    inmem.NewUserRepository(),
		work:     work,
		hasher:   &fakeHasher{work: work},
		throttle: newFakeThrottle(3),
		events:   &recordingEvents{work: work},
		sleeps:   &sleepRecorder{},
	}
	f.sessions = inmem.NewSessionRepository(f.users)
	for _, u := range []struct {
		id       domain.UserID
		email    domain.Email
		hash     string
		disabled bool
	}{
		{adaID, "ada@example.com", "hash:" + goodPassword, false},
		{doraID, "dora@example.com", "hash:" + goodPassword, true},
		{"00000000-0000-7000-8000-000000000019", "olga@example.com", "old:" + goodPassword, false},
	} {
		user, err := domain.NewUser(u.id, u.email, u.hash, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if u.disabled {
			user.Disable(testNow)
		}
		if err := f.users.CreateUser(context.Background(), user); err != nil {
			t.Fatal(err)
		}
	}
	f.handler = handlers.NewLoginHandler(handlers.LoginDeps{
		Work:     f.work,
		Users:    f.users,
		Sessions: f.sessions,
		Hasher:   f.hasher,
		Throttle: f.throttle,
		Tokens:   fakeIssuer{now: fixedClock},
		Events:   f.events,
		NewID:    sequentialIDs(),
		Now:      fixedClock,
		Random:   bytes.NewReader(bytes.Repeat([]byte{42}, 1024)),
		Sleep:    f.sleeps.sleep,
	}, handlers.LoginConfig{SessionConfig: handlers.SessionConfig{SessionTTL: 30 * 24 * time.Hour, RefreshIdleTTL: 7 * 24 * time.Hour}})
	return f
}

func login(email, password string) handlers.Login {
	return handlers.Login{Email: email, Password: password, Client: domain.Client{ID: "web", IP: "192.0.2.1", UserAgent: "test"}}
}

func TestLoginOK(t *testing.T) {
	f := newLoginFixture(t)
	f.throttle.failures["ada@example.com"] = 2

	got, err := f.handler.Handle(context.Background(), login("ADA@example.com", goodPassword))
	if err != nil {
		t.Fatal(err)
	}
	if got.UserID != adaID {
		t.Errorf("UserID = %q, want %q", got.UserID, adaID)
	}
	if want := "at." + string(adaID) + "." + string(got.SessionID) + ".web.false"; got.AccessToken.Token != want {
		t.Errorf("access token = %q, want %q", got.AccessToken.Token, want)
	}
	if want := testNow.Add(7 * 24 * time.Hour); !got.RefreshTokenExpiresAt.Equal(want) {
		t.Errorf("refresh expiry = %v, want %v", got.RefreshTokenExpiresAt, want)
	}
	session, ok := f.sessions.Stored(got.SessionID)
	if !ok {
		t.Fatal("session not stored")
	}
	if session.UserID() != adaID || session.ClientID() != "web" {
		t.Errorf("session = %+v, want user %q client web", session.Snapshot(), adaID)
	}
	tokens := f.sessions.RefreshTokens(got.SessionID)
	if len(tokens) != 1 || !tokens[0].Matches(got.RefreshToken) {
		t.Fatalf("stored refresh tokens %+v do not match the returned secret", tokens)
	}
	if bytes.Equal(tokens[0].Hash, []byte(got.RefreshToken)) {
		t.Error("refresh token stored in the clear")
	}
	if n := f.throttle.failuresOf("ada@example.com"); n != 0 {
		t.Errorf("failures after success = %d, want cleared", n)
	}
}

// TestLoginFailuresLookAlike checks that every kind of failed login gets the
// same error and does the same work.
func TestLoginFailuresLookAlike(t *testing.T) {
	tests := []struct {
		name       string
		prepare    func(*loginFixture)
		cmd        handlers.Login
		wantDummy  int // dummy verifications, standing in for real ones
		wantCounts int // failures recorded for the account
	}{
		{"WrongPassword", nil, login("ada@example.com", "wrong password, long enough"), 0, 1},
		{"UnknownUser", nil, login("nobody@example.com", goodPassword), 1, 1},
		{"Disabled", nil, login("dora@example.com", goodPassword), 0, 1},
		{"Locked", func(f *loginFixture) { f.throttle.failures["ada@example.com"] = 3 }, login("ada@example.com", goodPassword), 1, 3},
		{"LockedUnknownUser", func(f *loginFixture) { f.throttle.failures["nobody@example.com"] = 3 }, login("nobody@example.com", goodPassword), 1, 3},
	}
	var first error
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLoginFixture(t)
			if tt.prepare != nil {
				tt.prepare(f)
			}
			_, err := f.handler.Handle(context.Background(), tt.cmd)
			e, ok := errors.AsType[*domain.Error](err)
			if !ok || e.Code != domain.CodeUnauthorized {
				t.Fatalf("error = %v, want unauthorized", err)
			}
			if first == nil {
				first = err
			} else if err.Error() != first.Error() {
				t.Errorf("error %q differs from %q", err, first)
			}
			if got := f.hasher.dummyCount(); got != tt.wantDummy {
				t.Errorf("dummy verifications = %d, want %d", got, tt.wantDummy)
			}
			email, _ := domain.ParseEmail(tt.cmd.Email)
			if got := f.throttle.failuresOf(email); got != tt.wantCounts {
				t.Errorf("recorded failures = %d, want %d", got, tt.wantCounts)
			}
		})
	}
}

func TestLoginLocksAfterRepeatedFailures(t *testing.T) {
	f := newLoginFixture(t)
	for range 3 {
		if _, err := f.handler.Handle(context.Background(), login("ada@example.com", "wrong password, long enough")); domain.ErrorCode(err) != domain.CodeUnauthorized {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if _, err := f.handler.Handle(context.Background(), login("ada@example.com", goodPassword)); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Errorf("right password on a locked account: %v, want unauthorized", err)
	}
}

func TestLoginRefused(t *testing.T) {
	tests := []struct {
		name     string
		prepare  func(*loginFixture)
		cmd      handlers.Login
		wantCode domain.Code
	}{
		{"InvalidEmail", nil, login("ada", goodPassword), domain.CodeInvalid},
		{"EmptyPassword", nil, login("ada@example.com", ""), domain.CodeInvalid},
		{"SourceLimited", func(f *loginFixture) { f.throttle.sources["ip:192.0.2.1"] = 100 }, login("ada@example.com", goodPassword), domain.CodeRateLimited},
		{"ThrottleDown", func(f *loginFixture) { f.throttle.down = true }, login("ada@example.com", goodPassword), domain.CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLoginFixture(t)
			if tt.prepare != nil {
				tt.prepare(f)
			}
			_, err := f.handler.Handle(context.Background(), tt.cmd)
			if code := domain.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("error = %v, want %q", err, tt.wantCode)
			}
			if tt.wantCode == domain.CodeRateLimited {
				if e, _ := errors.AsType[*domain.Error](err); e.RetryAfter <= 0 {
					t.Errorf("RetryAfter = %v, want positive", e.RetryAfter)
				}
			}
		})
	}
}

// TestLoginUserStoreDown: the login fails closed, and the attempt the
// throttle counted is cancelled, so an outage locks nobody out.
func TestLoginUserStoreDown(t *testing.T) {
	throttle := newFakeThrottle(3)
	events := &recordingEvents{}
	h := handlers.NewLoginHandler(handlers.LoginDeps{
		Work:     &fakeWork{},
		Users:    failingUsers{},
		Hasher:   &fakeHasher{},
		Throttle: throttle,
		Events:   events,
		Now:      fixedClock,
		Sleep:    (&sleepRecorder{}).sleep,
	}, handlers.LoginConfig{})
	_, err := h.Handle(context.Background(), login("ada@example.com", goodPassword))
	if code := domain.ErrorCode(err); code != domain.CodeUnavailable {
		t.Fatalf("error = %v, want unavailable", err)
	}
	if throttle.cancels != 1 || throttle.failuresOf("ada@example.com") != 0 {
		t.Errorf("cancels %d, failures %d: want the attempt cancelled", throttle.cancels, throttle.failuresOf("ada@example.com"))
	}
	if got := events.all(); len(got) != 0 {
		t.Errorf("events %v, want none for a login that was not decided", got)
	}
}

// TestLoginThrottleDownAfterVerification: Redis went down while the
// password was checked, so the throttle cannot clear the attempt. The
// password is verified: the login opens its session (and its outcome is
// stored), instead of failing UNAVAILABLE and making its caller's retry
// hash the password again. The attempt stays counted until it expires.
func TestLoginThrottleDownAfterVerification(t *testing.T) {
	f := newLoginFixture(t)
	f.throttle.succeedDown = true
	res, err := f.handler.Handle(context.Background(), login("ada@example.com", goodPassword))
	if err != nil {
		t.Fatalf("login: %v, want a session", err)
	}
	if _, err := f.sessions.Session(context.Background(), res.SessionID); err != nil {
		t.Errorf("session %s not stored: %v", res.SessionID, err)
	}
	if f.work.calls != 1 {
		t.Errorf("%d units of work, want 1", f.work.calls)
	}
}

func TestLoginRehashesOldHash(t *testing.T) {
	f := newLoginFixture(t)
	if _, err := f.handler.Handle(context.Background(), login("olga@example.com", goodPassword)); err != nil {
		t.Fatal(err)
	}
	u, err := f.users.UserByEmail(context.Background(), "olga@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.PasswordHash(), "hash:"+goodPassword; got != want {
		t.Errorf("hash after login = %q, want rehashed %q", got, want)
	}
}

// TestLoginWorkOutsideTheUnitOfWork: the hash and the throttle run before
// the unit of work, which holds only the writes, so a transaction never
// waits for argon2 and a retried unit of work does not hash again.
func TestLoginWorkOutsideTheUnitOfWork(t *testing.T) {
	tests := []struct {
		name      string
		email     string
		wantUnits int
	}{
		{"OK", "ada@example.com", 1},
		{"Rehash", "olga@example.com", 1},
		{"WrongPassword", "ada@example.com", 0},
		{"UnknownUser", "nobody@example.com", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLoginFixture(t)
			password := goodPassword
			if tt.name == "WrongPassword" {
				password = "not the password at all"
			}
			_, _ = f.handler.Handle(context.Background(), login(tt.email, password))
			if got := f.work.calls; got != tt.wantUnits {
				t.Errorf("units of work = %d, want %d", got, tt.wantUnits)
			}
			if got := f.hasher.inWork(); got != 0 {
				t.Errorf("%d hash computations inside the unit of work, want none", got)
			}
		})
	}
}

// sleepRecorder stands in for waiting: it records what it was asked to wait.
type sleepRecorder struct {
	mu    sync.Mutex
	total time.Duration
}

func (r *sleepRecorder) sleep(_ context.Context, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total += d
}

// steppingClock is a clock that the test moves, standing in for the time
// the work takes.
type steppingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *steppingClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// slowHasher costs time on the stepping clock according to the stored hash:
// a legacy or costlier hash takes longer than the dummy, as real ones do.
type slowHasher struct {
	fakeHasher
	clock *steppingClock
}

func (h *slowHasher) Verify(ctx context.Context, password, encoded string) (bool, bool, error) {
	switch {
	case strings.HasPrefix(encoded, "old:"):
		h.clock.advance(120 * time.Millisecond) // argon2 at 64 MiB
	case strings.HasPrefix(encoded, "hash:"):
		h.clock.advance(30 * time.Millisecond)
	default:
		h.clock.advance(time.Millisecond) // unreadable
	}
	return h.fakeHasher.Verify(ctx, password, encoded)
}

func (h *slowHasher) VerifyDummy(ctx context.Context, password string) error {
	h.clock.advance(30 * time.Millisecond)
	return h.fakeHasher.VerifyDummy(ctx, password)
}

// TestLoginRefusalsTakeTheFloor: whatever is stored and whatever the
// reason, a refused login is answered FailureFloor after it began, so its
// timing tells nothing about the account. A login that succeeds waits for
// nothing.
func TestLoginRefusalsTakeTheFloor(t *testing.T) {
	const floor = 200 * time.Millisecond
	tests := []struct {
		name      string
		email     string
		password  string
		wantFloor bool
	}{
		{"UnknownUser", "nobody@example.com", goodPassword, true},
		{"WrongPassword", "ada@example.com", "not the password at all", true},
		{"WrongPasswordCostlyHash", "olga@example.com", "not the password at all", true},
		{"Disabled", "dora@example.com", goodPassword, true},
		{"UnreadableHash", "ursula@example.com", goodPassword, true},
		{"OK", "ada@example.com", goodPassword, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLoginFixture(t)
			user, err := domain.NewUser("00000000-0000-7000-8000-0000000000e0", "ursula@example.com", "garbage", testNow)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.users.CreateUser(context.Background(), user); err != nil {
				t.Fatal(err)
			}
			clock := &steppingClock{now: testNow}
			sleeps := &sleepRecorder{}
			h := handlers.NewLoginHandler(handlers.LoginDeps{
				Work: f.work, Users: f.users, Sessions: f.sessions, Hasher: &slowHasher{clock: clock}, Throttle: f.throttle,
				Tokens: fakeIssuer{now: fixedClock}, Events: f.events, NewID: sequentialIDs(), Now: clock.Now,
				Random: bytes.NewReader(bytes.Repeat([]byte{42}, 1024)), Sleep: sleeps.sleep,
			}, handlers.LoginConfig{FailureFloor: floor})
			_, err = h.Handle(context.Background(), login(tt.email, tt.password))
			if (err != nil) != tt.wantFloor {
				t.Fatalf("error = %v", err)
			}
			answeredAfter := clock.Now().Sub(testNow) + sleeps.total
			if tt.wantFloor && answeredAfter != floor {
				t.Errorf("answered after %v, want the floor %v", answeredAfter, floor)
			}
			if !tt.wantFloor && sleeps.total != 0 {
				t.Errorf("a successful login waited %v", sleeps.total)
			}
		})
	}
}

// TestLoginSettlesItsAttemptAfterTheDeadline: the request's deadline
// passes while the password is verified (a worker behind a backlog), and
// the caller sends the login again, under the same id, with a new
// deadline, time after time. The attempts the throttle reserved are
// settled all the same: the right password clears them, an undecided
// attempt is cancelled, so the owner is never locked out by their own
// retries.
func TestLoginSettlesItsAttemptAfterTheDeadline(t *testing.T) {
	t.Run("VerifiedPassword", func(t *testing.T) {
		f := newLoginFixture(t) // locks after 3 failures
		for range 5 {
			ctx, cancel := context.WithCancel(context.Background())
			f.hasher.onVerify = cancel // the deadline passes while argon2 runs
			_, _ = f.handler.Handle(ctx, login("ada@example.com", goodPassword))
			if n := f.throttle.failuresOf("ada@example.com"); n != 0 {
				t.Fatalf("%d failures counted after a verified password, want none", n)
			}
		}
		f.hasher.onVerify = nil
		if _, err := f.handler.Handle(context.Background(), login("ada@example.com", goodPassword)); err != nil {
			t.Errorf("login in time after late ones: %v, want a session", err)
		}
	})
	t.Run("Undecided", func(t *testing.T) {
		throttle := newFakeThrottle(3)
		h := handlers.NewLoginHandler(handlers.LoginDeps{
			Work: &fakeWork{}, Users: failingUsers{}, Hasher: &fakeHasher{}, Throttle: throttle,
			Events: &recordingEvents{}, Now: fixedClock, Sleep: (&sleepRecorder{}).sleep,
		}, handlers.LoginConfig{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, _ = h.Handle(ctx, login("ada@example.com", goodPassword))
		if throttle.cancels != 1 || throttle.failuresOf("ada@example.com") != 0 {
			t.Errorf("cancels %d, failures %d: want the attempt cancelled", throttle.cancels, throttle.failuresOf("ada@example.com"))
		}
	})
}

// TestLoginRacingAnAccountChange: the account changes while the password
// is being verified (a reset or a change of the password, a disable, an
// erasure, committed by another request). The login must not open a
// session after that change, which revoked the sessions there were and
// would never revoke this one: it is refused as a wrong password or a
// disabled account would be, after the same floor, and writes nothing.
func TestLoginRacingAnAccountChange(t *testing.T) {
	later := testNow.Add(time.Minute)
	tests := []struct {
		name       string
		change     func(ctx context.Context, users *inmem.UserRepository) error
		wantReason domain.LoginFailureReason
	}{
		{"PasswordSetAgain", func(ctx context.Context, users *inmem.UserRepository) error {
			return users.UpdateUser(ctx, adaID, func(u *domain.User) error { return u.ChangePassword("hash:"+goodPassword, later) })
		}, domain.LoginFailedBadCredentials},
		{"PasswordChanged", func(ctx context.Context, users *inmem.UserRepository) error {
			return users.UpdateUser(ctx, adaID, func(u *domain.User) error { return u.ChangePassword("hash:another password", later) })
		}, domain.LoginFailedBadCredentials},
		{"Disabled", func(ctx context.Context, users *inmem.UserRepository) error {
			return users.UpdateUser(ctx, adaID, func(u *domain.User) error { u.Disable(later); return nil })
		}, domain.LoginFailedDisabled},
		{"Erased", func(ctx context.Context, users *inmem.UserRepository) error {
			return users.EraseUser(ctx, adaID, later)
		}, domain.LoginFailedUnknownAccount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLoginFixture(t)
			ctx := context.Background()
			f.hasher.onVerify = func() {
				if err := tt.change(ctx, f.users); err != nil {
					t.Errorf("change the account: %v", err)
				}
			}
			_, err := f.handler.Handle(ctx, login("ada@example.com", goodPassword))
			if e := (*domain.Error)(nil); !errors.As(err, &e) || e.Code != domain.CodeUnauthorized || e.Message != "invalid email or password" {
				t.Fatalf("login = %v, want the one reply to refused credentials", err)
			}
			if f.sleeps.total == 0 {
				t.Error("the refusal did not wait for the failure floor")
			}
			live, err := f.sessions.RevokeUserSessions(ctx, adaID, "", "test", later)
			if err != nil || len(live) != 0 {
				t.Errorf("sessions opened: %v (%v), want none", live, err)
			}
			var reasons []domain.LoginFailureReason
			for _, e := range f.events.all() {
				switch p := e.Event.Payload.(type) {
				case domain.LoginSucceeded:
					t.Errorf("LoginSucceeded recorded")
				case domain.LoginFailed:
					reasons = append(reasons, p.Reason)
				}
			}
			if len(reasons) != 1 || reasons[0] != tt.wantReason {
				t.Errorf("LoginFailed reasons %v, want [%s]", reasons, tt.wantReason)
			}
		})
	}
}
