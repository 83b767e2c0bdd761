package storagetest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
)

// RunSigningKeyRepositoryTests runs the conformance suite of
// domain.SigningKeyRepository. newRepo returns an empty repository; it is
// called once per subtest.
func RunSigningKeyRepositoryTests(t *testing.T, newRepo func(t *testing.T) domain.SigningKeyRepository) {
	tests := []struct {
		name string
		run  func(t *testing.T, keys domain.SigningKeyRepository)
	}{
		{"NoKeys", testNoKeys},
		{"InsertAndLoad", testInsertAndLoad},
		{"UpdateReplacesByID", testUpdateReplacesByID},
		{"PublishedOnly", testPublishedOnly},
		{"OldestFirst", testOldestFirst},
		{"UpdateErrorStoresNothing", testUpdateErrorStoresNothing},
		{"IncompleteKeyStoresNothing", testIncompleteKeyStoresNothing},
		{"ReturnedKeysAreCopies", testReturnedKeysAreCopies},
		{"UpdateSigningKeysSerialises", testUpdateSigningKeysSerialises},
		{"CanceledContext", testSigningKeysCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newRepo(t))
		})
	}
}

// newKey returns a key created at createdAt that signs from then on.
func newKey(createdAt time.Time) domain.SigningKey {
	return domain.SigningKey{
		ID:               NewUUID(),
		Algorithm:        "EdDSA",
		PublicKey:        randomBytes(44),
		SealedPrivateKey: randomBytes(88),
		CreatedAt:        createdAt,
		SignFrom:         createdAt,
	}
}

// putKeys stores ks unconditionally.
func putKeys(tb testing.TB, repo domain.SigningKeyRepository, ks ...domain.SigningKey) {
	tb.Helper()
	err := repo.UpdateSigningKeys(context.Background(), baseTime, func(context.Context, []domain.SigningKey) ([]domain.SigningKey, error) {
		return ks, nil
	})
	if err != nil {
		tb.Fatalf("UpdateSigningKeys: %v", err)
	}
}

// loadKeys returns the keys published at now.
func loadKeys(tb testing.TB, repo domain.SigningKeyRepository, now time.Time) []domain.SigningKey {
	tb.Helper()
	ks, err := repo.SigningKeys(context.Background(), now)
	if err != nil {
		tb.Fatalf("SigningKeys: %v", err)
	}
	return ks
}

// checkKeys reports an error unless got are want as stored, in order.
func checkKeys(tb testing.TB, got []domain.SigningKey, want ...domain.SigningKey) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("got %d keys %v, want %d %v", len(got), keyIDs(got), len(want), keyIDs(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Algorithm != w.Algorithm {
			tb.Errorf("key %d = %s %s, want %s %s", i, g.ID, g.Algorithm, w.ID, w.Algorithm)
		}
		if !bytes.Equal(g.PublicKey, w.PublicKey) || !bytes.Equal(g.SealedPrivateKey, w.SealedPrivateKey) {
			tb.Errorf("key %d (%s): key material differs from what was stored", i, g.ID)
		}
		checkTime(tb, "CreatedAt", g.CreatedAt, w.CreatedAt)
		checkTime(tb, "SignFrom", g.SignFrom, w.SignFrom)
		checkTime(tb, "SignUntil", g.SignUntil, w.SignUntil)
		checkTime(tb, "PublishUntil", g.PublishUntil, w.PublishUntil)
	}
}

func keyIDs(ks []domain.SigningKey) []string {
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.ID
	}
	return ids
}

func testNoKeys(t *testing.T, keys domain.SigningKeyRepository) {
	checkKeys(t, loadKeys(t, keys, baseTime))
	called := false
	err := keys.UpdateSigningKeys(context.Background(), baseTime, func(_ context.Context, ks []domain.SigningKey) ([]domain.SigningKey, error) {
		called = true
		checkKeys(t, ks)
		return nil, nil
	})
	if err != nil || !called {
		t.Errorf("UpdateSigningKeys = %v, called update %v; want nil, true", err, called)
	}
}

func testInsertAndLoad(t *testing.T, keys domain.SigningKeyRepository) {
	k := newKey(baseTime)
	k.SignFrom = baseTime.Add(time.Hour) // pre-published
	putKeys(t, keys, k)
	checkKeys(t, loadKeys(t, keys, baseTime), k)
}

func testUpdateReplacesByID(t *testing.T, keys domain.SigningKeyRepository) {
	ctx := context.Background()
	old, next := newKey(baseTime), newKey(baseTime.Add(time.Minute))
	putKeys(t, keys, old)
	retired := old
	retired.SignUntil = baseTime.Add(24*time.Hour + 1)
	retired.PublishUntil = baseTime.Add(48*time.Hour + 1)
	err := keys.UpdateSigningKeys(ctx, baseTime, func(_ context.Context, ks []domain.SigningKey) ([]domain.SigningKey, error) {
		checkKeys(t, ks, old)
		return []domain.SigningKey{retired, next}, nil
	})
	if err != nil {
		t.Fatalf("UpdateSigningKeys: %v", err)
	}
	checkKeys(t, loadKeys(t, keys, baseTime), retired, next)
}

