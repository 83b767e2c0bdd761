package handlers_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/inmem"
	"github.com/authworker/authworker/seal"
	"github.com/authworker/authworker/tokens"
)

// fakeRevocations is a revocation list in memory; down makes it fail.
type fakeRevocations struct {
	mu      sync.Mutex
	revoked map[domain.SessionID]bool
	down    bool
}

func (f *fakeRevocations) Revoke(_ context.Context, ids ...domain.SessionID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return domain.Unavailable("revocation list", errors.New("down"))
	}
	if f.revoked == nil {
		f.revoked = map[domain.SessionID]bool{}
	}
	for _, id := range ids {
		f.revoked[id] = true
	}
	return nil
}

func (f *fakeRevocations) Revoked(_ context.Context, id domain.SessionID) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return false, domain.Unavailable("revocation list", errors.New("down"))
	}
	return f.revoked[id], nil
}

func (f *fakeRevocations) listed(id domain.SessionID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.revoked[id]
}

// sessionFixture is ada@example.com with a few sessions over in-memory
// stores, the real token issuer, and the session use cases built on them.
type sessionFixture struct {
	clock       *steppingClock
	users       *inmem.UserRepository
	sessions    *inmem.SessionRepository
	issuer      *tokens.Issuer
	revocations *fakeRevocations
	throttle    *fakeThrottle
	notifier    *recordingNotifier
	hasher      *fakeHasher
	work        *fakeWork
	events      *recordingEvents
	login       *handlers.LoginHandler
	refresh     *handlers.RefreshHandler
	logout      *handlers.LogoutHandler
	logoutAll   *handlers.LogoutAllHandler
	introspect  *handlers.IntrospectHandler
	change      *handlers.ChangePasswordHandler
}

