package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/authworker/authworker/domain"
)

// fakeWork is a UnitOfWork that runs fn once, and knows while it does, so
// that tests can tell what a use case does inside its unit of work.
type fakeWork struct {
	mu     sync.Mutex
	calls  int
	active bool
}

func (w *fakeWork) Atomically(ctx context.Context, fn func(context.Context) (any, error)) (any, error) {
	w.mu.Lock()
	w.calls++
	w.active = true
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.active = false
		w.mu.Unlock()
	}()
	return fn(ctx)
}

// inside reports whether a unit of work is running.
func (w *fakeWork) inside() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.active
}

// fakeHasher "hashes" by prefixing, so tests can read what was stored.
// Hashes starting with "old:" verify but ask to be rehashed. It counts the
// hashes computed inside work's unit of work, which must be none. With
// refuse set, it refuses every hash with that error, as a busy hasher does,
// and counts the refusals; with busy set, HashIfIdle skips.
type fakeHasher struct {
	work   *fakeWork
	refuse error
	busy   bool
	// onVerify, when set, runs in each Verify: what happens while argon2
	// works.
	onVerify     func()
	mu           sync.Mutex
	dummies      int
	hashes       int
	hashesInWork int
	refused      int
}

func (h *fakeHasher) noteWork() {
	if h.work != nil && h.work.inside() {
		h.mu.Lock()
		h.hashesInWork++
		h.mu.Unlock()
	}
}

func (h *fakeHasher) inWork() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hashesInWork
}

// refusal returns the error a refusing hasher answers, counting it.
func (h *fakeHasher) refusal() error {
	if h.refuse == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refused++
	return h.refuse
}

func (h *fakeHasher) Hash(_ context.Context, password string) (string, error) {
	if err := h.refusal(); err != nil {
		return "", err
	}
	h.noteWork()
	h.mu.Lock()
	h.hashes++
	h.mu.Unlock()
	return "hash:" + password, nil
}

func (h *fakeHasher) Verify(_ context.Context, password, encoded string) (bool, bool, error) {
	if err := h.refusal(); err != nil {
		return false, false, err
	}
	h.noteWork()
	if h.onVerify != nil {
		h.onVerify()
	}
	switch {
	case strings.HasPrefix(encoded, "hash:"):
		return encoded == "hash:"+password, false, nil
	case strings.HasPrefix(encoded, "old:"):
		return encoded == "old:"+password, encoded == "old:"+password, nil
	}
	return false, false, &domain.Error{Code: domain.CodeInternal, Message: "stored password hash is unreadable"}
}

func (h *fakeHasher) VerifyDummy(context.Context, string) error {
	if err := h.refusal(); err != nil {
		return err
	}
	h.noteWork()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dummies++
	return nil
}

func (h *fakeHasher) HashIfIdle(ctx context.Context, password string) (string, bool, error) {
	if h.busy || h.refuse != nil {
		return "", false, nil
	}
	hash, err := h.Hash(ctx, password)
	return hash, err == nil, err
}

func (h *fakeHasher) dummyCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dummies
}

func (h *fakeHasher) refusedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.refused
}

// fakePolicy refuses passwords shorter than 15 bytes, and those that hold
// the e-mail address it is given, so tests see which address reaches it.
type fakePolicy struct{}

func (fakePolicy) Check(password string, c domain.PasswordContext) error {
	if len(password) < 15 {
		return domain.Invalid("password", "password must have at least 15 characters")
	}
	if c.Email != "" && strings.Contains(password, c.Email.String()) {
		return domain.Invalid("password", "password must not contain your e-mail address")
	}
	return nil
}

// fakeThrottle counts attempts per account and source, as the real one
// does: Begin counts an attempt it lets through, Succeeded undoes the count
// and clears the account, Cancel undoes the count; the last two fail, as a
// Redis call does, once their context has ended. The attempt whose count
// reaches lockAfter gets lockScope as its verdict's LockedNow: the lock it
// sets should it fail ("" sets none).
type fakeThrottle struct {
	mu        sync.Mutex
	lockAfter int
	lockScope domain.LockScope
	failures  map[domain.Email]int
	sources   map[string]int
	cancels   int
	down      bool
	// succeedDown fails Succeeded, as Redis going down during the hash
	// does.
	succeedDown bool
}

func newFakeThrottle(lockAfter int) *fakeThrottle {
	return &fakeThrottle{
		lockAfter: lockAfter, lockScope: domain.LockAll,
		failures: map[domain.Email]int{}, sources: map[string]int{},
	}
}

