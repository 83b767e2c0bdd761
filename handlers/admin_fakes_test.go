package handlers_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/inmem"
)

// recordingRevocations is a RevocationList that records what it is given,
// or refuses it while down.
type recordingRevocations struct {
	mu      sync.Mutex
	revoked []domain.SessionID
	down    bool
}

func (r *recordingRevocations) Revoke(_ context.Context, ids ...domain.SessionID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return domain.Unavailable("revocation list", fmt.Errorf("connection refused"))
	}
	r.revoked = append(r.revoked, ids...)
	return nil
}

func (r *recordingRevocations) Revoked(_ context.Context, id domain.SessionID) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, got := range r.revoked {
		if got == id {
			return true, nil
		}
	}
	return false, nil
}

func (r *recordingRevocations) listed() []domain.SessionID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]domain.SessionID(nil), r.revoked...)
}

// unlockThrottle is a LoginThrottle that records the accounts it unlocks.
// Its other methods are nil: an administrator only unlocks, and a call of
// any other method panics.
type unlockThrottle struct {
	domain.LoginThrottle
	mu       sync.Mutex
	unlocked []domain.Email
	down     bool
}

func (t *unlockThrottle) Unlock(_ context.Context, account domain.Email) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down {
		return domain.Unavailable("throttle store", fmt.Errorf("connection refused"))
	}
	t.unlocked = append(t.unlocked, account)
	return nil
}

func (t *unlockThrottle) unlocks() []domain.Email {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]domain.Email(nil), t.unlocked...)
}

// reasonSessions is an in-memory SessionRepository that records the reasons
// RevokeUserSessions is given, which the in-memory store does not keep.
type reasonSessions struct {
	*inmem.SessionRepository
	mu      sync.Mutex
	reasons []string
}

func (r *reasonSessions) RevokeUserSessions(ctx context.Context, user domain.UserID, except domain.SessionID, reason string, now time.Time) ([]domain.SessionID, error) {
	r.mu.Lock()
	r.reasons = append(r.reasons, reason)
	r.mu.Unlock()
	return r.SessionRepository.RevokeUserSessions(ctx, user, except, reason, now)
}

func (r *reasonSessions) revokeReasons() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reasons...)
}

// failingWork is a UnitOfWork whose commit fails after fn ran: the writes
// fn made are lost, as a rollback loses them.
type failingWork struct{ calls int }

func (w *failingWork) Atomically(ctx context.Context, fn func(context.Context) (any, error)) (any, error) {
	w.calls++
	if _, err := fn(ctx); err != nil {
		return nil, err
	}
	return nil, domain.Unavailable("database", fmt.Errorf("connection reset on commit"))
}

// logBuffer collects what a handler logs, as text.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
