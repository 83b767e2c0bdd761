package handlers_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/inmem"
)

// sessionSecrets are the secrets of sessions: their tokens, and the
// passwords the session tests use.
func sessionSecrets(sessions ...handlers.LoginResult) []string {
	secrets := []string{goodPassword}
	for _, s := range sessions {
		secrets = append(secrets, s.RefreshToken, s.AccessToken.Token)
	}
	return secrets
}

// TestRefreshEvents: a rotation reports the session refreshed, inside the
// unit of work; a rotated token presented again reports the reuse every
// time and the revocation the first time only; a token that refreshes
// nothing reports nothing.
func TestRefreshEvents(t *testing.T) {
	tests := []struct {
		name string
		// run opens sessions, forgets their events, and does the refresh
		// under test; it returns the events expected and the secrets
		// involved.
		run func(t *testing.T, f *sessionFixture) ([]wantEvent, []string)
	}{
		{"Rotates", func(t *testing.T, f *sessionFixture) ([]wantEvent, []string) {
			first := f.open(t)
			f.events.reset()
			f.clock.advance(time.Minute)
			next, err := f.refreshWith(first.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			return []wantEvent{{adaID, domain.SessionRefreshed{SessionID: first.SessionID}, true}}, sessionSecrets(first, next)
		}},
		{"RotatesTheSuccessor", func(t *testing.T, f *sessionFixture) ([]wantEvent, []string) {
			first := f.open(t)
			next, err := f.refreshWith(first.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			f.events.reset()
			f.clock.advance(time.Minute)
			last, err := f.refreshWith(next.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			return []wantEvent{{adaID, domain.SessionRefreshed{SessionID: first.SessionID}, true}}, sessionSecrets(first, next, last)
		}},
		{"Reuse", func(t *testing.T, f *sessionFixture) ([]wantEvent, []string) {
			first := f.open(t)
			next, err := f.refreshWith(first.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			f.events.reset()
			f.clock.advance(time.Minute)
			_, err = f.refreshWith(first.RefreshToken)
			wantCode(t, "reuse", err, domain.CodeUnauthorized)
			return []wantEvent{
				{adaID, domain.RefreshTokenReuseDetected{SessionID: first.SessionID}, true},
				{adaID, domain.SessionRevoked{SessionID: first.SessionID, Reason: domain.RevokedByReuse}, true},
			}, sessionSecrets(first, next)
		}},
		{"ReuseAgain", func(t *testing.T, f *sessionFixture) ([]wantEvent, []string) {
			first := f.open(t)
			next, err := f.refreshWith(first.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.refreshWith(first.RefreshToken)
			wantCode(t, "reuse", err, domain.CodeUnauthorized)
			f.events.reset()
			f.clock.advance(time.Minute)
			_, err = f.refreshWith(first.RefreshToken)
			wantCode(t, "reuse again", err, domain.CodeUnauthorized)
			return []wantEvent{
				{adaID, domain.RefreshTokenReuseDetected{SessionID: first.SessionID}, true},
			}, sessionSecrets(first, next)
		}},
		{"ReuseOfALoggedOutSession", func(t *testing.T, f *sessionFixture) ([]wantEvent, []string) {
			first := f.open(t)
			next, err := f.refreshWith(first.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.logout.Handle(context.Background(), handlers.Logout{RefreshToken: next.RefreshToken}); err != nil {
				t.Fatal(err)
			}
			f.events.reset()
			_, err = f.refreshWith(first.RefreshToken)
			wantCode(t, "reuse", err, domain.CodeUnauthorized)
			return []wantEvent{
				{adaID, domain.RefreshTokenReuseDetected{SessionID: first.SessionID}, true},
			}, sessionSecrets(first, next)
		}},
		{"SuccessorAfterReuse", func(t *testing.T, f *sessionFixture) ([]wantEvent, []string) {
			first := f.open(t)
			next, err := f.refreshWith(first.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.refreshWith(first.RefreshToken)
			wantCode(t, "reuse", err, domain.CodeUnauthorized)
			f.events.reset()
			_, err = f.refreshWith(next.RefreshToken)
			wantCode(t, "successor", err, domain.CodeUnauthorized)
			return nil, sessionSecrets(first, next)
		}},
		{"Malformed", func(t *testing.T, f *sessionFixture) ([]wantEvent, []string) {
			f.events.reset()
			_, err := f.refreshWith("not a token")
			wantCode(t, "refresh", err, domain.CodeUnauthorized)
			return nil, nil
		}},
		{"Unknown", func(t *testing.T, f *sessionFixture) ([]wantEvent, []string) {
			s := f.open(t)
			f.events.reset()
			_, err := f.refreshWith("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
			wantCode(t, "refresh", err, domain.CodeUnauthorized)
			return nil, sessionSecrets(s)
		}},
		{"IdleExpired", func(t *testing.T, f *sessionFixture) ([]wantEvent, []string) {
			s := f.open(t)
			f.events.reset()
			f.clock.advance(25 * time.Hour)
			_, err := f.refreshWith(s.RefreshToken)
			wantCode(t, "refresh", err, domain.CodeUnauthorized)
			return nil, sessionSecrets(s)
		}},
		{"SessionLoggedOut", func(t *testing.T, f *sessionFixture) ([]wantEvent, []string) {
			s := f.open(t)
			if _, err := f.logout.Handle(context.Background(), handlers.Logout{RefreshToken: s.RefreshToken}); err != nil {
				t.Fatal(err)
			}
			f.events.reset()
			_, err := f.refreshWith(s.RefreshToken)
			wantCode(t, "refresh", err, domain.CodeUnauthorized)
			return nil, sessionSecrets(s)
		}},
		{"AccountDisabled", func(t *testing.T, f *sessionFixture) ([]wantEvent, []string) {
			s := f.open(t)
			f.update(t, func(u *domain.User) error { u.Disable(f.clock.Now()); return nil })
			f.events.reset()
			_, err := f.refreshWith(s.RefreshToken)
			wantCode(t, "refresh", err, domain.CodeUnauthorized)
			return nil, sessionSecrets(s)
		}},
		{"PasswordChangedElsewhere", func(t *testing.T, f *sessionFixture) ([]wantEvent, []string) {
			s := f.open(t)
			f.clock.advance(time.Second)
			f.update(t, func(u *domain.User) error { return u.ChangePassword("hash:another password entirely", f.clock.Now()) })
			f.events.reset()
			_, err := f.refreshWith(s.RefreshToken)
			wantCode(t, "refresh", err, domain.CodeUnauthorized)
			return nil, sessionSecrets(s)
		}},
		{"AccountLocked", func(t *testing.T, f *sessionFixture) ([]wantEvent, []string) {
			s := f.open(t)
			f.throttle.failures["ada@example.com"] = 100
			f.events.reset()
			_, err := f.refreshWith(s.RefreshToken)
			wantCode(t, "refresh", err, domain.CodeUnauthorized)
			return nil, sessionSecrets(s)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSessionFixture(t)
			want, secrets := tt.run(t, f)
			checkEvents(t, f.events, f.clock.Now(), want, secrets...)
		})
	}
}

// TestConcurrentRefreshEvents: of twenty refreshes with one token at once,
// one reports the rotation and the nineteen others the reuse; the session
// is revoked, and reported so, once.
func TestConcurrentRefreshEvents(t *testing.T) {
	f := newSessionFixture(t)
	first := f.open(t)
	f.events.reset()
	var mu sync.Mutex
	var results []handlers.LoginResult
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			res, err := f.refreshWith(first.RefreshToken)
			if err == nil {
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(results) != 1 {
		t.Fatalf("%d refreshes succeeded, want exactly 1", len(results))
	}
	got := countPayloads(f.events)
	want := map[domain.EventPayload]int{
		domain.SessionRefreshed{SessionID: first.SessionID}:                              1,
		domain.RefreshTokenReuseDetected{SessionID: first.SessionID}:                     19,
		domain.SessionRevoked{SessionID: first.SessionID, Reason: domain.RevokedByReuse}: 1,
	}
	if len(got) != len(want) {
		t.Errorf("events by payload %v, want %v", got, want)
	}
	for p, n := range want {
		if got[p] != n {
			t.Errorf("%d events %T%+v, want %d", got[p], p, p, n)
		}
	}
	for i, e := range f.events.all() {
		if e.Event.UserID != adaID || !e.Event.OccurredAt.Equal(f.clock.Now()) {
			t.Errorf("event %d %v: want ada's, at %v", i, e, f.clock.Now())
		}
	}
}

// TestLogoutEvents: a logout reports the session it ended, inside the unit
// of work; ending it again, or refusing to, reports nothing.
func TestLogoutEvents(t *testing.T) {
	byRefresh := func(s handlers.LoginResult) handlers.Logout { return handlers.Logout{RefreshToken: s.RefreshToken} }
	byAccess := func(s handlers.LoginResult) handlers.Logout { return handlers.Logout{AccessToken: s.AccessToken.Token} }
	tests := []struct {
		name     string
		before   func(handlers.LoginResult) handlers.Logout // a logout done before the one under test
		logout   func(handlers.LoginResult) handlers.Logout
		wantCode domain.Code
		wantEnd  bool
	}{
		{"ByRefreshToken", nil, byRefresh, "", true},
		{"ByAccessToken", nil, byAccess, "", true},
		{"AgainByRefreshToken", byRefresh, byRefresh, "", false},
		{"AgainByAccessToken", byRefresh, byAccess, "", false},
		{"Neither", nil, func(handlers.LoginResult) handlers.Logout { return handlers.Logout{} }, domain.CodeInvalid, false},
		{"Both", nil, func(s handlers.LoginResult) handlers.Logout {
			return handlers.Logout{RefreshToken: s.RefreshToken, AccessToken: s.AccessToken.Token}
		}, domain.CodeInvalid, false},
		{"ForgedAccessToken", nil, func(s handlers.LoginResult) handlers.Logout {
			return handlers.Logout{AccessToken: s.AccessToken.Token + "x"}
		}, domain.CodeUnauthorized, false},
		{"UnknownRefreshToken", nil, func(handlers.LoginResult) handlers.Logout {
			return handlers.Logout{RefreshToken: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
		}, domain.CodeUnauthorized, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSessionFixture(t)
			s, other := f.open(t), f.open(t)
			if tt.before != nil {
				if _, err := f.logout.Handle(context.Background(), tt.before(s)); err != nil {
					t.Fatal(err)
				}
			}
			f.events.reset()
			f.clock.advance(time.Minute)
			_, err := f.logout.Handle(context.Background(), tt.logout(s))
			wantCode(t, "logout", err, tt.wantCode)
			var want []wantEvent
			if tt.wantEnd {
				want = revokedEvents(adaID, domain.RevokedByLogout, s.SessionID)
			}
			checkEvents(t, f.events, f.clock.Now(), want, sessionSecrets(s, other)...)
		})
	}
}

// TestLogoutAllEvents: logging out everywhere reports each session it
// ended, the token's own included, and none that had ended before; a
// refused request reports nothing.
func TestLogoutAllEvents(t *testing.T) {
	tests := []struct {
		name string
		// endedBefore are the sessions, by index, logged out before.
		endedBefore []int
		token       func([]handlers.LoginResult) string
		wantCode    domain.Code
		wantEnded   []int
	}{
		{"AllLive", nil, func(s []handlers.LoginResult) string { return s[1].AccessToken.Token }, "", []int{0, 1, 2}},
		{"OneEndedBefore", []int{0}, func(s []handlers.LoginResult) string { return s[2].AccessToken.Token }, "", []int{1, 2}},
		{"RevokedToken", []int{1}, func(s []handlers.LoginResult) string { return s[1].AccessToken.Token }, domain.CodeUnauthorized, nil},
		{"ForgedToken", nil, func(s []handlers.LoginResult) string { return s[0].AccessToken.Token + "x" }, domain.CodeUnauthorized, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSessionFixture(t)
			sessions := []handlers.LoginResult{f.open(t), f.open(t), f.open(t)}
			for _, i := range tt.endedBefore {
				if _, err := f.logout.Handle(context.Background(), handlers.Logout{RefreshToken: sessions[i].RefreshToken}); err != nil {
					t.Fatal(err)
				}
			}
			f.events.reset()
			f.clock.advance(time.Minute)
			_, err := f.logoutAll.Handle(context.Background(), handlers.LogoutAll{AccessToken: tt.token(sessions)})
			wantCode(t, "logout-all", err, tt.wantCode)
			var ended []domain.SessionID
			for _, i := range tt.wantEnded {
				ended = append(ended, sessions[i].SessionID)
			}
			checkEvents(t, f.events, f.clock.Now(), revokedEvents(adaID, domain.RevokedByLogoutAll, ended...), sessionSecrets(sessions...)...)
		})
	}
}

// TestChangePasswordEvents: a password change reports the change and each
// other session it ended, never the session that changed it; a refused
// change reports nothing.
func TestChangePasswordEvents(t *testing.T) {
	const (
		newPassword   = "a brand new long passphrase"
		wrongPassword = "not the password at all"
	)
	tests := []struct {
		name     string
		others   int // sessions besides the current one
		revoke   bool
		current  string
		next     string
		wantCode domain.Code
	}{
		{"OK", 2, false, goodPassword, newPassword, ""},
		{"NoOtherSession", 0, false, goodPassword, newPassword, ""},
		{"WrongCurrentPassword", 2, false, wrongPassword, newPassword, domain.CodeUnauthorized},
		{"WeakNewPassword", 2, false, goodPassword, "short", domain.CodeInvalid},
		{"NoCurrentPassword", 2, false, "", newPassword, domain.CodeInvalid},
		{"RevokedSession", 2, true, goodPassword, newPassword, domain.CodeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSessionFixture(t)
			// The current session is opened between the others, so that
			// it sorts among them.
			var others []handlers.LoginResult
			if tt.others > 0 {
				others = append(others, f.open(t))
			}
			current := f.open(t)
			for len(others) < tt.others {
				others = append(others, f.open(t))
			}
			if tt.revoke {
				if _, err := f.logout.Handle(context.Background(), handlers.Logout{AccessToken: current.AccessToken.Token}); err != nil {
					t.Fatal(err)
				}
			}
			f.events.reset()
			f.clock.advance(time.Second)
			_, err := f.change.Handle(context.Background(), handlers.ChangePassword{
				AccessToken: current.AccessToken.Token, CurrentPassword: tt.current, NewPassword: tt.next, Client: webClient,
			})
			wantCode(t, "change", err, tt.wantCode)
			var want []wantEvent
			if tt.wantCode == "" {
				want = []wantEvent{{adaID, domain.PasswordChanged{}, true}}
				for _, o := range others {
					want = append(want, revokedEvents(adaID, domain.RevokedByPasswordChange, o.SessionID)...)
				}
			}
			secrets := append(sessionSecrets(append(others, current)...), newPassword, wrongPassword)
			checkEvents(t, f.events, f.clock.Now(), want, secrets...)
			for _, e := range f.events.all() {
				if r, ok := e.Event.Payload.(domain.SessionRevoked); ok && r.SessionID == current.SessionID {
					t.Errorf("the current session is reported revoked: %v", e)
				}
			}
		})
	}
}

// racingSessions is an in-memory SessionRepository on which another
// request rotates a refresh token just after it is read: race runs once,
// after the first read.
type racingSessions struct {
	*inmem.SessionRepository
	mu   sync.Mutex
	race func()
}

func (r *racingSessions) RefreshGrant(ctx context.Context, hash []byte) (domain.RefreshGrant, error) {
	g, err := r.SessionRepository.RefreshGrant(ctx, hash)
	r.mu.Lock()
	race := r.race
	r.race = nil
	r.mu.Unlock()
	if race != nil {
		race()
	}
	return g, err
}

// TestRefreshEventsOfARace: a refresh that finds, when it rotates, that
// another request rotated the token since it read it reports the reuse and
// the revocation, inside its unit of work, after the other's rotation.
func TestRefreshEventsOfARace(t *testing.T) {
	f := newSessionFixture(t)
	first := f.open(t)
	f.events.reset()
	f.clock.advance(time.Minute)
	var other handlers.LoginResult
	sessions := &racingSessions{SessionRepository: f.sessions, race: func() {
		var err error
		if other, err = f.refreshWith(first.RefreshToken); err != nil {
			t.Errorf("the other refresh: %v", err)
		}
	}}
	h := handlers.NewRefreshHandler(handlers.RefreshDeps{
		Work: f.work, Sessions: sessions, Throttle: f.throttle, Tokens: f.issuer,
		Revocations: f.revocations, Events: f.events, Now: f.clock.Now, Random: rand.Reader,
	}, handlers.SessionConfig{SessionTTL: 30 * 24 * time.Hour, RefreshIdleTTL: 24 * time.Hour})
	_, err := h.Handle(context.Background(), handlers.Refresh{RefreshToken: first.RefreshToken, Client: domain.Client{ID: "web"}})
	wantCode(t, "refresh that lost the race", err, domain.CodeUnauthorized)
	if !f.revocations.listed(first.SessionID) {
		t.Error("the session is not on the revocation list")
	}
	checkEvents(t, f.events, f.clock.Now(), []wantEvent{
		{adaID, domain.SessionRefreshed{SessionID: first.SessionID}, true},
		{adaID, domain.RefreshTokenReuseDetected{SessionID: first.SessionID}, true},
		{adaID, domain.SessionRevoked{SessionID: first.SessionID, Reason: domain.RevokedByReuse}, true},
	}, sessionSecrets(first, other)...)
}