func (t *fakeThrottle) Begin(_ context.Context, a domain.LoginAttempt) (domain.ThrottleVerdict, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down {
		return domain.ThrottleVerdict{}, domain.Unavailable("throttle store", fmt.Errorf("connection refused"))
	}
	if t.sources[a.Source] >= 100 {
		return domain.ThrottleVerdict{SourceRetryAfter: time.Minute}, nil
	}
	if t.failures[a.Account] >= t.lockAfter {
		return domain.ThrottleVerdict{AccountLocked: true}, nil
	}
	t.failures[a.Account]++
	t.sources[a.Source]++
	var v domain.ThrottleVerdict
	if t.failures[a.Account] == t.lockAfter {
		v.LockedNow = t.lockScope
	}
	return v, nil
}

func (t *fakeThrottle) Succeeded(ctx context.Context, a domain.LoginAttempt) error {
	if err := ctx.Err(); err != nil {
		return domain.Unavailable("throttle store", err)
	}
	if t.succeedDown {
		return domain.Unavailable("throttle store", errors.New("connection refused"))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.failures, a.Account)
	t.sources[a.Source]--
	return nil
}

func (t *fakeThrottle) Cancel(ctx context.Context, a domain.LoginAttempt) error {
	if err := ctx.Err(); err != nil {
		return domain.Unavailable("throttle store", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cancels++
	t.failures[a.Account]--
	t.sources[a.Source]--
	return nil
}

func (t *fakeThrottle) Locked(_ context.Context, account domain.Email) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failures[account] >= 100, nil
}

func (t *fakeThrottle) Unlock(_ context.Context, account domain.Email) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.failures, account)
	return nil
}

func (t *fakeThrottle) failuresOf(e domain.Email) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failures[e]
}

// fakeLimiter allows limit requests per source.
type fakeLimiter struct {
	mu      sync.Mutex
	limit   int
	sources map[string]int
}

func (l *fakeLimiter) Allow(_ context.Context, source string) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sources == nil {
		l.sources = map[string]int{}
	}
	l.sources[source]++
	if l.sources[source] > l.limit {
		return time.Minute, nil
	}
	return 0, nil
}

// fakeIssuer returns readable tokens.
type fakeIssuer struct{ now func() time.Time }

func (i fakeIssuer) IssueAccessToken(_ context.Context, c domain.AccessClaims) (domain.AccessToken, error) {
	return domain.AccessToken{
		Token:     fmt.Sprintf("at.%s.%s.%s.%v", c.UserID, c.SessionID, c.ClientID, c.EmailVerified),
		ID:        "jti-1",
		ExpiresAt: i.now().Add(15 * time.Minute),
	}, nil
}

// VerifyAccessToken reads back a token of IssueAccessToken.
func (i fakeIssuer) VerifyAccessToken(token string) (domain.TokenClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 5 || parts[0] != "at" {
		return domain.TokenClaims{}, domain.Errorf(domain.CodeUnauthorized, "invalid access token")
	}
	return domain.TokenClaims{
		AccessClaims: domain.AccessClaims{UserID: domain.UserID(parts[1]), SessionID: domain.SessionID(parts[2]),
			ClientID: parts[3], EmailVerified: parts[4] == "true"},
		ID: "jti-1", Issuer: "https://auth.test", Audience: []string{"api"},
		IssuedAt: i.now(), ExpiresAt: i.now().Add(15 * time.Minute),
	}, nil
}

// failingUsers is a user store that is down.
type failingUsers struct{}

func (failingUsers) CreateUser(context.Context, *domain.User) error {
	return domain.Unavailable("user store", fmt.Errorf("connection refused"))
}

func (failingUsers) UserByEmail(context.Context, domain.Email) (*domain.User, error) {
	return nil, domain.Unavailable("user store", fmt.Errorf("connection refused"))
}

func (failingUsers) UpdateUser(context.Context, domain.UserID, func(*domain.User) error) error {
	return domain.Unavailable("user store", fmt.Errorf("connection refused"))
}

func (failingUsers) UserByID(context.Context, domain.UserID) (*domain.User, error) {
	return nil, domain.Unavailable("user store", fmt.Errorf("connection refused"))
}

func (failingUsers) EraseUser(context.Context, domain.UserID, time.Time) error {
	return domain.Unavailable("user store", fmt.Errorf("connection refused"))
}

// sequentialIDs returns UUIDs that differ in their last digits.
func sequentialIDs() func() string {
	var mu sync.Mutex
	n := 0
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("00000000-0000-7000-8000-%012d", n)
	}
}

var testNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return testNow }