// testPublishedOnly checks the filter of domain.SigningKey.Published, in
// both reads, and that an update deletes the keys removed by its now.
func testPublishedOnly(t *testing.T, keys domain.SigningKeyRepository) {
	ctx := context.Background()
	now := baseTime.Add(100 * time.Hour)
	open := newKey(baseTime)
	leaving := newKey(baseTime.Add(time.Second))
	leaving.SignUntil, leaving.PublishUntil = now.Add(-time.Hour), now.Add(time.Microsecond)
	gone := newKey(baseTime.Add(2 * time.Second))
	gone.SignUntil, gone.PublishUntil = now.Add(-2*time.Hour), now.Add(-time.Hour)
	goneNow := newKey(baseTime.Add(3 * time.Second))
	goneNow.SignUntil, goneNow.PublishUntil = now.Add(-2*time.Hour), now
	putKeys(t, keys, open, leaving, gone, goneNow)

	checkKeys(t, loadKeys(t, keys, now), open, leaving)
	err := keys.UpdateSigningKeys(ctx, now, func(_ context.Context, ks []domain.SigningKey) ([]domain.SigningKey, error) {
		checkKeys(t, ks, open, leaving)
		return nil, nil
	})
	if err != nil {
		t.Fatalf("UpdateSigningKeys: %v", err)
	}
	checkKeys(t, loadKeys(t, keys, baseTime), open, leaving)
}

func testOldestFirst(t *testing.T, keys domain.SigningKeyRepository) {
	a, b, c := newKey(baseTime), newKey(baseTime.Add(time.Hour)), newKey(baseTime.Add(2*time.Hour))
	c1, c2 := c, newKey(c.CreatedAt) // same instant: by ID
	c1.ID, c2.ID = "c1", "c2"
	putKeys(t, keys, c2, b)
	putKeys(t, keys, c1, a)
	checkKeys(t, loadKeys(t, keys, baseTime), a, b, c1, c2)
}

func testUpdateErrorStoresNothing(t *testing.T, keys domain.SigningKeyRepository) {
	ctx := context.Background()
	k := newKey(baseTime)
	putKeys(t, keys, k)
	refusal := errors.New("cannot seal the private key")
	err := keys.UpdateSigningKeys(ctx, baseTime, func(_ context.Context, ks []domain.SigningKey) ([]domain.SigningKey, error) {
		changed := ks[0]
		changed.SignUntil = baseTime.Add(time.Hour)
		return []domain.SigningKey{changed, newKey(baseTime)}, refusal
	})
	if !errors.Is(err, refusal) {
		t.Errorf("UpdateSigningKeys error = %v, want update's error", err)
	}
	checkKeys(t, loadKeys(t, keys, baseTime), k)
}

func testIncompleteKeyStoresNothing(t *testing.T, keys domain.SigningKeyRepository) {
	ctx := context.Background()
	good, bad := newKey(baseTime), newKey(baseTime)
	bad.ID = ""
	err := keys.UpdateSigningKeys(ctx, baseTime, func(context.Context, []domain.SigningKey) ([]domain.SigningKey, error) {
		return []domain.SigningKey{good, bad}, nil
	})
	checkCode(t, "UpdateSigningKeys with a key without an id", err, domain.CodeInternal)
	checkKeys(t, loadKeys(t, keys, baseTime))
}

func testReturnedKeysAreCopies(t *testing.T, keys domain.SigningKeyRepository) {
	ctx := context.Background()
	k := newKey(baseTime)
	want := k
	want.PublicKey, want.SealedPrivateKey = bytes.Clone(k.PublicKey), bytes.Clone(k.SealedPrivateKey)
	putKeys(t, keys, k)
	k.PublicKey[0] ^= 0xff // the caller's slice, after it was stored

	got := loadKeys(t, keys, baseTime)
	checkKeys(t, got, want)
	got[0].SealedPrivateKey[0] ^= 0xff
	err := keys.UpdateSigningKeys(ctx, baseTime, func(_ context.Context, ks []domain.SigningKey) ([]domain.SigningKey, error) {
		ks[0].PublicKey[0] ^= 0xff // not returned, so not stored
		return nil, nil
	})
	if err != nil {
		t.Fatalf("UpdateSigningKeys: %v", err)
	}
	checkKeys(t, loadKeys(t, keys, baseTime), want)
}

// testUpdateSigningKeysSerialises runs the example of the port's doc from
// several workers at once: exactly one first key must result.
func testUpdateSigningKeysSerialises(t *testing.T, keys domain.SigningKeyRepository) {
	const n = 8
	ctx := context.Background()
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			<-start
			errs <- keys.UpdateSigningKeys(ctx, baseTime, func(_ context.Context, ks []domain.SigningKey) ([]domain.SigningKey, error) {
				if len(ks) > 0 {
					return nil, nil
				}
				// Widen the window in which an unserialised store would let
				// another caller see no key too.
				time.Sleep(20 * time.Millisecond)
				return []domain.SigningKey{newKey(baseTime)}, nil
			})
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("UpdateSigningKeys: %v", err)
		}
	}
	if got := loadKeys(t, keys, baseTime); len(got) != 1 {
		t.Errorf("%d concurrent first-key creations stored %d keys, want 1", n, len(got))
	}
}

func testSigningKeysCanceledContext(t *testing.T, keys domain.SigningKeyRepository) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := keys.SigningKeys(ctx, baseTime); !errors.Is(err, context.Canceled) {
		t.Errorf("SigningKeys error = %v, want context.Canceled in the chain", err)
	}
	called := false
	err := keys.UpdateSigningKeys(ctx, baseTime, func(context.Context, []domain.SigningKey) ([]domain.SigningKey, error) {
		called = true
		return []domain.SigningKey{newKey(baseTime)}, nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("UpdateSigningKeys error = %v, want context.Canceled in the chain", err)
	}
	if called {
		t.Error("UpdateSigningKeys called update with a cancelled context")
	}
	checkKeys(t, loadKeys(t, keys, baseTime))
}
