package handlers_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
)

func requestReset(email string) handlers.RequestPasswordReset {
	return handlers.RequestPasswordReset{Email: email, Client: webClient}
}

// TestRequestPasswordReset: the reply is the same whether or not a code
// went out, and a code goes out only to an active account under its limit.
func TestRequestPasswordReset(t *testing.T) {
	tests := []struct {
		name     string
		prepare  func(*codesFixture)
		email    string
		wantSent bool
	}{
		{"Sent", nil, "Ada@Example.com", true},
		{"UnknownAddress", nil, "nobody@example.com", false},
		{"Disabled", nil, "dora@example.com", false},
		{"AccountOverItsLimit", func(f *codesFixture) { f.accounts.limit = 0 }, "ada@example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCodesFixture(t)
			if tt.prepare != nil {
				tt.prepare(f)
			}
			h := handlers.NewRequestPasswordResetHandler(f.requestDeps(), handlers.RequestPasswordResetConfig{})
			got, err := h.Handle(context.Background(), requestReset(tt.email))
			if err != nil || got != (handlers.Done{}) {
				t.Fatalf("Handle = %+v, %v; want Done whether or not a code went out", got, err)
			}
			if sent := len(f.notifier.notifications()); sent != map[bool]int{false: 0, true: 1}[tt.wantSent] {
				t.Errorf("%d notifications, want sent=%v", sent, tt.wantSent)
			}
			if _, err := f.codes.Code(context.Background(), adaID, domain.CodePasswordReset); (err == nil) != tt.wantSent {
				t.Errorf("ada's stored code: %v, want stored=%v", err, tt.wantSent)
			}
			email, _ := domain.ParseEmail(tt.email)
			if n := f.accounts.sources["account:"+email.String()]; n != 1 {
				t.Errorf("account limiter counted %q %d times, want 1 (keys: %v)", "account:"+email, n, f.accounts.sources)
			}
			if n := f.limiter.sources["ip:192.0.2.1"]; n != 1 {
				t.Errorf("source limiter counted %d requests, want 1", n)
			}
		})
	}
}

// TestRequestPasswordResetSendsTheCode: the notification carries the code,
// and the store only its hash, in one unit of work.
func TestRequestPasswordResetSendsTheCode(t *testing.T) {
	f := newCodesFixture(t)
	h := handlers.NewRequestPasswordResetHandler(f.requestDeps(), handlers.RequestPasswordResetConfig{})
	if _, err := h.Handle(context.Background(), requestReset("ada@example.com")); err != nil {
		t.Fatal(err)
	}
	sent := f.notifier.notifications()
	if len(sent) != 1 {
		t.Fatalf("notifications = %+v, want one", sent)
	}
	checkCodeNotice(t, f, sent[0], adaID, domain.NotifyPasswordReset, domain.CodePasswordReset, handlers.DefaultResetCodeTTL)
}

// checkCodeNotice checks a notification carrying a code for user, and the
// code stored for it.
func checkCodeNotice(t *testing.T, f *codesFixture, n domain.Notification, user domain.UserID, kind domain.NotificationKind, purpose domain.CodePurpose, ttl time.Duration) {
	t.Helper()
	owner := f.user(t, user)
	want := domain.Notification{
		ID: n.ID, Kind: kind, UserID: user, Email: owner.Email(), ClientID: "web",
		Code: n.Code, ExpiresAt: testNow.Add(ttl), OccurredAt: testNow,
	}
	if n != want {
		t.Errorf("notification = %+v, want %+v", n, want)
	}
	if !domain.ValidID(n.ID) {
		t.Errorf("notification id %q is not a UUID", n.ID)
	}
	if len(n.Code) < 22 {
		t.Errorf("code %q is shorter than 128 bits in base64", n.Code)
	}
	stored, err := f.codes.Code(context.Background(), user, purpose)
	if err != nil {
		t.Fatalf("stored code: %v", err)
	}
	if !bytes.Equal(stored.Hash, domain.HashCode(n.Code)) {
		t.Error("stored hash is not the hash of the code sent")
	}
	if bytes.Contains(stored.Hash, []byte(n.Code)) {
		t.Error("code stored in the clear")
	}
	if !stored.ExpiresAt.Equal(testNow.Add(ttl)) {
		t.Errorf("stored code expires %v, want %v", stored.ExpiresAt, testNow.Add(ttl))
	}
	if f.work.calls != 1 || f.notifier.outsideWork() != 0 {
		t.Errorf("%d units of work, %d notifications outside one: want the code saved and sent in one", f.work.calls, f.notifier.outsideWork())
	}
}

