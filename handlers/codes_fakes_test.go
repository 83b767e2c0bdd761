package handlers_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/authworker/authworker/domain"
)

// recordingNotifier records the notifications it is given, and whether
// each came inside work's unit of work, where the real one must be.
type recordingNotifier struct {
	work *fakeWork

	mu     sync.Mutex
	sent   []domain.Notification
	inWork []bool
}

func (n *recordingNotifier) Notify(_ context.Context, m domain.Notification) error {
	inside := n.work != nil && n.work.inside()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, m)
	n.inWork = append(n.inWork, inside)
	return nil
}

// notifications returns what was recorded.
func (n *recordingNotifier) notifications() []domain.Notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]domain.Notification(nil), n.sent...)
}

// outsideWork counts the notifications given outside the unit of work.
func (n *recordingNotifier) outsideWork() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, in := range n.inWork {
		if !in {
			c++
		}
	}
	return c
}

// fakeRevocationList records the sessions put on it; when down, it takes
// none and answers CodeUnavailable, as Redis would.
type fakeRevocationList struct {
	mu      sync.Mutex
	down    bool
	revoked []domain.SessionID
}

func (l *fakeRevocationList) Revoke(_ context.Context, ids ...domain.SessionID) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return domain.Unavailable("revocation list", fmt.Errorf("connection refused"))
	}
	l.revoked = append(l.revoked, ids...)
	return nil
}

func (l *fakeRevocationList) Revoked(_ context.Context, id domain.SessionID) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.revoked {
		if r == id {
			return true, nil
		}
	}
	return false, nil
}

func (l *fakeRevocationList) list() []domain.SessionID {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]domain.SessionID(nil), l.revoked...)
}

// steppingWork is a fakeWork whose units of work take time on a stepping
// clock, as a transaction does.
type steppingWork struct {
	fakeWork
	clock *steppingClock
	takes time.Duration
}

func (w *steppingWork) Atomically(ctx context.Context, fn func(context.Context) (any, error)) (any, error) {
	w.clock.advance(w.takes)
	return w.fakeWork.Atomically(ctx, fn)
}

// failingLimiter is a rate limiter whose store is down.
type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, string) (time.Duration, error) {
	return 0, domain.Unavailable("rate limiter", fmt.Errorf("connection refused"))
}

// unlockFailingThrottle is a fakeThrottle that cannot unlock: its store
// went down after the login throttle's last use.
type unlockFailingThrottle struct{ *fakeThrottle }

func (unlockFailingThrottle) Unlock(context.Context, domain.Email) error {
	return domain.Unavailable("throttle store", fmt.Errorf("connection refused"))
}
