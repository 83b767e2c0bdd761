package handlers_test

import (
	"context"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
)

// codeRequest is a use case that sends codes, and the event that reports a
// code sent.
type codeRequest struct {
	name   string
	handle func(deps handlers.CodeRequestDeps, email string) error
	sent   domain.EventPayload
}

var codeRequests = []codeRequest{
	{
		name: "RequestPasswordReset",
		handle: func(deps handlers.CodeRequestDeps, email string) error {
			_, err := handlers.NewRequestPasswordResetHandler(deps, handlers.RequestPasswordResetConfig{}).
				Handle(context.Background(), requestReset(email))
			return err
		},
		sent: domain.PasswordResetRequested{},
	},
	{
		name: "RequestEmailVerification",
		handle: func(deps handlers.CodeRequestDeps, email string) error {
			_, err := handlers.NewRequestEmailVerificationHandler(deps, handlers.RequestEmailVerificationConfig{}).
				Handle(context.Background(), requestVerification(email))
			return err
		},
		sent: domain.EmailVerificationRequested{},
	},
}

// TestCodeRequestEvents: a request for a code reports it, inside the unit
// of work that saves it, only when a code went out: not for an unknown
// address, an account that gets none, nor an address or a source over its
// limit.
func TestCodeRequestEvents(t *testing.T) {
	tests := []struct {
		name     string
		prepare  func(*codesFixture)
		email    string
		wantCode domain.Code
		// wantSent names, per use case, the user a code goes to; absent:
		// none goes out.
		wantSent map[string]domain.UserID
	}{
		{"Unverified", nil, "Ada@example.com", "", map[string]domain.UserID{
			"RequestPasswordReset": adaID, "RequestEmailVerification": adaID,
		}},
		{"Verified", nil, "vera@example.com", "", map[string]domain.UserID{"RequestPasswordReset": veraID}},
		{"Disabled", nil, "dora@example.com", "", nil},
		{"UnknownAddress", nil, "nobody@example.com", "", nil},
		{"AccountOverItsLimit", func(f *codesFixture) { f.accounts.limit = 0 }, "ada@example.com", "", nil},
		{"SourceOverItsLimit", func(f *codesFixture) { f.limiter.limit = 0 }, "ada@example.com", domain.CodeRateLimited, nil},
		{"InvalidEmail", nil, "ada", domain.CodeInvalid, nil},
	}
	for _, op := range codeRequests {
		for _, tt := range tests {
			t.Run(op.name+"/"+tt.name, func(t *testing.T) {
				f := newCodesFixture(t)
				if tt.prepare != nil {
					tt.prepare(f)
				}
				err := op.handle(f.requestDeps(), tt.email)
				if code := domain.ErrorCode(err); code != tt.wantCode {
					t.Fatalf("error = %v, want code %q", err, tt.wantCode)
				}
				sent := f.notifier.notifications()
				var want []wantEvent
				if user, ok := tt.wantSent[op.name]; ok {
					if len(sent) != 1 || sent[0].UserID != user || sent[0].Code == "" {
						t.Fatalf("notifications %+v, want one code to %s", sent, user)
					}
					want = []wantEvent{{user, op.sent, true}}
				} else if len(sent) != 0 {
					t.Fatalf("notifications %+v, want none", sent)
				}
				var secrets []string
				for _, n := range sent {
					secrets = append(secrets, n.Code)
				}
				checkEvents(t, f.events, testNow, want, secrets...)
			})
		}
	}
}

// TestCodeRequestEventsEachCode: each code that goes out is reported, once.
func TestCodeRequestEventsEachCode(t *testing.T) {
	for _, op := range codeRequests {
		t.Run(op.name, func(t *testing.T) {
			f := newCodesFixture(t)
			deps := f.requestDeps()
			for range 2 {
				if err := op.handle(deps, "ada@example.com"); err != nil {
					t.Fatal(err)
				}
			}
			sent := f.notifier.notifications()
			if len(sent) != 2 {
				t.Fatalf("notifications %+v, want two", sent)
			}
			checkEvents(t, f.events, testNow, []wantEvent{{adaID, op.sent, true}, {adaID, op.sent, true}}, sent[0].Code, sent[1].Code)
		})
	}
}

