package inmem

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/authworker/authworker/domain"
)

const outcomeStore = "outcome store"

// OutcomeRepository is an in-memory domain.OutcomeRepository.
type OutcomeRepository struct {
	mu       sync.Mutex
	outcomes map[domain.RequestKey]domain.Outcome
}

var _ domain.OutcomeRepository = (*OutcomeRepository)(nil)

// NewOutcomeRepository returns an empty OutcomeRepository.
func NewOutcomeRepository() *OutcomeRepository {
	return &OutcomeRepository{outcomes: make(map[domain.RequestKey]domain.Outcome)}
}

// Outcome implements domain.OutcomeRepository, like
// postgres.OutcomeRepository.
func (r *OutcomeRepository) Outcome(ctx context.Context, key domain.RequestKey, now time.Time) (domain.Outcome, error) {
	if err := checkContext(ctx, outcomeStore); err != nil {
		return domain.Outcome{}, err
	}
	if err := key.Validate(); err != nil {
		return domain.Outcome{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	o, ok := r.outcomes[key]
	if !ok || expired(o, now) {
		return domain.Outcome{}, domain.Errorf(domain.CodeNotFound, "outcome not found")
	}
	return storedOutcome(o), nil
}

// SaveOutcome implements domain.OutcomeRepository, like
// postgres.OutcomeRepository: an outcome expired at o.CreatedAt is replaced.
// Unlike PostgreSQL, which waits for a concurrent transaction to end, it
// answers CodeConflict as soon as another call has saved the key.
func (r *OutcomeRepository) SaveOutcome(ctx context.Context, o domain.Outcome) error {
	if err := checkContext(ctx, outcomeStore); err != nil {
		return err
	}
	if err := o.Key.Validate(); err != nil {
		return err
	}
	if len(o.Reply) == 0 {
		return domain.Errorf(domain.CodeInternal, "outcome without a reply")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.outcomes[o.Key]; ok && !expired(old, o.CreatedAt) {
		return domain.Errorf(domain.CodeConflict, "outcome already stored")
	}
	r.outcomes[o.Key] = storedOutcome(o)
	return nil
}

// DeleteExpiredOutcomes implements domain.OutcomeRepository, like
// postgres.OutcomeRepository.
func (r *OutcomeRepository) DeleteExpiredOutcomes(ctx context.Context, now time.Time, limit int) (int, error) {
	if err := checkContext(ctx, outcomeStore); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, domain.Errorf(domain.CodeInternal, "delete expired outcomes: limit %d is not positive", limit)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for k, o := range r.outcomes {
		if n == limit {
			break
		}
		if expired(o, now) {
			delete(r.outcomes, k)
			n++
		}
	}
	return n, nil
}

// expired reports whether the stored o has expired at now, compared at the
// stored precision as PostgreSQL does.
func expired(o domain.Outcome, now time.Time) bool {
	return !storedTime(now).Before(o.ExpiresAt)
}

// storedOutcome is a deep copy of o as PostgreSQL would return it.
func storedOutcome(o domain.Outcome) domain.Outcome {
	o.Reply = bytes.Clone(o.Reply)
	o.RequestDigest = bytes.Clone(o.RequestDigest)
	o.CreatedAt, o.ExpiresAt = storedTime(o.CreatedAt), storedTime(o.ExpiresAt)
	return o
}
