package storagetest

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
)

// RunSessionRepositoryTests runs the conformance suite of
// domain.SessionRepository. newRepos returns empty repositories, the
// session repository storing sessions for the users of the user
// repository; it is called once per subtest.
func RunSessionRepositoryTests(t *testing.T, newRepos func(t *testing.T) (domain.UserRepository, domain.SessionRepository)) {
	tests := []struct {
		name string
		run  func(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository)
	}{
		{"CreateSession", testCreateSession},
		{"SeveralSessionsPerUser", testSeveralSessionsPerUser},
		{"UnparsableIPAccepted", testUnparsableIPAccepted},
		{"DuplicateSessionID", testDuplicateSessionID},
		{"DuplicateTokenStoresNothing", testDuplicateTokenStoresNothing},
		{"SessionForUnknownUser", testSessionForUnknownUser},
		{"TokenOfAnotherSession", testTokenOfAnotherSession},
		{"CanceledContext", testSessionCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			users, sessions := newRepos(t)
			tt.run(t, users, sessions)
		})
	}
}

var webClient = domain.Client{ID: "web", IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"}

// newSession returns a session of thirty days for userID and its first
// refresh token, valid for a day.
func newSession(tb testing.TB, userID domain.UserID, client domain.Client) (*domain.Session, domain.RefreshToken) {
	tb.Helper()
	s, err := domain.NewSession(domain.SessionID(NewUUID()), userID, client, baseTime, 30*24*time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	_, tok, err := domain.NewRefreshToken(rand.Reader, s, baseTime, 24*time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	return s, tok
}

func testCreateSession(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	u := createUser(t, users)
	s, tok := newSession(t, u.ID(), webClient)
	if err := sessions.CreateSession(context.Background(), s, tok); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
}

func testSeveralSessionsPerUser(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	u := createUser(t, users)
	for range 3 {
		s, tok := newSession(t, u.ID(), webClient)
		if err := sessions.CreateSession(context.Background(), s, tok); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}
}

// testUnparsableIPAccepted: the address is what the requesting service
// reported; storing it must never fail a login.
func testUnparsableIPAccepted(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	u := createUser(t, users)
	for _, c := range []domain.Client{
		{ID: "web", IP: "not an address", UserAgent: "curl/8.5.0"},
		{ID: "web", IP: "2001:db8::1%eth0"},
		{ID: "cli"},
	} {
		s, tok := newSession(t, u.ID(), c)
		if err := sessions.CreateSession(context.Background(), s, tok); err != nil {
			t.Errorf("CreateSession with client %+v: %v", c, err)
		}
	}
}

func testDuplicateSessionID(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	ctx := context.Background()
	u := createUser(t, users)
	s, tok := newSession(t, u.ID(), webClient)
	if err := sessions.CreateSession(ctx, s, tok); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	_, another, err := domain.NewRefreshToken(rand.Reader, s, baseTime, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	checkCode(t, "CreateSession with a taken id", sessions.CreateSession(ctx, s, another), domain.CodeConflict)
}

// testDuplicateTokenStoresNothing checks atomicity: when the token cannot
// be stored, neither is the session.
func testDuplicateTokenStoresNothing(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	ctx := context.Background()
	u := createUser(t, users)
	s1, tok1 := newSession(t, u.ID(), webClient)
	if err := sessions.CreateSession(ctx, s1, tok1); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	s2, tok2 := newSession(t, u.ID(), webClient)
	clash := tok2
	clash.Hash = tok1.Hash
	checkCode(t, "CreateSession with a taken token hash", sessions.CreateSession(ctx, s2, clash), domain.CodeConflict)
	if err := sessions.CreateSession(ctx, s2, tok2); err != nil {
		t.Errorf("CreateSession after a failed attempt: %v (the failed attempt stored the session)", err)
	}
}

// testSessionForUnknownUser: a user deleted between login's lookup and
// the session's creation is not found.
func testSessionForUnknownUser(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	ctx := context.Background()
	createUser(t, users) // a store that is not empty
	for _, id := range []domain.UserID{domain.UserID(NewUUID()), "not-a-uuid"} {
		s, tok := newSession(t, id, webClient)
		checkCode(t, "CreateSession for user "+string(id), sessions.CreateSession(ctx, s, tok), domain.CodeNotFound)
	}
}

func testTokenOfAnotherSession(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	u := createUser(t, users)
	s1, _ := newSession(t, u.ID(), webClient)
	_, tok2 := newSession(t, u.ID(), webClient)
	checkCode(t, "CreateSession with another session's token", sessions.CreateSession(context.Background(), s1, tok2), domain.CodeInternal)
}

func testSessionCanceledContext(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	u := createUser(t, users)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, tok := newSession(t, u.ID(), webClient)
	if err := sessions.CreateSession(ctx, s, tok); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateSession error = %v, want context.Canceled in the chain", err)
	}
	if err := sessions.CreateSession(context.Background(), s, tok); err != nil {
		t.Errorf("CreateSession after a cancelled attempt: %v", err)
	}
}