// TestResetPasswordEvents: a reset reports the new password, the address
// verified when it was not before, and each session it ended, inside its
// unit of work; a refused reset reports nothing.
func TestResetPasswordEvents(t *testing.T) {
	const (
		ada1 = domain.SessionID("00000000-0000-7000-8000-00000000a001")
		ada2 = domain.SessionID("00000000-0000-7000-8000-00000000a002")
		vera = domain.SessionID("00000000-0000-7000-8000-00000000e001")
	)
	tests := []struct {
		name string
		// prepare opens sessions and issues codes, and returns the
		// request's address and code.
		prepare  func(*testing.T, *codesFixture) (email, code string)
		password string
		wantCode domain.Code
		want     []wantEvent
	}{
		{"UnverifiedWithSessions", func(t *testing.T, f *codesFixture) (string, string) {
			f.openSession(t, adaID, string(ada2))
			f.openSession(t, adaID, string(ada1))
			f.openSession(t, veraID, string(vera))
			return "Ada@example.com", f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
		}, newPassword, "", append([]wantEvent{
			{adaID, domain.PasswordReset{}, true},
			{adaID, domain.EmailVerified{}, true},
		}, revokedEvents(adaID, domain.RevokedByPasswordReset, ada1, ada2)...)},
		{"UnverifiedNoSession", func(t *testing.T, f *codesFixture) (string, string) {
			return "ada@example.com", f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
		}, newPassword, "", []wantEvent{
			{adaID, domain.PasswordReset{}, true},
			{adaID, domain.EmailVerified{}, true},
		}},
		{"VerifiedWithSession", func(t *testing.T, f *codesFixture) (string, string) {
			f.openSession(t, veraID, string(vera))
			f.openSession(t, adaID, string(ada1))
			return "vera@example.com", f.issueCode(t, veraID, domain.CodePasswordReset, codeTTL)
		}, newPassword, "", append([]wantEvent{
			{veraID, domain.PasswordReset{}, true},
		}, revokedEvents(veraID, domain.RevokedByPasswordReset, vera)...)},
		{"WrongCode", func(t *testing.T, f *codesFixture) (string, string) {
			f.openSession(t, adaID, string(ada1))
			f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
			return "ada@example.com", "AAAAAAAAAAAAAAAAAAAAAA"
		}, newPassword, domain.CodeUnauthorized, nil},
		{"VerificationCode", func(t *testing.T, f *codesFixture) (string, string) {
			return "ada@example.com", f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
		}, newPassword, domain.CodeUnauthorized, nil},
		{"Expired", func(t *testing.T, f *codesFixture) (string, string) {
			code := f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
			f.clock.advance(codeTTL)
			return "ada@example.com", code
		}, newPassword, domain.CodeUnauthorized, nil},
		{"UnknownAddress", func(t *testing.T, f *codesFixture) (string, string) {
			return "nobody@example.com", f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
		}, newPassword, domain.CodeUnauthorized, nil},
		{"Disabled", func(t *testing.T, f *codesFixture) (string, string) {
			return "dora@example.com", f.issueCode(t, doraID, domain.CodePasswordReset, codeTTL)
		}, newPassword, domain.CodeUnauthorized, nil},
		{"WeakPassword", func(t *testing.T, f *codesFixture) (string, string) {
			return "ada@example.com", f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
		}, "short", domain.CodeInvalid, nil},
		{"UsedCode", func(t *testing.T, f *codesFixture) (string, string) {
			code := f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
			if _, err := f.resetHandler().Handle(context.Background(), resetWith("ada@example.com", code, newPassword)); err != nil {
				t.Fatal(err)
			}
			f.events.reset()
			return "ada@example.com", code
		}, "another long new passphrase", domain.CodeUnauthorized, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCodesFixture(t)
			email, code := tt.prepare(t, f)
			_, err := f.resetHandler().Handle(context.Background(), resetWith(email, code, tt.password))
			if got := domain.ErrorCode(err); got != tt.wantCode {
				t.Fatalf("error = %v, want code %q", err, tt.wantCode)
			}
			checkEvents(t, f.events, f.clock.Now(), tt.want, code, tt.password, newPassword, goodPassword)
		})
	}
}

// TestVerifyEmailEvents: proving an unverified address reports it, once,
// inside the unit of work; proving it again, or an address verified
// already, reports nothing, and so does a refused code.
func TestVerifyEmailEvents(t *testing.T) {
	tests := []struct {
		name     string
		prepare  func(*testing.T, *codesFixture) (email, code string)
		wantCode domain.Code
		want     []wantEvent
	}{
		{"Unverified", func(t *testing.T, f *codesFixture) (string, string) {
			return "ADA@example.com", f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
		}, "", []wantEvent{{adaID, domain.EmailVerified{}, true}}},
		{"VerifiedAgain", func(t *testing.T, f *codesFixture) (string, string) {
			first := f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
			if _, err := f.verifyHandler().Handle(context.Background(), verifyWith("ada@example.com", first)); err != nil {
				t.Fatal(err)
			}
			if len(f.events.all()) != 1 {
				t.Fatalf("events of the first verification %v, want one", f.events.all())
			}
			f.events.reset()
			f.clock.advance(time.Minute)
			return "ada@example.com", f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
		}, "", nil},
		{"AlreadyVerified", func(t *testing.T, f *codesFixture) (string, string) {
			return "vera@example.com", f.issueCode(t, veraID, domain.CodeEmailVerification, codeTTL)
		}, "", nil},
		{"WrongCode", func(t *testing.T, f *codesFixture) (string, string) {
			f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
			return "ada@example.com", "AAAAAAAAAAAAAAAAAAAAAA"
		}, domain.CodeUnauthorized, nil},
		{"ResetCode", func(t *testing.T, f *codesFixture) (string, string) {
			return "ada@example.com", f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
		}, domain.CodeUnauthorized, nil},
		{"UsedCode", func(t *testing.T, f *codesFixture) (string, string) {
			code := f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
			if _, err := f.verifyHandler().Handle(context.Background(), verifyWith("ada@example.com", code)); err != nil {
				t.Fatal(err)
			}
			f.events.reset()
			return "ada@example.com", code
		}, domain.CodeUnauthorized, nil},
		{"UnknownAddress", func(t *testing.T, f *codesFixture) (string, string) {
			return "nobody@example.com", f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
		}, domain.CodeUnauthorized, nil},
		{"Disabled", func(t *testing.T, f *codesFixture) (string, string) {
			return "dora@example.com", f.issueCode(t, doraID, domain.CodeEmailVerification, codeTTL)
		}, domain.CodeUnauthorized, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCodesFixture(t)
			email, code := tt.prepare(t, f)
			_, err := f.verifyHandler().Handle(context.Background(), verifyWith(email, code))
			if got := domain.ErrorCode(err); got != tt.wantCode {
				t.Fatalf("error = %v, want code %q", err, tt.wantCode)
			}
			checkEvents(t, f.events, f.clock.Now(), tt.want, code, goodPassword)
		})
	}
}
