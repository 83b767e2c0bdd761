package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
)

func (f *codesFixture) verifyDeps() handlers.VerifyEmailDeps {
	return handlers.VerifyEmailDeps{
		Work: f.work, Users: f.users, Codes: f.codes, Events: f.events, Now: f.clock.Now, Sleep: f.sleeps.sleep,
	}
}

func (f *codesFixture) verifyHandler() *handlers.VerifyEmailHandler {
	return handlers.NewVerifyEmailHandler(f.verifyDeps(), handlers.VerifyEmailConfig{})
}

func verifyWith(email, code string) handlers.VerifyEmail {
	return handlers.VerifyEmail{Email: email, Code: code, Client: webClient}
}

// TestVerifyEmailOK: a valid code verifies the address, in one unit of
// work that uses the code up; an address verified already stays so, and
// its valid code is used up all the same.
func TestVerifyEmailOK(t *testing.T) {
	tests := []struct {
		name string
		user domain.UserID
		// verifiedAt is when the address counts as verified afterwards.
		verifiedAt time.Time
	}{
		{"Unverified", adaID, testNow},
		{"AlreadyVerified", veraID, testNow.Add(-time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCodesFixture(t)
			code := f.issueCode(t, tt.user, domain.CodeEmailVerification, codeTTL)
			email := f.user(t, tt.user).Email().String()

			got, err := f.verifyHandler().Handle(context.Background(), verifyWith(email, code))
			if err != nil || got != (handlers.Done{}) {
				t.Fatalf("Handle = %+v, %v; want Done", got, err)
			}
			u := f.user(t, tt.user)
			if at := u.Snapshot().EmailVerifiedAt; !at.Equal(tt.verifiedAt) {
				t.Errorf("verified at %v, want %v", at, tt.verifiedAt)
			}
			if u.PasswordHash() != "hash:"+goodPassword {
				t.Errorf("password hash = %q, want unchanged", u.PasswordHash())
			}
			if _, err := f.codes.Code(context.Background(), tt.user, domain.CodeEmailVerification); domain.ErrorCode(err) != domain.CodeNotFound {
				t.Errorf("code after use: %v, want it consumed", err)
			}
			if f.work.calls != 1 {
				t.Errorf("units of work = %d, want 1", f.work.calls)
			}
		})
	}
}

// TestVerifyEmailRefusesBadCodes: whatever is wrong with the code or the
// account, the reply is the same and the address stays unverified.
func TestVerifyEmailRefusesBadCodes(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(*testing.T, *codesFixture) (email, code string)
	}{
		{"UnknownAddress", func(t *testing.T, f *codesFixture) (string, string) {
			return "nobody@example.com", f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
		}},
		{"NoCode", func(*testing.T, *codesFixture) (string, string) { return "ada@example.com", "AAAAAAAAAAAAAAAAAAAAAA" }},
		{"WrongCode", func(t *testing.T, f *codesFixture) (string, string) {
			f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
			return "ada@example.com", "AAAAAAAAAAAAAAAAAAAAAA"
		}},
		{"ResetCode", func(t *testing.T, f *codesFixture) (string, string) {
			return "ada@example.com", f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
		}},
		{"Expired", func(t *testing.T, f *codesFixture) (string, string) {
			code := f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
			f.clock.advance(codeTTL)
			return "ada@example.com", code
		}},
		{"VoidAfterMaxAttempts", func(t *testing.T, f *codesFixture) (string, string) {
			code := f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
			for range domain.MaxCodeAttempts {
				if err := f.codes.CountFailedAttempt(context.Background(), adaID, domain.CodeEmailVerification); err != nil {
					t.Fatal(err)
				}
			}
			return "ada@example.com", code
		}},
		{"Disabled", func(t *testing.T, f *codesFixture) (string, string) {
			return "dora@example.com", f.issueCode(t, doraID, domain.CodeEmailVerification, codeTTL)
		}},
	}
	var first error
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCodesFixture(t)
			email, code := tt.prepare(t, f)
			_, err := f.verifyHandler().Handle(context.Background(), verifyWith(email, code))
			e, ok := errors.AsType[*domain.Error](err)
			if !ok || e.Code != domain.CodeUnauthorized || e.Message != "invalid or expired code" {
				t.Fatalf("error = %v, want unauthorized %q", err, "invalid or expired code")
			}
			if first == nil {
				first = err
			} else if err.Error() != first.Error() {
				t.Errorf("error %q differs from %q", err, first)
			}
			for _, id := range []domain.UserID{adaID, doraID} {
				if f.user(t, id).EmailVerified() {
					t.Errorf("%s verified by a refused code", id)
				}
			}
		})
	}
}

// TestVerifyEmailCountsWrongCodes: each wrong code is counted, and after
// MaxCodeAttempts of them the right code is refused too.
func TestVerifyEmailCountsWrongCodes(t *testing.T) {
	f := newCodesFixture(t)
	code := f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
	h := f.verifyHandler()
	for i := 1; i <= domain.MaxCodeAttempts; i++ {
		if _, err := h.Handle(context.Background(), verifyWith("ada@example.com", fmt.Sprintf("wrong-%d", i))); domain.ErrorCode(err) != domain.CodeUnauthorized {
			t.Fatalf("wrong code %d: %v, want unauthorized", i, err)
		}
		stored, err := f.codes.Code(context.Background(), adaID, domain.CodeEmailVerification)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Attempts != i {
			t.Errorf("after wrong code %d: %d attempts counted", i, stored.Attempts)
		}
	}
	if _, err := h.Handle(context.Background(), verifyWith("ada@example.com", code)); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("right code after %d wrong ones: %v, want unauthorized", domain.MaxCodeAttempts, err)
	}
	if f.user(t, adaID).EmailVerified() {
		t.Error("address verified with a void code")
	}
}

