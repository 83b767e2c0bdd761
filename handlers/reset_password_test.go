package handlers_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
)

const newPassword = "saffron lantern glacier otter"

func (f *codesFixture) resetDeps() handlers.ResetPasswordDeps {
	return handlers.ResetPasswordDeps{
		Work: f.work, Users: f.users, Codes: f.codes, Sessions: f.sessions, Revocations: f.revocations,
		Throttle: f.throttle, Notifier: f.notifier, Events: f.events, Policy: fakePolicy{}, Hasher: f.hasher,
		NewID: sequentialIDs(), Now: f.clock.Now, Sleep: f.sleeps.sleep,
	}
}

func (f *codesFixture) resetHandler() *handlers.ResetPasswordHandler {
	return handlers.NewResetPasswordHandler(f.resetDeps(), handlers.ResetPasswordConfig{})
}

func resetWith(email, code, password string) handlers.ResetPassword {
	return handlers.ResetPassword{Email: email, Code: code, NewPassword: password, Client: webClient}
}

// openSession opens a session for the user and returns its id.
func (f *codesFixture) openSession(t *testing.T, user domain.UserID, id string) domain.SessionID {
	t.Helper()
	s, err := domain.NewSession(domain.SessionID(id), user, webClient, testNow.Add(-time.Hour), 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, tok, err := domain.NewRefreshToken(rand.Reader, s, testNow.Add(-time.Hour), 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sessions.CreateSession(context.Background(), s, tok); err != nil {
		t.Fatal(err)
	}
	return s.ID()
}

// TestResetPasswordOK: a valid code sets the password, proves the address,
// ends every session of the account (on the revocation list too), tells
// the owner, and unlocks the account's throttle.
func TestResetPasswordOK(t *testing.T) {
	f := newCodesFixture(t)
	ada1 := f.openSession(t, adaID, "00000000-0000-7000-8000-00000000a001")
	ada2 := f.openSession(t, adaID, "00000000-0000-7000-8000-00000000a002")
	vera := f.openSession(t, veraID, "00000000-0000-7000-8000-00000000e001")
	f.throttle.failures["ada@example.com"] = 3
	code := f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)

	got, err := f.resetHandler().Handle(context.Background(), resetWith("Ada@example.com", code, newPassword))
	if err != nil || got != (handlers.Done{}) {
		t.Fatalf("Handle = %+v, %v; want Done", got, err)
	}
	u := f.user(t, adaID)
	if got, want := u.PasswordHash(), "hash:"+newPassword; got != want {
		t.Errorf("password hash = %q, want %q", got, want)
	}
	if !u.PasswordChangedAt().Equal(testNow) {
		t.Errorf("password changed at %v, want %v", u.PasswordChangedAt(), testNow)
	}
	if !u.EmailVerified() {
		t.Error("address not verified: the code proved it")
	}
	for _, id := range []domain.SessionID{ada1, ada2} {
		if s, _ := f.sessions.Stored(id); !s.Revoked() {
			t.Errorf("session %s lives on after the reset", id)
		}
	}
	if s, _ := f.sessions.Stored(vera); s.Revoked() {
		t.Error("another account's session was revoked")
	}
	revoked := f.revocations.list()
	slices.Sort(revoked)
	if want := []domain.SessionID{ada1, ada2}; !slices.Equal(revoked, want) {
		t.Errorf("revocation list = %v, want %v", revoked, want)
	}
	if n := f.throttle.failuresOf("ada@example.com"); n != 0 {
		t.Errorf("throttle failures = %d, want the account unlocked", n)
	}
	sent := f.notifier.notifications()
	if len(sent) != 1 {
		t.Fatalf("notifications = %+v, want one", sent)
	}
	want := domain.Notification{ID: sent[0].ID, Kind: domain.NotifyPasswordChanged, UserID: adaID,
		Email: "ada@example.com", ClientID: "web", OccurredAt: testNow}
	if sent[0] != want || !domain.ValidID(sent[0].ID) {
		t.Errorf("notification = %+v, want %+v with a UUID", sent[0], want)
	}
	if _, err := f.codes.Code(context.Background(), adaID, domain.CodePasswordReset); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Errorf("code after use: %v, want it consumed", err)
	}
	if f.work.calls != 1 || f.notifier.outsideWork() != 0 || f.hasher.inWork() != 0 {
		t.Errorf("%d units of work, %d notifications outside, %d hashes inside: want one unit of work holding the writes and not the hash",
			f.work.calls, f.notifier.outsideWork(), f.hasher.inWork())
	}
}

