package inmem_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/inmem"
	"github.com/authworker/authworker/storagetest"
)

func TestUserRepository(t *testing.T) {
	storagetest.RunUserRepositoryTests(t, func(*testing.T) domain.UserRepository {
		return inmem.NewUserRepository()
	})
}

func TestSessionRepository(t *testing.T) {
	storagetest.RunSessionRepositoryTests(t, func(*testing.T) (domain.UserRepository, domain.SessionRepository, domain.Transactor) {
		users := inmem.NewUserRepository()
		return users, inmem.NewSessionRepository(users), inmem.Transactor{}
	})
}

func TestCodeRepository(t *testing.T) {
	storagetest.RunCodeRepositoryTests(t, func(*testing.T) (domain.UserRepository, domain.CodeRepository) {
		users := inmem.NewUserRepository()
		return users, inmem.NewCodeRepository(users)
	})
}

func TestSigningKeyRepository(t *testing.T) {
	storagetest.RunSigningKeyRepositoryTests(t, func(*testing.T) domain.SigningKeyRepository {
		return inmem.NewSigningKeyRepository()
	})
}

func TestOutcomeRepository(t *testing.T) {
	storagetest.RunOutcomeRepositoryTests(t, func(*testing.T) domain.OutcomeRepository {
		return inmem.NewOutcomeRepository()
	})
}

func TestOutbox(t *testing.T) {
	storagetest.RunOutboxTests(t, func(*testing.T) storagetest.OutboxEnv {
		outbox := inmem.NewOutbox()
		return storagetest.OutboxEnv{
			Tx:        inmem.Transactor{},
			Outbox:    outbox,
			Committed: func(*testing.T) []domain.OutboxMessage { return outbox.Messages() },
		}
	})
}

// TestOutboxMessagesAreCopies: a test that changes what Messages returned
// does not change what the outbox holds.
func TestOutboxMessagesAreCopies(t *testing.T) {
	outbox := inmem.NewOutbox()
	m := storagetest.NewOutboxMessage("auth.events", "a", 1)
	if err := (inmem.Transactor{}).InTx(context.Background(), func(ctx context.Context) error {
		return outbox.Enqueue(ctx, m)
	}); err != nil {
		t.Fatal(err)
	}
	got := outbox.Messages()
	got[0].Value[0], got[0].Headers[0].Key = 'X', "changed"
	storagetest.CheckOutboxMessages(t, outbox.Messages(), []domain.OutboxMessage{m})
}

// TestTransactor checks what the in-memory Transactor promises: fn's error
// as is, and no call with a done context. It promises no rollback.
func TestTransactor(t *testing.T) {
	var tx inmem.Transactor
	refusal := domain.Errorf(domain.CodeConflict, "email already registered")
	// Identity, not errors.Is: the error is returned as is, not wrapped.
	if err := tx.InTx(context.Background(), func(context.Context) error { return refusal }); err != refusal {
		t.Errorf("InTx = %v, want fn's error as is", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	err := tx.InTx(ctx, func(context.Context) error { called = true; return nil })
	if !errors.Is(err, context.Canceled) || domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Errorf("InTx with a cancelled context = %v, want unavailable wrapping context.Canceled", err)
	}
	if called {
		t.Error("InTx called fn with a cancelled context")
	}
}

// TestSessionInspection covers the accessors that handler tests assert with.
func TestSessionInspection(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 6789, time.UTC)
	users := inmem.NewUserRepository()
	sessions := inmem.NewSessionRepository(users)
	u, err := domain.NewUser(domain.UserID(storagetest.NewUUID()), "ada@example.com", "hash", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := users.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	s, err := domain.NewSession(domain.SessionID(storagetest.NewUUID()), u.ID(), domain.Client{ID: "web"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	secret, tok, err := domain.NewRefreshToken(rand.Reader, s, now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := sessions.CreateSession(ctx, s, tok); err != nil {
		t.Fatal(err)
	}

	got, ok := sessions.Stored(s.ID())
	if !ok || got.UserID() != u.ID() || got.ClientID() != "web" {
		t.Errorf("Session = %+v, %v; want the stored session", got, ok)
	}
	if !got.ExpiresAt().Equal(now.Add(time.Hour).Truncate(time.Microsecond)) {
		t.Errorf("ExpiresAt = %v, want %v truncated to microseconds", got.ExpiresAt(), now.Add(time.Hour))
	}
	toks := sessions.RefreshTokens(s.ID())
	if len(toks) != 1 || !toks[0].Matches(secret) {
		t.Fatalf("RefreshTokens = %+v, want the first token", toks)
	}
	toks[0].Hash[0] ^= 0xff
	if again := sessions.RefreshTokens(s.ID()); !again[0].Matches(secret) {
		t.Error("RefreshTokens returned the stored hash, not a copy")
	}
	if _, ok := sessions.Stored(domain.SessionID(storagetest.NewUUID())); ok {
		t.Error("Session found an unknown session")
	}
}
