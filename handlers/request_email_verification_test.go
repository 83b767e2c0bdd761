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

func requestVerification(email string) handlers.RequestEmailVerification {
	return handlers.RequestEmailVerification{Email: email, Client: webClient}
}

// TestRequestEmailVerification: the reply is the same whether or not a
// code went out, and a code goes out only to an active account whose
// address is not verified yet, under the address's limit.
func TestRequestEmailVerification(t *testing.T) {
	tests := []struct {
		name     string
		prepare  func(*codesFixture)
		email    string
		wantSent bool
	}{
		{"Sent", nil, "ADA@example.com", true},
		{"AlreadyVerified", nil, "vera@example.com", false},
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
			h := handlers.NewRequestEmailVerificationHandler(f.requestDeps(), handlers.RequestEmailVerificationConfig{})
			got, err := h.Handle(context.Background(), requestVerification(tt.email))
			if err != nil || got != (handlers.Done{}) {
				t.Fatalf("Handle = %+v, %v; want Done whether or not a code went out", got, err)
			}
			if sent := len(f.notifier.notifications()); sent != map[bool]int{false: 0, true: 1}[tt.wantSent] {
				t.Errorf("%d notifications, want sent=%v", sent, tt.wantSent)
			}
			for _, id := range []domain.UserID{adaID, veraID, doraID} {
				_, err := f.codes.Code(context.Background(), id, domain.CodeEmailVerification)
				if stored := err == nil; stored != (tt.wantSent && id == adaID) {
					t.Errorf("%s has a stored code: %v, want only ada when sent", id, stored)
				}
			}
			email, _ := domain.ParseEmail(tt.email)
			if n := f.accounts.sources["account:"+email.String()]; n != 1 {
				t.Errorf("account limiter counted %q %d times, want 1", "account:"+email, n)
			}
		})
	}
}

// TestRequestEmailVerificationSendsTheCode: the notification carries the
// code, the store only its hash; a reset code of the account stays.
func TestRequestEmailVerificationSendsTheCode(t *testing.T) {
	f := newCodesFixture(t)
	reset := f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
	h := handlers.NewRequestEmailVerificationHandler(f.requestDeps(), handlers.RequestEmailVerificationConfig{})
	if _, err := h.Handle(context.Background(), requestVerification("ada@example.com")); err != nil {
		t.Fatal(err)
	}
	sent := f.notifier.notifications()
	if len(sent) != 1 {
		t.Fatalf("notifications = %+v, want one", sent)
	}
	checkCodeNotice(t, f, sent[0], adaID, domain.NotifyEmailVerification, domain.CodeEmailVerification, handlers.DefaultVerificationCodeTTL)
	stored, err := f.codes.Code(context.Background(), adaID, domain.CodePasswordReset)
	if err != nil || !bytes.Equal(stored.Hash, domain.HashCode(reset)) {
		t.Errorf("reset code after a verification request: %v, want it kept", err)
	}
}

func TestRequestEmailVerificationRefused(t *testing.T) {
	tests := []struct {
		name      string
		prepare   func(*codesFixture, *handlers.CodeRequestDeps)
		email     string
		wantCode  domain.Code
		wantField string
	}{
		{"InvalidEmail", nil, "ada@", domain.CodeInvalid, "email"},
		{"SourceOverItsLimit", func(f *codesFixture, _ *handlers.CodeRequestDeps) { f.limiter.limit = 0 }, "ada@example.com", domain.CodeRateLimited, ""},
		{"UnitOfWorkFails", func(_ *codesFixture, d *handlers.CodeRequestDeps) { d.Work = &failingWork{} }, "ada@example.com", domain.CodeUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCodesFixture(t)
			deps := f.requestDeps()
			if tt.prepare != nil {
				tt.prepare(f, &deps)
			}
			_, err := handlers.NewRequestEmailVerificationHandler(deps, handlers.RequestEmailVerificationConfig{}).
				Handle(context.Background(), requestVerification(tt.email))
			e, ok := errors.AsType[*domain.Error](err)
			if !ok || e.Code != tt.wantCode || e.Field != tt.wantField {
				t.Fatalf("error = %v, want %q on field %q", err, tt.wantCode, tt.wantField)
			}
			if tt.wantCode == domain.CodeRateLimited && e.RetryAfter <= 0 {
				t.Errorf("RetryAfter = %v, want positive", e.RetryAfter)
			}
		})
	}
}

// TestRequestEmailVerificationTakesTheFloor: whether a code goes out or
// not, and why not, the reply comes Floor after Handle began.
func TestRequestEmailVerificationTakesTheFloor(t *testing.T) {
	const floor = 200 * time.Millisecond
	tests := []struct {
		name    string
		prepare func(*codesFixture)
		email   string
	}{
		{"Sent", nil, "ada@example.com"},
		{"AlreadyVerified", nil, "vera@example.com"},
		{"UnknownAddress", nil, "nobody@example.com"},
		{"AccountOverItsLimit", func(f *codesFixture) { f.accounts.limit = 0 }, "ada@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCodesFixture(t)
			if tt.prepare != nil {
				tt.prepare(f)
			}
			deps := f.requestDeps()
			deps.Work = &steppingWork{clock: f.clock, takes: 40 * time.Millisecond}
			_, err := handlers.NewRequestEmailVerificationHandler(deps, handlers.RequestEmailVerificationConfig{Floor: floor}).
				Handle(context.Background(), requestVerification(tt.email))
			if err != nil {
				t.Fatal(err)
			}
			if answeredAfter := f.clock.Now().Sub(testNow) + f.sleeps.total; answeredAfter != floor {
				t.Errorf("answered after %v, want the floor %v", answeredAfter, floor)
			}
		})
	}
}
