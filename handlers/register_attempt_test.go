package handlers_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
)

// TestRegisterTellsTheOwner: a registration for a taken address, which the
// caller cannot tell from a new account, is told to the address's owner,
// in the unit of work that answers it. A new account, and a conflict
// revealed to a trusted caller, notify nobody.
func TestRegisterTellsTheOwner(t *testing.T) {
	const bobID = domain.UserID("00000000-0000-7000-8000-b0b000000000")
	tests := []struct {
		name       string
		reveal     bool
		email      string
		wantCode   domain.Code
		wantNotice bool
	}{
		{"Taken", false, "BOB@example.com", "", true},
		{"New", false, "ada@example.com", "", false},
		{"TakenRevealed", true, "bob@example.com", domain.CodeConflict, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			work := &fakeWork{}
			notifier := &recordingNotifier{work: work}
			h := handlers.NewRegisterHandler(handlers.RegisterDeps{
				Work: work, Users: existingUsers(), Policy: fakePolicy{}, Hasher: &fakeHasher{},
				Limiter: &fakeLimiter{limit: 100}, Notifier: notifier, Events: &recordingEvents{work: work},
				NewID: sequentialIDs(), Now: fixedClock,
			}, handlers.RegisterConfig{RevealConflict: tt.reveal})
			_, err := h.Handle(context.Background(), handlers.Register{
				Email: tt.email, Password: goodPassword, Client: domain.Client{ID: "web", IP: "192.0.2.1"},
			})
			if code := domain.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("error = %v, want code %q", err, tt.wantCode)
			}
			got := notifier.notifications()
			if !tt.wantNotice {
				if len(got) != 0 {
					t.Errorf("notifications = %+v, want none", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("notifications = %+v, want one", got)
			}
			n := got[0]
			want := domain.Notification{
				ID: n.ID, Kind: domain.NotifyRegistrationAttempt, UserID: bobID, Email: "bob@example.com",
				ClientID: "web", OccurredAt: testNow,
			}
			if n != want {
				t.Errorf("notification = %+v, want %+v", n, want)
			}
			if !domain.ValidID(n.ID) {
				t.Errorf("notification id %q is not a UUID", n.ID)
			}
			if notifier.outsideWork() != 0 {
				t.Error("notified outside the unit of work")
			}
		})
	}
}

// TestRegisterNoticesLimitedPerAddress: the owner of a taken address is
// told of registration attempts at most as often as the per-address limit
// allows, whatever sources they claim: registering someone's address time
// after time does not flood their mailbox. The caller's reply is the same
// either way.
func TestRegisterNoticesLimitedPerAddress(t *testing.T) {
	const limit = 2
	work := &fakeWork{}
	notifier := &recordingNotifier{work: work}
	h := handlers.NewRegisterHandler(handlers.RegisterDeps{
		Work: work, Users: existingUsers(), Policy: fakePolicy{}, Hasher: &fakeHasher{},
		Limiter: &fakeLimiter{limit: 100}, AccountLimiter: &fakeLimiter{limit: limit}, Notifier: notifier,
		Events: &recordingEvents{work: work}, NewID: sequentialIDs(), Now: fixedClock,
	}, handlers.RegisterConfig{})
	for i := range 5 {
		res, err := h.Handle(context.Background(), handlers.Register{
			Email: "bob@example.com", Password: goodPassword, Client: domain.Client{ID: "web", IP: fmt.Sprintf("192.0.2.%d", i+1)},
		})
		if err != nil || !domain.ValidID(string(res.UserID)) {
			t.Fatalf("registration %d: %+v, %v; want an id as for a new account", i, res, err)
		}
	}
	if got := len(notifier.notifications()); got != limit {
		t.Errorf("%d notices to the owner, want %d", got, limit)
	}
}

// TestRegisterNoticeLimitOnce: the notice budget is spent once per
// registration, however often its unit of work runs (a retry after a
// store failed), and a limiter that is down tells the owner nothing but
// fails nothing: the caller's reply is the same either way.
func TestRegisterNoticeLimitOnce(t *testing.T) {
	tests := []struct {
		name        string
		limiter     domain.RateLimiter
		wantNotices int
	}{
		{"Retried", &fakeLimiter{limit: 1}, 1},
		{"LimiterDown", failingLimiter{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			work := &twiceWork{}
			notifier := &recordingNotifier{work: &work.fakeWork}
			work.rollback = func() { notifier.sent, notifier.inWork = nil, nil } // the first attempt's notice rolls back
			h := handlers.NewRegisterHandler(handlers.RegisterDeps{
				Work: work, Users: existingUsers(), Policy: fakePolicy{}, Hasher: &fakeHasher{},
				Limiter: &fakeLimiter{limit: 100}, AccountLimiter: tt.limiter, Notifier: notifier,
				Events: &recordingEvents{work: &work.fakeWork}, NewID: sequentialIDs(), Now: fixedClock,
			}, handlers.RegisterConfig{})
			res, err := h.Handle(context.Background(), handlers.Register{
				Email: "bob@example.com", Password: goodPassword, Client: domain.Client{ID: "web", IP: "192.0.2.1"},
			})
			if err != nil || !domain.ValidID(string(res.UserID)) {
				t.Fatalf("registration: %+v, %v; want an id as for a new account", res, err)
			}
			if work.calls != 2 {
				t.Fatalf("unit of work ran %d times, want 2", work.calls)
			}
			if got := len(notifier.notifications()); got != tt.wantNotices {
				t.Errorf("%d notices, want %d", got, tt.wantNotices)
			}
		})
	}
}

// twiceWork runs fn twice, as a unit of work retried after its first
// attempt failed to commit: rollback undoes what the first recorded.
type twiceWork struct {
	fakeWork
	rollback func()
}

func (w *twiceWork) Atomically(ctx context.Context, fn func(context.Context) (any, error)) (any, error) {
	_, _ = w.fakeWork.Atomically(ctx, fn)
	w.rollback()
	return w.fakeWork.Atomically(ctx, fn)
}