func newSessionFixture(t *testing.T) *sessionFixture {
	t.Helper()
	f := &sessionFixture{
		clock:       &steppingClock{now: time.Now().UTC().Truncate(time.Second)},
		users:       inmem.NewUserRepository(),
		revocations: &fakeRevocations{},
		throttle:    newFakeThrottle(3),
		notifier:    &recordingNotifier{},
		hasher:      &fakeHasher{},
	}
	f.sessions = inmem.NewSessionRepository(f.users)
	var err error
	f.issuer, err = tokens.NewIssuer(context.Background(), inmem.NewSigningKeyRepository(), tokens.Config{
		Issuer: "https://auth.test", Audience: []string{"api"}, KeyEncryptionKey: bytes.Repeat([]byte{1}, seal.KeySize),
		Now: f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	user, err := domain.NewUser(adaID, "ada@example.com", "hash:"+goodPassword, f.clock.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.users.CreateUser(context.Background(), user); err != nil {
		t.Fatal(err)
	}
	work := &fakeWork{}
	f.work = work
	f.events = &recordingEvents{work: work}
	cfg := handlers.SessionConfig{SessionTTL: 30 * 24 * time.Hour, RefreshIdleTTL: 24 * time.Hour}
	f.login = handlers.NewLoginHandler(handlers.LoginDeps{
		Work: work, Users: f.users, Sessions: f.sessions, Hasher: f.hasher, Throttle: f.throttle, Tokens: f.issuer,
		Events: f.events, NewID: sequentialIDs(), Now: f.clock.Now, Random: rand.Reader, Sleep: (&sleepRecorder{}).sleep,
	}, handlers.LoginConfig{SessionConfig: cfg})
	f.refresh = handlers.NewRefreshHandler(handlers.RefreshDeps{
		Work: work, Sessions: f.sessions, Throttle: f.throttle, Tokens: f.issuer,
		Revocations: f.revocations, Events: f.events, Now: f.clock.Now, Random: rand.Reader,
	}, cfg)
	logoutDeps := handlers.LogoutDeps{
		Work: work, Sessions: f.sessions, Tokens: f.issuer, Revocations: f.revocations, Events: f.events, Now: f.clock.Now,
	}
	f.logout = handlers.NewLogoutHandler(logoutDeps)
	f.logoutAll = handlers.NewLogoutAllHandler(logoutDeps)
	f.introspect = handlers.NewIntrospectHandler(handlers.IntrospectDeps{
		Sessions: f.sessions, Tokens: f.issuer, Revocations: f.revocations, Now: f.clock.Now,
	})
	f.change = handlers.NewChangePasswordHandler(handlers.ChangePasswordDeps{
		Work: work, Users: f.users, Sessions: f.sessions, Tokens: f.issuer, Revocations: f.revocations,
		Hasher: f.hasher, Policy: fakePolicy{}, Throttle: f.throttle, Notifier: f.notifier,
		Events: f.events, NewID: sequentialIDs(), Now: f.clock.Now,
	})
	return f
}

// open logs ada in and returns the session's tokens.
func (f *sessionFixture) open(t *testing.T) handlers.LoginResult {
	t.Helper()
	res, err := f.login.Handle(context.Background(), login("ada@example.com", goodPassword))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *sessionFixture) refreshWith(token string) (handlers.LoginResult, error) {
	return f.refresh.Handle(context.Background(), handlers.Refresh{RefreshToken: token, Client: domain.Client{ID: "web"}})
}

func (f *sessionFixture) active(t *testing.T, token string) bool {
	t.Helper()
	res, err := f.introspect.Handle(context.Background(), handlers.Introspect{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return res.Active
}

func wantCode(t *testing.T, what string, err error, want domain.Code) {
	t.Helper()
	if got := domain.ErrorCode(err); got != want {
		t.Fatalf("%s: %v, want code %q", what, err, want)
	}
}

func TestRefreshRotates(t *testing.T) {
	f := newSessionFixture(t)
	first := f.open(t)
	f.clock.advance(time.Minute)
	next, err := f.refreshWith(first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if next.SessionID != first.SessionID || next.RefreshToken == first.RefreshToken || next.AccessToken.Token == first.AccessToken.Token {
		t.Errorf("refresh gave %+v, want the same session with new tokens", next)
	}
	if want := f.clock.Now().Add(24 * time.Hour); !next.RefreshTokenExpiresAt.Equal(want) {
		t.Errorf("new refresh token expires %v, want %v (idle expiry from now)", next.RefreshTokenExpiresAt, want)
	}
	if !f.active(t, next.AccessToken.Token) || !f.active(t, next.RefreshToken) {
		t.Error("the new tokens are not active")
	}
	if f.active(t, first.RefreshToken) {
		t.Error("the rotated refresh token is still active")
	}
	if _, err := f.refreshWith(next.RefreshToken); err != nil {
		t.Errorf("the successor does not refresh: %v", err)
	}
}

// TestRefreshReuseRevokesTheSession: a rotated token presented again is in
// two hands: the session ends, successors included, and its access tokens
// fail introspection at once.
func TestRefreshReuseRevokesTheSession(t *testing.T) {
	f := newSessionFixture(t)
	first := f.open(t)
	next, err := f.refreshWith(first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.refreshWith(first.RefreshToken)
	wantCode(t, "reuse", err, domain.CodeUnauthorized)
	if !f.revocations.listed(first.SessionID) {
		t.Error("the reused token's session is not on the revocation list")
	}
	if s, _ := f.sessions.Stored(first.SessionID); !s.Revoked() {
		t.Error("the session is not revoked in the store")
	}
	_, err = f.refreshWith(next.RefreshToken)
	wantCode(t, "successor after reuse", err, domain.CodeUnauthorized)
	if f.active(t, next.AccessToken.Token) {
		t.Error("an access token of the revoked session is still active")
	}
}

// TestConcurrentRefreshesOneWins: twenty refreshes with one token at once:
// exactly one rotates it; the others are reuse, so the session ends and
// even the winner's new refresh token stops working (we cannot tell which
// holder is legitimate).
func TestConcurrentRefreshesOneWins(t *testing.T) {
	f := newSessionFixture(t)
	first := f.open(t)
	var mu sync.Mutex
	var wins []handlers.LoginResult
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			res, err := f.refreshWith(first.RefreshToken)
			if err == nil {
				mu.Lock()
				wins = append(wins, res)
				mu.Unlock()
			} else if domain.ErrorCode(err) != domain.CodeUnauthorized {
				t.Errorf("refresh: %v, want unauthorized", err)
			}
		})
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d refreshes succeeded, want exactly 1", len(wins))
	}
	if _, err := f.refreshWith(wins[0].RefreshToken); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Errorf("the winner's successor after reuse: %v, want unauthorized", err)
	}
}

func TestRefreshRefused(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(*testing.T, *sessionFixture, handlers.LoginResult) string
	}{
		{"Malformed", func(*testing.T, *sessionFixture, handlers.LoginResult) string { return "not a token" }},
		{"Unknown", func(*testing.T, *sessionFixture, handlers.LoginResult) string {
			return "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		}},
		{"IdleExpired", func(_ *testing.T, f *sessionFixture, s handlers.LoginResult) string {
			f.clock.advance(25 * time.Hour)
			return s.RefreshToken
		}},
		{"SessionRevoked", func(t *testing.T, f *sessionFixture, s handlers.LoginResult) string {
			if _, err := f.logout.Handle(context.Background(), handlers.Logout{RefreshToken: s.RefreshToken}); err != nil {
				t.Fatal(err)
			}
			return s.RefreshToken
		}},
		{"AccountDisabled", func(t *testing.T, f *sessionFixture, s handlers.LoginResult) string {
			f.update(t, func(u *domain.User) error { u.Disable(f.clock.Now()); return nil })
			return s.RefreshToken
		}},
		{"PasswordChangedElsewhere", func(t *testing.T, f *sessionFixture, s handlers.LoginResult) string {
			f.clock.advance(time.Second)
			f.update(t, func(u *domain.User) error { return u.ChangePassword("hash:another password entirely", f.clock.Now()) })
			return s.RefreshToken
		}},
		{"AccountLocked", func(_ *testing.T, f *sessionFixture, s handlers.LoginResult) string {
			f.throttle.failures["ada@example.com"] = 100
			return s.RefreshToken
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSessionFixture(t)
			s := f.open(t)
			token := tt.prepare(t, f, s)
			_, err := f.refreshWith(token)
			wantCode(t, "refresh", err, domain.CodeUnauthorized)
		})
	}
}

func (f *sessionFixture) update(t *testing.T, fn func(*domain.User) error) {
	t.Helper()
	if err := f.users.UpdateUser(context.Background(), adaID, fn); err != nil {
		t.Fatal(err)
	}
}

func TestLogout(t *testing.T) {
	tests := []struct {
		name     string
		logout   func(handlers.LoginResult) handlers.Logout
		wantCode domain.Code
	}{
		{"ByRefreshToken", func(s handlers.LoginResult) handlers.Logout { return handlers.Logout{RefreshToken: s.RefreshToken} }, ""},
		{"ByAccessToken", func(s handlers.LoginResult) handlers.Logout { return handlers.Logout{AccessToken: s.AccessToken.Token} }, ""},
		{"Neither", func(handlers.LoginResult) handlers.Logout { return handlers.Logout{} }, domain.CodeInvalid},
		{"Both", func(s handlers.LoginResult) handlers.Logout {
			return handlers.Logout{RefreshToken: s.RefreshToken, AccessToken: s.AccessToken.Token}
		}, domain.CodeInvalid},
		{"ForgedAccessToken", func(s handlers.LoginResult) handlers.Logout {
			return handlers.Logout{AccessToken: s.AccessToken.Token + "x"}
		}, domain.CodeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSessionFixture(t)
			s := f.open(t)
			other := f.open(t)
			_, err := f.logout.Handle(context.Background(), tt.logout(s))
			wantCode(t, "logout", err, tt.wantCode)
			if tt.wantCode != "" {
				if !f.active(t, s.AccessToken.Token) {
					t.Error("a refused logout ended the session")
				}
				return
			}
			if f.active(t, s.AccessToken.Token) || f.active(t, s.RefreshToken) {
				t.Error("the session's tokens are still active after logout")
			}
			if !f.active(t, other.AccessToken.Token) {
				t.Error("logout ended another session")
			}
			if _, err := f.logout.Handle(context.Background(), tt.logout(s)); err != nil {
				t.Errorf("logging out again: %v, want done", err)
			}
		})
	}
}

func TestLogoutAll(t *testing.T) {
	f := newSessionFixture(t)
	sessions := []handlers.LoginResult{f.open(t), f.open(t), f.open(t)}
	if _, err := f.logoutAll.Handle(context.Background(), handlers.LogoutAll{AccessToken: sessions[1].AccessToken.Token}); err != nil {
		t.Fatal(err)
	}
	for i, s := range sessions {
		if f.active(t, s.AccessToken.Token) || !f.revocations.listed(s.SessionID) {
			t.Errorf("session %d still active after logout-all", i)
		}
	}
	_, err := f.logoutAll.Handle(context.Background(), handlers.LogoutAll{AccessToken: sessions[0].AccessToken.Token})
	wantCode(t, "logout-all with a revoked session's token", err, domain.CodeUnauthorized)
}

func TestIntrospect(t *testing.T) {
	f := newSessionFixture(t)
	s := f.open(t)
	res, err := f.introspect.Handle(context.Background(), handlers.Introspect{Token: s.AccessToken.Token})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Active || res.TokenType != handlers.TokenTypeAccess || res.UserID != adaID || res.SessionID != s.SessionID ||
		res.ClientID != "web" || res.Issuer != "https://auth.test" || len(res.Audience) != 1 || res.ID == "" ||
		!res.ExpiresAt.Equal(s.AccessToken.ExpiresAt) {
		t.Errorf("access token: %+v, want its claims", res)
	}
	res, err = f.introspect.Handle(context.Background(), handlers.Introspect{Token: s.RefreshToken, TokenTypeHint: handlers.TokenTypeRefresh})
	if err != nil || !res.Active || res.TokenType != handlers.TokenTypeRefresh || res.SessionID != s.SessionID {
		t.Errorf("refresh token: %+v, %v; want active", res, err)
	}
	for _, token := range []string{"", "garbage", "a.b.c", s.AccessToken.Token[:len(s.AccessToken.Token)-2]} {
		if res, err := f.introspect.Handle(context.Background(), handlers.Introspect{Token: token}); err != nil || !reflect.DeepEqual(res, handlers.IntrospectResult{}) {
			t.Errorf("introspect %q: %+v, %v; want inactive and nothing else", token, res, err)
		}
	}
	f.clock.advance(16 * time.Minute)
	if f.active(t, s.AccessToken.Token) {
		t.Error("an expired access token is active")
	}
}

// TestIntrospectFailsClosed: when revocation cannot be checked, the answer
// is UNAVAILABLE, not "active".
func TestIntrospectFailsClosed(t *testing.T) {
	f := newSessionFixture(t)
	s := f.open(t)
	f.revocations.down = true
	_, err := f.introspect.Handle(context.Background(), handlers.Introspect{Token: s.AccessToken.Token})
	wantCode(t, "introspect with the revocation list down", err, domain.CodeUnavailable)
}

func TestChangePassword(t *testing.T) {
	const newPassword = "a brand new long passphrase"
	f := newSessionFixture(t)
	current, other := f.open(t), f.open(t)
	f.clock.advance(time.Second)
	_, err := f.change.Handle(context.Background(), handlers.ChangePassword{
		AccessToken: current.AccessToken.Token, CurrentPassword: goodPassword, NewPassword: newPassword,
	})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := f.users.UserByID(context.Background(), adaID)
	if u.PasswordHash() != "hash:"+newPassword {
		t.Errorf("stored hash %q, want the new password's", u.PasswordHash())
	}
	if f.active(t, other.AccessToken.Token) || !f.revocations.listed(other.SessionID) {
		t.Error("another session survived the change")
	}
	if !f.active(t, current.AccessToken.Token) {
		t.Error("the session that changed the password ended")
	}
	f.clock.advance(time.Second)
	if _, err := f.refreshWith(current.RefreshToken); err != nil {
		t.Errorf("the session that changed the password cannot refresh: %v", err)
	}
	if len(f.notifier.sent) != 1 || f.notifier.sent[0].Kind != domain.NotifyPasswordChanged || f.notifier.sent[0].Email != "ada@example.com" {
		t.Errorf("notifications %+v, want one PASSWORD_CHANGED to ada", f.notifier.sent)
	}
}

// TestChangePasswordThrottleDownAfterVerification: Redis went down while
// the current password was checked, so the throttle cannot clear the
// attempt. The password is verified: the change goes through instead of
// failing UNAVAILABLE and making its caller's retry hash both passwords
// again.
func TestChangePasswordThrottleDownAfterVerification(t *testing.T) {
	const newPassword = "a brand new long passphrase"
	f := newSessionFixture(t)
	s := f.open(t)
	f.throttle.succeedDown = true
	if _, err := f.change.Handle(context.Background(), handlers.ChangePassword{
		AccessToken: s.AccessToken.Token, CurrentPassword: goodPassword, NewPassword: newPassword,
	}); err != nil {
		t.Fatalf("change password: %v, want it changed", err)
	}
	if u, _ := f.users.UserByID(context.Background(), adaID); u.PasswordHash() != "hash:"+newPassword {
		t.Errorf("stored hash %q, want the new password's", u.PasswordHash())
	}
}

func TestChangePasswordRefused(t *testing.T) {
	tests := []struct {
		name      string
		current   string
		next      string
		revoke    bool
		wantCode  domain.Code
		wantField string
	}{
		{"WrongCurrentPassword", "not the password at all", "a brand new long passphrase", false, domain.CodeUnauthorized, ""},
		{"WeakNewPassword", goodPassword, "short", false, domain.CodeInvalid, "newPassword"},
		{"NoCurrentPassword", "", "a brand new long passphrase", false, domain.CodeInvalid, "currentPassword"},
		{"RevokedSession", goodPassword, "a brand new long passphrase", true, domain.CodeUnauthorized, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSessionFixture(t)
			s := f.open(t)
			if tt.revoke {
				if _, err := f.logout.Handle(context.Background(), handlers.Logout{AccessToken: s.AccessToken.Token}); err != nil {
					t.Fatal(err)
				}
			}
			_, err := f.change.Handle(context.Background(), handlers.ChangePassword{
				AccessToken: s.AccessToken.Token, CurrentPassword: tt.current, NewPassword: tt.next,
			})
			wantCode(t, "change", err, tt.wantCode)
			if tt.wantField != "" {
				if e, ok := errors.AsType[*domain.Error](err); !ok || e.Field != tt.wantField {
					t.Errorf("field %+v, want %s", err, tt.wantField)
				}
			}
			if u, _ := f.users.UserByID(context.Background(), adaID); u.PasswordHash() != "hash:"+goodPassword {
				t.Error("a refused change changed the password")
			}
			if tt.name == "WrongCurrentPassword" && f.throttle.failuresOf("ada@example.com") != 1 {
				t.Errorf("throttle counted %d failures, want the wrong password counted", f.throttle.failuresOf("ada@example.com"))
			}
		})
	}
}

// TestChangePasswordRacingAnAccountChange: the account changes while the
// current password is being verified (the owner resets the password, an
// operator disables the account). The change, checked against a password
// that is no longer the account's, is refused and writes nothing: it must
// not overwrite the reset's password, nor set one on a disabled account.
func TestChangePasswordRacingAnAccountChange(t *testing.T) {
	const attackers = "the attacker's new passphrase"
	tests := []struct {
		name     string
		change   func(u *domain.User, now time.Time) error
		wantHash string
	}{
		{"PasswordReset", func(u *domain.User, now time.Time) error { return u.ChangePassword("hash:the owner's reset", now) }, "hash:the owner's reset"},
		{"Disabled", func(u *domain.User, now time.Time) error { u.Disable(now); return nil }, "hash:" + goodPassword},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSessionFixture(t)
			s := f.open(t)
			f.clock.advance(time.Second)
			f.hasher.onVerify = func() {
				f.hasher.onVerify = nil
				if err := f.users.UpdateUser(context.Background(), adaID, func(u *domain.User) error { return tt.change(u, f.clock.Now()) }); err != nil {
					t.Errorf("change the account: %v", err)
				}
			}
			_, err := f.change.Handle(context.Background(), handlers.ChangePassword{
				AccessToken: s.AccessToken.Token, CurrentPassword: goodPassword, NewPassword: attackers,
			})
			if domain.ErrorCode(err) != domain.CodeUnauthorized {
				t.Errorf("change = %v, want unauthorized", err)
			}
			if u, _ := f.users.UserByID(context.Background(), adaID); u.PasswordHash() != tt.wantHash {
				t.Errorf("stored hash %q, want %q", u.PasswordHash(), tt.wantHash)
			}
			if len(f.notifier.sent) != 0 {
				t.Errorf("notifications %+v, want none", f.notifier.sent)
			}
		})
	}
}
