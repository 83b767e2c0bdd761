package handlers_test

import (
	"context"
	"sync"

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