// TestVerifyEmailCodeWorksOnce: a used code is refused.
func TestVerifyEmailCodeWorksOnce(t *testing.T) {
	f := newCodesFixture(t)
	code := f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
	h := f.verifyHandler()
	if _, err := h.Handle(context.Background(), verifyWith("ada@example.com", code)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(context.Background(), verifyWith("ada@example.com", code)); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("second use: %v, want unauthorized", err)
	}
}

// TestVerifyEmailInvalid: malformed requests are answered at once and
// touch no code.
func TestVerifyEmailInvalid(t *testing.T) {
	tests := []struct {
		name      string
		cmd       handlers.VerifyEmail
		wantField string
	}{
		{"InvalidEmail", verifyWith("ada", "wrong"), "email"},
		{"EmptyCode", verifyWith("ada@example.com", ""), "code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCodesFixture(t)
			f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
			_, err := f.verifyHandler().Handle(context.Background(), tt.cmd)
			if e, ok := errors.AsType[*domain.Error](err); !ok || e.Code != domain.CodeInvalid || e.Field != tt.wantField {
				t.Fatalf("error = %#v, want invalid on field %q", err, tt.wantField)
			}
			if stored, err := f.codes.Code(context.Background(), adaID, domain.CodeEmailVerification); err != nil || stored.Attempts != 0 {
				t.Errorf("code after an invalid request: %+v, %v; want it untouched", stored, err)
			}
			if f.sleeps.total != 0 {
				t.Errorf("waited %v, want an answer at once", f.sleeps.total)
			}
		})
	}
}

// TestVerifyEmailRefusalsTakeTheFloor: every refused code is answered Floor
// after Handle began; a verification that succeeds waits for nothing.
func TestVerifyEmailRefusalsTakeTheFloor(t *testing.T) {
	const floor = 200 * time.Millisecond
	tests := []struct {
		name      string
		email     string
		code      func(*testing.T, *codesFixture) string
		wantFloor bool
	}{
		{"UnknownAddress", "nobody@example.com", func(*testing.T, *codesFixture) string { return "wrong" }, true},
		{"NoCode", "vera@example.com", func(*testing.T, *codesFixture) string { return "wrong" }, true},
		{"WrongCodeCounted", "ada@example.com", func(*testing.T, *codesFixture) string { return "wrong" }, true},
		{"Expired", "ada@example.com", func(t *testing.T, f *codesFixture) string {
			code := f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
			f.clock.advance(codeTTL + time.Second)
			return code
		}, true},
		{"OK", "ada@example.com", func(t *testing.T, f *codesFixture) string {
			return f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCodesFixture(t)
			f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
			code := tt.code(t, f)
			deps := f.verifyDeps()
			deps.Work = &steppingWork{clock: f.clock, takes: 40 * time.Millisecond}
			began := f.clock.Now()
			_, err := handlers.NewVerifyEmailHandler(deps, handlers.VerifyEmailConfig{Floor: floor}).
				Handle(context.Background(), verifyWith(tt.email, code))
			if (err != nil) != tt.wantFloor {
				t.Fatalf("error = %v", err)
			}
			answeredAfter := f.clock.Now().Sub(began) + f.sleeps.total
			if tt.wantFloor && answeredAfter != floor {
				t.Errorf("answered after %v, want the floor %v", answeredAfter, floor)
			}
			if !tt.wantFloor && f.sleeps.total != 0 {
				t.Errorf("a successful verification waited %v", f.sleeps.total)
			}
		})
	}
}

// TestVerifyEmailConcurrentUsesOfOneCode: of verifications racing with one
// code, exactly one succeeds.
func TestVerifyEmailConcurrentUsesOfOneCode(t *testing.T) {
	const n = 8
	f := newCodesFixture(t)
	code := f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
	h := f.verifyHandler()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = h.Handle(context.Background(), verifyWith("ada@example.com", code)) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch domain.ErrorCode(err) {
		case "":
			ok++
		case domain.CodeUnauthorized:
		default:
			t.Errorf("error = %v, want none or unauthorized", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d verifications succeeded, want exactly 1", ok)
	}
}

// TestVerifyEmailUnitOfWorkFails: when the writes do not commit, the
// verification fails with the store's error, at once.
func TestVerifyEmailUnitOfWorkFails(t *testing.T) {
	f := newCodesFixture(t)
	code := f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
	deps := f.verifyDeps()
	deps.Work = &failingWork{}
	_, err := handlers.NewVerifyEmailHandler(deps, handlers.VerifyEmailConfig{}).Handle(context.Background(), verifyWith("ada@example.com", code))
	if domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Fatalf("error = %v, want unavailable", err)
	}
	if f.sleeps.total != 0 {
		t.Errorf("waited %v on an outage", f.sleeps.total)
	}
}