// TestRequestPasswordResetReplacesTheCode: a second request replaces the
// first code, which no longer works.
func TestRequestPasswordResetReplacesTheCode(t *testing.T) {
	f := newCodesFixture(t)
	h := handlers.NewRequestPasswordResetHandler(f.requestDeps(), handlers.RequestPasswordResetConfig{CodeTTL: time.Hour})
	for range 2 {
		if _, err := h.Handle(context.Background(), requestReset("ada@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	sent := f.notifier.notifications()
	if len(sent) != 2 || sent[0].Code == sent[1].Code || sent[0].ID == sent[1].ID {
		t.Fatalf("notifications = %+v, want two with different codes and ids", sent)
	}
	stored, err := f.codes.Code(context.Background(), adaID, domain.CodePasswordReset)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored.Hash, domain.HashCode(sent[1].Code)) {
		t.Error("stored code is not the second one")
	}
	if want := testNow.Add(time.Hour); !sent[1].ExpiresAt.Equal(want) || !stored.ExpiresAt.Equal(want) {
		t.Errorf("expiry %v (sent), %v (stored); want the configured %v", sent[1].ExpiresAt, stored.ExpiresAt, want)
	}
}

func TestRequestPasswordResetRefused(t *testing.T) {
	tests := []struct {
		name      string
		prepare   func(*codesFixture, *handlers.CodeRequestDeps)
		email     string
		wantCode  domain.Code
		wantField string
	}{
		{"InvalidEmail", nil, "ada", domain.CodeInvalid, "email"},
		{"SourceOverItsLimit", func(f *codesFixture, _ *handlers.CodeRequestDeps) { f.limiter.limit = 0 }, "ada@example.com", domain.CodeRateLimited, ""},
		{"SourceLimiterDown", func(_ *codesFixture, d *handlers.CodeRequestDeps) { d.Limiter = failingLimiter{} }, "ada@example.com", domain.CodeUnavailable, ""},
		{"AccountLimiterDown", func(_ *codesFixture, d *handlers.CodeRequestDeps) { d.AccountLimiter = failingLimiter{} }, "ada@example.com", domain.CodeUnavailable, ""},
		{"UserStoreDown", func(_ *codesFixture, d *handlers.CodeRequestDeps) { d.Users = failingUsers{} }, "ada@example.com", domain.CodeUnavailable, ""},
		{"UnitOfWorkFails", func(_ *codesFixture, d *handlers.CodeRequestDeps) { d.Work = &failingWork{} }, "ada@example.com", domain.CodeUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCodesFixture(t)
			deps := f.requestDeps()
			if tt.prepare != nil {
				tt.prepare(f, &deps)
			}
			_, err := handlers.NewRequestPasswordResetHandler(deps, handlers.RequestPasswordResetConfig{}).Handle(context.Background(), requestReset(tt.email))
			e, ok := errors.AsType[*domain.Error](err)
			if !ok || e.Code != tt.wantCode || e.Field != tt.wantField {
				t.Fatalf("error = %v, want %q on field %q", err, tt.wantCode, tt.wantField)
			}
			if tt.wantCode == domain.CodeRateLimited {
				if e.RetryAfter <= 0 {
					t.Errorf("RetryAfter = %v, want positive", e.RetryAfter)
				}
				if n := len(f.notifier.notifications()); n != 0 {
					t.Errorf("%d notifications, want none", n)
				}
			}
		})
	}
}

// TestRequestPasswordResetTakesTheFloor: whether a code goes out or not,
// the reply comes Floor after Handle began, so its timing tells nothing
// about the account. Refusals that depend only on the request or its
// source answer at once.
func TestRequestPasswordResetTakesTheFloor(t *testing.T) {
	const floor = 200 * time.Millisecond
	tests := []struct {
		name      string
		prepare   func(*codesFixture)
		email     string
		wantFloor bool
	}{
		{"Sent", nil, "ada@example.com", true},
		{"UnknownAddress", nil, "nobody@example.com", true},
		{"Disabled", nil, "dora@example.com", true},
		{"AccountOverItsLimit", func(f *codesFixture) { f.accounts.limit = 0 }, "ada@example.com", true},
		{"InvalidEmail", nil, "ada", false},
		{"SourceOverItsLimit", func(f *codesFixture) { f.limiter.limit = 0 }, "ada@example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCodesFixture(t)
			if tt.prepare != nil {
				tt.prepare(f)
			}
			deps := f.requestDeps()
			work := &steppingWork{clock: f.clock, takes: 40 * time.Millisecond}
			deps.Work = work
			_, err := handlers.NewRequestPasswordResetHandler(deps, handlers.RequestPasswordResetConfig{Floor: floor}).
				Handle(context.Background(), requestReset(tt.email))
			if (err == nil) != tt.wantFloor {
				t.Fatalf("error = %v", err)
			}
			// One unit of work (which stores the reply) before the wait on
			// every path that waits, a code sent or not: what the reply's
			// time could tell otherwise.
			if tt.wantFloor && (work.calls != 1 || f.sleeps.total != floor-work.takes) {
				t.Errorf("%d units of work, then a wait of %v; want one, then %v", work.calls, f.sleeps.total, floor-work.takes)
			}
			answeredAfter := f.clock.Now().Sub(testNow) + f.sleeps.total
			if tt.wantFloor && answeredAfter != floor {
				t.Errorf("answered after %v, want the floor %v", answeredAfter, floor)
			}
			if !tt.wantFloor && f.sleeps.total != 0 {
				t.Errorf("a refusal that tells nothing of the account waited %v", f.sleeps.total)
			}
		})
	}
}

// TestRequestPasswordResetDefaultFloor: without a configured floor, the
// reply waits DefaultCodeFloor.
func TestRequestPasswordResetDefaultFloor(t *testing.T) {
	f := newCodesFixture(t)
	h := handlers.NewRequestPasswordResetHandler(f.requestDeps(), handlers.RequestPasswordResetConfig{})
	if _, err := h.Handle(context.Background(), requestReset("nobody@example.com")); err != nil {
		t.Fatal(err)
	}
	if f.sleeps.total != handlers.DefaultCodeFloor {
		t.Errorf("waited %v, want DefaultCodeFloor %v", f.sleeps.total, handlers.DefaultCodeFloor)
	}
}