// TestResetPasswordRefusesBadCodes: whatever is wrong with the code or the
// account, the reply is the same, nothing changes, nothing is hashed and
// nobody is told.
func TestResetPasswordRefusesBadCodes(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(*testing.T, *codesFixture) (email, code string)
	}{
		{"UnknownAddress", func(t *testing.T, f *codesFixture) (string, string) {
			return "nobody@example.com", f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
		}},
		{"NoCode", func(*testing.T, *codesFixture) (string, string) { return "ada@example.com", "AAAAAAAAAAAAAAAAAAAAAA" }},
		{"WrongCode", func(t *testing.T, f *codesFixture) (string, string) {
			f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
			return "ada@example.com", "AAAAAAAAAAAAAAAAAAAAAA"
		}},
		{"OtherAccountsCode", func(t *testing.T, f *codesFixture) (string, string) {
			return "ada@example.com", f.issueCode(t, veraID, domain.CodePasswordReset, codeTTL)
		}},
		{"VerificationCode", func(t *testing.T, f *codesFixture) (string, string) {
			return "ada@example.com", f.issueCode(t, adaID, domain.CodeEmailVerification, codeTTL)
		}},
		{"Expired", func(t *testing.T, f *codesFixture) (string, string) {
			code := f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
			f.clock.advance(codeTTL)
			return "ada@example.com", code
		}},
		{"VoidAfterMaxAttempts", func(t *testing.T, f *codesFixture) (string, string) {
			code := f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
			for range domain.MaxCodeAttempts {
				if err := f.codes.CountFailedAttempt(context.Background(), adaID, domain.CodePasswordReset); err != nil {
					t.Fatal(err)
				}
			}
			return "ada@example.com", code
		}},
		{"Disabled", func(t *testing.T, f *codesFixture) (string, string) {
			return "dora@example.com", f.issueCode(t, doraID, domain.CodePasswordReset, codeTTL)
		}},
	}
	var first error
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCodesFixture(t)
			session := f.openSession(t, adaID, "00000000-0000-7000-8000-00000000a001")
			f.throttle.failures["ada@example.com"] = 3
			email, code := tt.prepare(t, f)

			_, err := f.resetHandler().Handle(context.Background(), resetWith(email, code, newPassword))
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
				if h := f.user(t, id).PasswordHash(); h != "hash:"+goodPassword {
					t.Errorf("%s's password hash = %q, want unchanged", id, h)
				}
			}
			if s, _ := f.sessions.Stored(session); s.Revoked() {
				t.Error("session revoked by a refused reset")
			}
			if n := len(f.notifier.notifications()); n != 0 {
				t.Errorf("%d notifications, want none", n)
			}
			if f.hasher.hashes != 0 {
				t.Errorf("%d passwords hashed for a refused code, want none", f.hasher.hashes)
			}
			if len(f.revocations.list()) != 0 || f.throttle.failuresOf("ada@example.com") != 3 {
				t.Error("a refused reset touched the revocation list or the throttle")
			}
		})
	}
}

