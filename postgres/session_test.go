package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/postgres"
	"github.com/authworker/authworker/storagetest"
)

// TestCreateSessionRows looks behind the port at what CreateSession wrote,
// which the port itself cannot read back yet.
func TestCreateSessionRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, dbURL := openDB(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.UTC)
	u, err := domain.NewUser(domain.UserID(storagetest.NewUUID()), "ada@example.com", "hash", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := postgres.NewUserRepository(db).CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	s, err := domain.NewSession(domain.SessionID(storagetest.NewUUID()), u.ID(), domain.Client{ID: "web", IP: "not an address"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, tok, err := domain.NewRefreshToken(rand.Reader, s, now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := postgres.NewSessionRepository(db).CreateSession(ctx, s, tok); err != nil {
		t.Fatal(err)
	}

	conn := connect(t, dbURL)
	var (
		userID, clientID string
		ip, userAgent    *string
		created, expires time.Time
		revoked          *time.Time
		hash             []byte
		tokExpires       time.Time
		used             *time.Time
		replacedBy       []byte
	)
	err = conn.QueryRow(ctx, `SELECT user_id::text, client_id, ip, user_agent, created_at, expires_at, revoked_at
		FROM sessions WHERE id = $1`, string(s.ID())).Scan(&userID, &clientID, &ip, &userAgent, &created, &expires, &revoked)
	if err != nil {
		t.Fatal(err)
	}
	if userID != string(u.ID()) || clientID != "web" || ip == nil || *ip != "not an address" || userAgent != nil || revoked != nil {
		t.Errorf("session row = %s %s ip %v ua %v revoked %v, want the session as given, no user agent, not revoked",
			userID, clientID, ip, userAgent, revoked)
	}
	if want := now.Truncate(time.Microsecond); !created.Equal(want) || !expires.Equal(want.Add(time.Hour)) {
		t.Errorf("session times = %v, %v; want %v and an hour later", created, expires, want)
	}
	err = conn.QueryRow(ctx, `SELECT token_hash, expires_at, used_at, replaced_by FROM refresh_tokens WHERE session_id = $1`,
		string(s.ID())).Scan(&hash, &tokExpires, &used, &replacedBy)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hash, tok.Hash) || !tokExpires.Equal(now.Add(time.Minute).Truncate(time.Microsecond)) || used != nil || replacedBy != nil {
		t.Errorf("token row = %x %v used %v replaced by %x, want the first token, unused", hash, tokExpires, used, replacedBy)
	}
}
