package postgres_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/postgres"
	"github.com/authworker/authworker/storagetest"
)

// testKey is a stored key row; the repository does not look inside.
func testKey(id string, now time.Time) domain.SigningKey {
	return domain.SigningKey{
		ID: id, Algorithm: "EdDSA", PublicKey: []byte("public"), SealedPrivateKey: []byte("sealed"),
		CreatedAt: now, SignFrom: now,
	}
}

// TestSigningKeyUpdateCarriesItsTransaction: what update writes through
// another repository on the context it gets (the key.rotated event in the
// outbox) commits with the keys, and is rolled back with them.
func TestSigningKeyUpdateCarriesItsTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	keys := postgres.NewSigningKeyRepository(db)
	outbox := postgres.NewOutbox(db, newSealer(t))
	now := time.Now()
	refused := errors.New("refused")

	for _, fail := range []bool{true, false} {
		err := keys.UpdateSigningKeys(ctx, now, func(ctx context.Context, _ []domain.SigningKey) ([]domain.SigningKey, error) {
			if err := outbox.Enqueue(ctx, storagetest.NewOutboxMessage("auth.events", "k1", 1)); err != nil {
				return nil, err
			}
			if fail {
				return nil, refused
			}
			return []domain.SigningKey{testKey("k1", now)}, nil
		})
		pending, perr := outbox.Pending(ctx)
		if perr != nil {
			t.Fatal(perr)
		}
		stored, serr := keys.SigningKeys(ctx, now)
		if serr != nil {
			t.Fatal(serr)
		}
		if fail {
			if !errors.Is(err, refused) || len(pending) != 0 || len(stored) != 0 {
				t.Errorf("failed update: err %v, %d outbox rows, %d keys; want update's error and nothing stored", err, len(pending), len(stored))
			}
			continue
		}
		if err != nil || len(pending) != 1 || len(stored) != 1 {
			t.Errorf("update: err %v, %d outbox rows, %d keys; want both stored", err, len(pending), len(stored))
		}
	}
}

// TestListenSigningKeys: a worker listening hears a change another commits,
// and only a change.
func TestListenSigningKeys(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, _ := openDB(t)
	keys := postgres.NewSigningKeyRepository(db)
	heard := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.ListenSigningKeys(ctx, slog.New(slog.DiscardHandler), func() { heard <- struct{}{} })
	}()
	wait := func(what string) {
		t.Helper()
		select {
		case <-heard:
		case <-time.After(10 * time.Second):
			t.Fatalf("no notification %s", what)
		}
	}
	wait("on listening") // a change may have been missed before
	now := time.Now()
	update := func(ks ...domain.SigningKey) {
		t.Helper()
		err := keys.UpdateSigningKeys(ctx, now, func(context.Context, []domain.SigningKey) ([]domain.SigningKey, error) { return ks, nil })
		if err != nil {
			t.Fatal(err)
		}
	}
	update() // no change: no notification
	update(testKey("k1", now))
	wait("after a change")
	select {
	case <-heard:
		t.Error("notified for an update that changed nothing")
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	<-done
}