// TestResetPasswordCountsWrongCodes: each wrong code is counted in a unit
// of work, and after MaxCodeAttempts of them the right code is refused too.
func TestResetPasswordCountsWrongCodes(t *testing.T) {
	f := newCodesFixture(t)
	code := f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
	h := f.resetHandler()
	for i := 1; i <= domain.MaxCodeAttempts; i++ {
		_, err := h.Handle(context.Background(), resetWith("ada@example.com", fmt.Sprintf("wrong-%d", i), newPassword))
		if domain.ErrorCode(err) != domain.CodeUnauthorized {
			t.Fatalf("wrong code %d: %v, want unauthorized", i, err)
		}
		stored, err := f.codes.Code(context.Background(), adaID, domain.CodePasswordReset)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Attempts != i || f.work.calls != i {
			t.Errorf("after wrong code %d: %d attempts counted in %d units of work, want %d in %d", i, stored.Attempts, f.work.calls, i, i)
		}
	}
	if _, err := h.Handle(context.Background(), resetWith("ada@example.com", code, newPassword)); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("right code after %d wrong ones: %v, want unauthorized", domain.MaxCodeAttempts, err)
	}
	if got := f.user(t, adaID).PasswordHash(); got != "hash:"+goodPassword {
		t.Errorf("password hash = %q, want unchanged", got)
	}
}

// TestResetPasswordCodeWorksOnce: a used code is refused.
func TestResetPasswordCodeWorksOnce(t *testing.T) {
	f := newCodesFixture(t)
	code := f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
	h := f.resetHandler()
	if _, err := h.Handle(context.Background(), resetWith("ada@example.com", code, newPassword)); err != nil {
		t.Fatal(err)
	}
	_, err := h.Handle(context.Background(), resetWith("ada@example.com", code, "another long passphrase here"))
	if domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("second use: %v, want unauthorized", err)
	}
	if got := f.user(t, adaID).PasswordHash(); got != "hash:"+newPassword {
		t.Errorf("password hash = %q, want the first reset's", got)
	}
}

// TestResetPasswordInvalid: malformed requests and passwords the policy
// refuses are answered at once, before the code is looked at, so they
// neither reveal nor spend anything.
func TestResetPasswordInvalid(t *testing.T) {
	tests := []struct {
		name      string
		cmd       handlers.ResetPassword
		wantCode  domain.Code
		wantField string
	}{
		{"InvalidEmail", resetWith("ada", "wrong", newPassword), domain.CodeInvalid, "email"},
		{"WeakPassword", resetWith("ada@example.com", "wrong", "short"), domain.CodeInvalid, "newPassword"},
		{"PasswordHoldsTheEmail", resetWith("ADA@example.com", "wrong", "my address ada@example.com"), domain.CodeInvalid, "newPassword"},
		{"EmptyCode", resetWith("ada@example.com", "", newPassword), domain.CodeInvalid, "code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCodesFixture(t)
			f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
			_, err := f.resetHandler().Handle(context.Background(), tt.cmd)
			e, ok := errors.AsType[*domain.Error](err)
			if !ok || e.Code != tt.wantCode || e.Field != tt.wantField {
				t.Fatalf("error = %#v, want %q on field %q", err, tt.wantCode, tt.wantField)
			}
			stored, err := f.codes.Code(context.Background(), adaID, domain.CodePasswordReset)
			if err != nil || stored.Attempts != 0 {
				t.Errorf("code after an invalid request: %+v, %v; want it untouched", stored, err)
			}
			if f.sleeps.total != 0 || f.hasher.hashes != 0 {
				t.Errorf("waited %v and hashed %d times, want neither", f.sleeps.total, f.hasher.hashes)
			}
		})
	}
}

