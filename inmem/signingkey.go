package inmem

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/authworker/authworker/domain"
)

const signingKeyStore = "signing key store"

// SigningKeyRepository is an in-memory domain.SigningKeyRepository.
type SigningKeyRepository struct {
	update rowLock // held across UpdateSigningKeys' closure

	mu   sync.Mutex
	keys map[string]domain.SigningKey
}

var _ domain.SigningKeyRepository = (*SigningKeyRepository)(nil)

// NewSigningKeyRepository returns an empty SigningKeyRepository.
func NewSigningKeyRepository() *SigningKeyRepository {
	return &SigningKeyRepository{update: newRowLock(), keys: make(map[string]domain.SigningKey)}
}

// SigningKeys implements domain.SigningKeyRepository, like
// postgres.SigningKeyRepository: oldest first, ties in ID order.
func (r *SigningKeyRepository) SigningKeys(ctx context.Context, now time.Time) ([]domain.SigningKey, error) {
	if err := checkContext(ctx, signingKeyStore); err != nil {
		return nil, err
	}
	return r.published(now), nil
}

// UpdateSigningKeys implements domain.SigningKeyRepository. Callers are
// serialised by one lock, held while update runs in a Transactor's
// transaction.
func (r *SigningKeyRepository) UpdateSigningKeys(ctx context.Context, now time.Time, update func(context.Context, []domain.SigningKey) ([]domain.SigningKey, error)) error {
	if err := checkContext(ctx, signingKeyStore); err != nil {
		return err
	}
	if err := r.update.lock(ctx, signingKeyStore); err != nil {
		return err
	}
	defer r.update.unlock()

	// A transaction of its own, never the caller's, as PostgreSQL's: what
	// update enqueues on the Outbox commits with the keys.
	var changed []domain.SigningKey
	err := Transactor{}.InTx(context.WithValue(ctx, txKey{}, nil), func(ctx context.Context) error {
		var err error
		changed, err = update(ctx, r.published(now))
		return err
	})
	if err != nil {
		return err
	}
	for _, k := range changed {
		if k.ID == "" || k.Algorithm == "" || len(k.PublicKey) == 0 || len(k.SealedPrivateKey) == 0 {
			return domain.Errorf(domain.CodeInternal, "incomplete signing key %q", k.ID)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range changed {
		r.keys[k.ID] = storedKey(k)
	}
	now = storedTime(now)
	for id, k := range r.keys {
		if !k.Published(now) {
			delete(r.keys, id) // removed: its private half serves no one
		}
	}
	return nil
}

// published returns copies of the keys published at now, oldest first.
func (r *SigningKeyRepository) published(now time.Time) []domain.SigningKey {
	now = storedTime(now) // compare at the stored precision, as PostgreSQL does
	r.mu.Lock()
	defer r.mu.Unlock()
	var ks []domain.SigningKey
	for _, k := range r.keys {
		if k.Published(now) {
			ks = append(ks, storedKey(k))
		}
	}
	slices.SortFunc(ks, func(a, b domain.SigningKey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return ks
}

// storedKey is a deep copy of k as PostgreSQL would return it.
func storedKey(k domain.SigningKey) domain.SigningKey {
	k.PublicKey = bytes.Clone(k.PublicKey)
	k.SealedPrivateKey = bytes.Clone(k.SealedPrivateKey)
	k.CreatedAt = storedTime(k.CreatedAt)
	k.SignFrom = storedTime(k.SignFrom)
	k.SignUntil = storedTime(k.SignUntil)
	k.PublishUntil = storedTime(k.PublishUntil)
	return k
}
