package handlers_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
)

// recordedEvent is an event a use case recorded, and whether it did so
// inside a unit of work.
type recordedEvent struct {
	Event  domain.Event
	InWork bool
}

// recordingEvents is a domain.Events that records the events it is given,
// and whether each came inside work's unit of work. It is safe for
// concurrent use.
type recordingEvents struct {
	work *fakeWork

	mu       sync.Mutex
	recorded []recordedEvent
}

func (r *recordingEvents) Record(_ context.Context, events ...domain.Event) {
	inside := r.work != nil && r.work.inside()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range events {
		r.recorded = append(r.recorded, recordedEvent{Event: e, InWork: inside})
	}
}

// all returns what was recorded, in order.
func (r *recordingEvents) all() []recordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedEvent(nil), r.recorded...)
}

// reset forgets what was recorded, so that a test sees only the events of
// the operation it looks at.
func (r *recordingEvents) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recorded = nil
}

// wantEvent is an event a test expects: whom it names, what it says, and
// whether it is recorded inside the unit of work.
type wantEvent struct {
	user    domain.UserID
	payload domain.EventPayload
	inWork  bool
}

func (w wantEvent) String() string {
	return fmt.Sprintf("{user %q %T%+v inWork %v}", w.user, w.payload, w.payload, w.inWork)
}

func (r recordedEvent) String() string {
	return fmt.Sprintf("{user %q %T%+v inWork %v at %v}", r.Event.UserID, r.Event.Payload, r.Event.Payload, r.InWork, r.Event.OccurredAt)
}

// revokedEvents are the SessionRevoked events expected for the sessions,
// inside the unit of work.
func revokedEvents(user domain.UserID, reason string, ids ...domain.SessionID) []wantEvent {
	want := make([]wantEvent, len(ids))
	for i, id := range ids {
		want[i] = wantEvent{user, domain.SessionRevoked{SessionID: id, Reason: reason}, true}
	}
	return want
}

// checkEvents fails the test unless rec recorded exactly want, in order;
// every event must have occurred at now, and none may hold any of the
// secrets (passwords, tokens, codes the test used) in any field.
func checkEvents(t *testing.T, rec *recordingEvents, now time.Time, want []wantEvent, secrets ...string) {
	t.Helper()
	got := rec.all()
	for i, g := range got {
		if !g.Event.OccurredAt.Equal(now) {
			t.Errorf("event %d %v occurred at %v, want the handler's now %v", i, g, g.Event.OccurredAt, now)
		}
		if g.Event.Payload == nil {
			t.Errorf("event %d has no payload", i)
		}
		text := fmt.Sprintf("%+v %#v", g.Event, g.Event.Payload)
		for _, secret := range secrets {
			if secret != "" && strings.Contains(text, secret) {
				t.Errorf("event %d %s holds the secret %q", i, text, secret)
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("recorded %d events %v, want %d %v", len(got), got, len(want), want)
	}
	for i, w := range want {
		g := got[i]
		if g.Event.UserID != w.user || g.Event.Payload != w.payload || g.InWork != w.inWork {
			t.Errorf("event %d = %v, want %v", i, g, w)
		}
	}
}

// countPayloads counts the recorded events by payload.
func countPayloads(rec *recordingEvents) map[domain.EventPayload]int {
	n := map[domain.EventPayload]int{}
	for _, e := range rec.all() {
		n[e.Event.Payload]++
	}
	return n
}