// TestResetPasswordRefusalsTakeTheFloor: every refused code is answered
// Floor after Handle began, whether the account exists and whether a wrong
// code was counted; a reset that succeeds waits for nothing.
func TestResetPasswordRefusalsTakeTheFloor(t *testing.T) {
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
			code := f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
			f.clock.advance(codeTTL + time.Second)
			return code
		}, true},
		{"OK", "ada@example.com", func(t *testing.T, f *codesFixture) string {
			return f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCodesFixture(t)
			f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
			code := tt.code(t, f)
			deps := f.resetDeps()
			deps.Work = &steppingWork{clock: f.clock, takes: 40 * time.Millisecond}
			began := f.clock.Now()
			_, err := handlers.NewResetPasswordHandler(deps, handlers.ResetPasswordConfig{Floor: floor}).
				Handle(context.Background(), resetWith(tt.email, code, newPassword))
			if (err != nil) != tt.wantFloor {
				t.Fatalf("error = %v", err)
			}
			answeredAfter := f.clock.Now().Sub(began) + f.sleeps.total
			if tt.wantFloor && answeredAfter != floor {
				t.Errorf("answered after %v, want the floor %v", answeredAfter, floor)
			}
			if !tt.wantFloor && f.sleeps.total != 0 {
				t.Errorf("a successful reset waited %v", f.sleeps.total)
			}
		})
	}
}

// TestResetPasswordConcurrentUsesOfOneCode: of resets racing with one code,
// exactly one succeeds, even though all of them passed the first check.
func TestResetPasswordConcurrentUsesOfOneCode(t *testing.T) {
	const n = 8
	f := newCodesFixture(t)
	code := f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
	h := f.resetHandler()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = h.Handle(context.Background(), resetWith("ada@example.com", code, fmt.Sprintf("%s %d", newPassword, i)))
		})
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
		t.Errorf("%d resets succeeded, want exactly 1", ok)
	}
	if sent := len(f.notifier.notifications()); sent != 1 {
		t.Errorf("%d notifications, want 1", sent)
	}
}

// TestResetPasswordUnitOfWorkFails: when the writes do not commit, the
// reset fails with the store's error and nothing that follows a commit
// happens: no session goes on the revocation list, the throttle stays.
func TestResetPasswordUnitOfWorkFails(t *testing.T) {
	f := newCodesFixture(t)
	f.openSession(t, adaID, "00000000-0000-7000-8000-00000000a001")
	f.throttle.failures["ada@example.com"] = 3
	code := f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
	deps := f.resetDeps()
	deps.Work = &failingWork{}
	_, err := handlers.NewResetPasswordHandler(deps, handlers.ResetPasswordConfig{}).
		Handle(context.Background(), resetWith("ada@example.com", code, newPassword))
	if domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Fatalf("error = %v, want unavailable", err)
	}
	if got := f.revocations.list(); len(got) != 0 {
		t.Errorf("revocation list = %v, want nothing from an uncommitted reset", got)
	}
	if n := f.throttle.failuresOf("ada@example.com"); n != 3 {
		t.Errorf("throttle failures = %d, want 3: not unlocked by an uncommitted reset", n)
	}
	if f.sleeps.total != 0 {
		t.Errorf("waited %v on an outage", f.sleeps.total)
	}
}

// TestResetPasswordAfterCommitIsBestEffort: once the reset committed, a
// revocation list or throttle that is down does not undo its reply; both
// are logged, without the code or the password.
func TestResetPasswordAfterCommitIsBestEffort(t *testing.T) {
	f := newCodesFixture(t)
	f.openSession(t, adaID, "00000000-0000-7000-8000-00000000a001")
	f.revocations.down = true
	code := f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
	var logs bytes.Buffer
	deps := f.resetDeps()
	deps.Throttle = unlockFailingThrottle{f.throttle}
	deps.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	_, err := handlers.NewResetPasswordHandler(deps, handlers.ResetPasswordConfig{}).
		Handle(context.Background(), resetWith("ada@example.com", code, newPassword))
	if err != nil {
		t.Fatalf("error = %v, want the committed reset to succeed", err)
	}
	if got := f.user(t, adaID).PasswordHash(); got != "hash:"+newPassword {
		t.Errorf("password hash = %q, want the new one", got)
	}
	out := logs.String()
	for _, want := range []string{"revocation list", "throttle"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q does not mention the %s", out, want)
		}
	}
	for _, secret := range []string{code, newPassword} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds a secret: %q", out)
		}
	}
}
