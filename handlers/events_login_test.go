package handlers_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
)

// TestRegisterEvents: a new account is reported with its normalised
// address and id, inside the unit of work that creates it; a registration
// that creates no account reports nothing, whether it is refused or
// answered as if it had created one.
func TestRegisterEvents(t *testing.T) {
	tests := []struct {
		name     string
		reveal   bool
		limit    int
		users    func() domain.UserRepository
		email    string
		password string
		wantCode domain.Code
		wantNew  bool
	}{
		{"New", false, 100, existingUsers, "Ada@Example.COM", goodPassword, "", true},
		{"NewRevealing", true, 100, existingUsers, " ada@example.com ", goodPassword, "", true},
		{"TakenHidden", false, 100, existingUsers, "BOB@example.com", goodPassword, "", false},
		{"TakenRevealed", true, 100, existingUsers, "bob@example.com", goodPassword, domain.CodeConflict, false},
		{"RateLimited", false, 0, existingUsers, "ada@example.com", goodPassword, domain.CodeRateLimited, false},
		{"InvalidEmail", false, 100, existingUsers, "ada", goodPassword, domain.CodeInvalid, false},
		{"WeakPassword", false, 100, existingUsers, "ada@example.com", "short", domain.CodeInvalid, false},
		{"StoreDown", false, 100, func() domain.UserRepository { return failingUsers{} }, "ada@example.com", goodPassword, domain.CodeUnavailable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			work := &fakeWork{}
			events := &recordingEvents{work: work}
			users := tt.users()
			h := handlers.NewRegisterHandler(handlers.RegisterDeps{
				Work: work, Users: users, Policy: fakePolicy{}, Hasher: &fakeHasher{}, Limiter: &fakeLimiter{limit: tt.limit},
				Notifier: &recordingNotifier{work: work}, Events: events, NewID: sequentialIDs(), Now: fixedClock,
			}, handlers.RegisterConfig{RevealConflict: tt.reveal})
			got, err := h.Handle(context.Background(), handlers.Register{
				Email: tt.email, Password: tt.password, Client: domain.Client{ID: "web", IP: "192.0.2.1"},
			})
			if code := domain.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("error = %v, want code %q", err, tt.wantCode)
			}
			var want []wantEvent
			if tt.wantNew {
				stored, err := users.UserByEmail(context.Background(), "ada@example.com")
				if err != nil {
					t.Fatalf("registered user not stored: %v", err)
				}
				if stored.ID() != got.UserID {
					t.Fatalf("stored id %q, returned %q", stored.ID(), got.UserID)
				}
				want = []wantEvent{{got.UserID, domain.UserRegistered{Email: "ada@example.com"}, true}}
			}
			checkEvents(t, events, testNow, want, tt.password)
		})
	}
}

// handlerWith returns a LoginHandler over the fixture's stores and fakes,
// with cfg.
func (f *loginFixture) handlerWith(cfg handlers.LoginConfig) *handlers.LoginHandler {
	return handlers.NewLoginHandler(handlers.LoginDeps{
		Work: f.work, Users: f.users, Sessions: f.sessions, Hasher: f.hasher, Throttle: f.throttle,
		Tokens: fakeIssuer{now: fixedClock}, Events: f.events, NewID: sequentialIDs(), Now: fixedClock,
		Random: bytes.NewReader(bytes.Repeat([]byte{42}, 1024)), Sleep: f.sleeps.sleep,
	}, cfg)
}

// TestLoginEvents: a login that opens a session reports it inside the unit
// of work; every refusal of the credentials reports why, naming the account
// when there is one; a refusal whose attempt locked the account reports the
// lock too, unless no account is concerned; and a login refused before the
// credentials are looked at reports nothing.
func TestLoginEvents(t *testing.T) {
	const (
		olgaID        = domain.UserID("00000000-0000-7000-8000-000000000019")
		ursulaID      = domain.UserID("00000000-0000-7000-8000-0000000000e0")
		wrongPassword = "wrong password, long enough"
	)
	failed := func(user domain.UserID, reason domain.LoginFailureReason) wantEvent {
		return wantEvent{user, domain.LoginFailed{Reason: reason}, false}
	}
	locked := func(user domain.UserID, scope domain.LockScope) wantEvent {
		return wantEvent{user, domain.AccountLocked{Scope: scope}, false}
	}
	// failuresBefore sets the account's failures so that the next attempt
	// reaches the limit, and the scope of the lock it sets.
	failuresBefore := func(email domain.Email, scope domain.LockScope) func(*loginFixture) {
		return func(f *loginFixture) {
			f.throttle.failures[email] = f.throttle.lockAfter - 1
			f.throttle.lockScope = scope
		}
	}
	verifyAda := func(f *loginFixture) {
		if err := f.users.UpdateUser(context.Background(), adaID, func(u *domain.User) error {
			u.VerifyEmail(testNow)
			return nil
		}); err != nil {
			panic(err)
		}
	}
	tests := []struct {
		name     string
		prepare  func(*loginFixture)
		require  bool // RequireVerifiedEmail
		email    string
		password string
		wantCode domain.Code
		// want are the events expected; a successful login's event is
		// added by the test, since it names the new session.
		want []wantEvent
	}{
		{"OK", nil, false, "ADA@example.com", goodPassword, "", nil},
		{"OKRehash", nil, false, "olga@example.com", goodPassword, "", nil},
		{"OKWhenTheAttemptWouldHaveLocked", failuresBefore("ada@example.com", domain.LockAll), false, "ada@example.com", goodPassword, "", nil},
		{"OKVerifiedRequired", verifyAda, true, "ada@example.com", goodPassword, "", nil},
		{"UnknownAccount", nil, false, "nobody@example.com", goodPassword, domain.CodeUnauthorized,
			[]wantEvent{failed("", domain.LoginFailedUnknownAccount)}},
		{"UnknownAccountLockedNow", failuresBefore("nobody@example.com", domain.LockAll), false, "nobody@example.com", goodPassword, domain.CodeUnauthorized,
			[]wantEvent{failed("", domain.LoginFailedUnknownAccount)}},
		{"UnknownAccountLocked", func(f *loginFixture) { f.throttle.failures["nobody@example.com"] = 3 }, false, "nobody@example.com", goodPassword, domain.CodeUnauthorized,
			[]wantEvent{failed("", domain.LoginFailedUnknownAccount)}},
		{"WrongPassword", nil, false, "ada@example.com", wrongPassword, domain.CodeUnauthorized,
			[]wantEvent{failed(adaID, domain.LoginFailedBadCredentials)}},
		{"WrongPasswordLocksAll", failuresBefore("ada@example.com", domain.LockAll), false, "ada@example.com", wrongPassword, domain.CodeUnauthorized,
			[]wantEvent{failed(adaID, domain.LoginFailedBadCredentials), locked(adaID, domain.LockAll)}},
		{"WrongPasswordLocksUnfamiliarSources", failuresBefore("ada@example.com", domain.LockUnfamiliarSources), false, "ada@example.com", wrongPassword, domain.CodeUnauthorized,
			[]wantEvent{failed(adaID, domain.LoginFailedBadCredentials), locked(adaID, domain.LockUnfamiliarSources)}},
		{"WrongPasswordLocksSource", failuresBefore("ada@example.com", domain.LockSource), false, "ada@example.com", wrongPassword, domain.CodeUnauthorized,
			[]wantEvent{failed(adaID, domain.LoginFailedBadCredentials), locked(adaID, domain.LockSource)}},
		{"WrongPasswordSetsNoLock", failuresBefore("ada@example.com", ""), false, "ada@example.com", wrongPassword, domain.CodeUnauthorized,
			[]wantEvent{failed(adaID, domain.LoginFailedBadCredentials)}},
		{"Locked", func(f *loginFixture) { f.throttle.failures["ada@example.com"] = 3 }, false, "ada@example.com", goodPassword, domain.CodeUnauthorized,
			[]wantEvent{failed(adaID, domain.LoginFailedLocked)}},
		{"Disabled", nil, false, "dora@example.com", goodPassword, domain.CodeUnauthorized,
			[]wantEvent{failed(doraID, domain.LoginFailedDisabled)}},
		{"UnreadableHash", func(f *loginFixture) {
			user, err := domain.NewUser(ursulaID, "ursula@example.com", "garbage", testNow)
			if err != nil {
				panic(err)
			}
			if err := f.users.CreateUser(context.Background(), user); err != nil {
				panic(err)
			}
		}, false, "ursula@example.com", goodPassword, domain.CodeUnauthorized,
			[]wantEvent{failed(ursulaID, domain.LoginFailedBadCredentials)}},
		{"DisabledLocksNow", failuresBefore("dora@example.com", domain.LockUnfamiliarSources), false, "dora@example.com", goodPassword, domain.CodeUnauthorized,
			[]wantEvent{failed(doraID, domain.LoginFailedDisabled), locked(doraID, domain.LockUnfamiliarSources)}},
		{"EmailNotVerified", nil, true, "ada@example.com", goodPassword, domain.CodeUnauthorized,
			[]wantEvent{failed(adaID, domain.LoginFailedEmailNotVerified)}},
		{"EmailNotVerifiedWhenTheAttemptWouldHaveLocked", failuresBefore("ada@example.com", domain.LockAll), true, "ada@example.com", goodPassword, domain.CodeUnauthorized,
			[]wantEvent{failed(adaID, domain.LoginFailedEmailNotVerified)}},
		{"EmailNotVerifiedWrongPassword", nil, true, "ada@example.com", wrongPassword, domain.CodeUnauthorized,
			[]wantEvent{failed(adaID, domain.LoginFailedBadCredentials)}},
		{"SourceRateLimited", func(f *loginFixture) { f.throttle.sources["ip:192.0.2.1"] = 100 }, false, "ada@example.com", goodPassword, domain.CodeRateLimited, nil},
		{"SourceRateLimitedWrongPassword", func(f *loginFixture) { f.throttle.sources["ip:192.0.2.1"] = 100 }, false, "ada@example.com", wrongPassword, domain.CodeRateLimited, nil},
		{"SourceRateLimitedUnknownAccount", func(f *loginFixture) { f.throttle.sources["ip:192.0.2.1"] = 100 }, false, "nobody@example.com", goodPassword, domain.CodeRateLimited, nil},
		{"ThrottleDown", func(f *loginFixture) { f.throttle.down = true }, false, "ada@example.com", goodPassword, domain.CodeUnavailable, nil},
		{"InvalidEmail", nil, false, "ada", goodPassword, domain.CodeInvalid, nil},
		{"EmptyPassword", nil, false, "ada@example.com", "", domain.CodeInvalid, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLoginFixture(t)
			if tt.prepare != nil {
				tt.prepare(f)
			}
			h := f.handlerWith(handlers.LoginConfig{RequireVerifiedEmail: tt.require})
			got, err := h.Handle(context.Background(), login(tt.email, tt.password))
			if code := domain.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("error = %v, want code %q", err, tt.wantCode)
			}
			want := tt.want
			secrets := []string{goodPassword, wrongPassword}
			if tt.wantCode == "" {
				if got.SessionID == "" || got.UserID == "" {
					t.Fatalf("result %+v, want a session", got)
				}
				if _, ok := f.sessions.Stored(got.SessionID); !ok {
					t.Fatal("session not stored")
				}
				wantUser := adaID
				if tt.email == "olga@example.com" {
					wantUser = olgaID
				}
				if got.UserID != wantUser {
					t.Fatalf("user %q, want %q", got.UserID, wantUser)
				}
				want = []wantEvent{{wantUser, domain.LoginSucceeded{SessionID: got.SessionID}, true}}
				secrets = append(secrets, got.RefreshToken, got.AccessToken.Token)
			}
			checkEvents(t, f.events, testNow, want, secrets...)
		})
	}
}

// TestLoginEventsOfRepeatedFailures: the failures that lock an account
// report each failure, and the lock once, with the attempt that set it;
// the attempts refused while it is locked report LOCKED.
func TestLoginEventsOfRepeatedFailures(t *testing.T) {
	const wrongPassword = "wrong password, long enough"
	f := newLoginFixture(t)
	f.throttle.lockScope = domain.LockUnfamiliarSources
	for range 3 {
		if _, err := f.handler.Handle(context.Background(), login("ada@example.com", wrongPassword)); domain.ErrorCode(err) != domain.CodeUnauthorized {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if _, err := f.handler.Handle(context.Background(), login("ada@example.com", goodPassword)); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("right password on a locked account: %v, want unauthorized", err)
	}
	bad := wantEvent{adaID, domain.LoginFailed{Reason: domain.LoginFailedBadCredentials}, false}
	checkEvents(t, f.events, testNow, []wantEvent{
		bad, bad, bad,
		{adaID, domain.AccountLocked{Scope: domain.LockUnfamiliarSources}, false},
		{adaID, domain.LoginFailed{Reason: domain.LoginFailedLocked}, false},
	}, goodPassword, wrongPassword)
}
