package inmem

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/authworker/authworker/domain"
)

const codeStore = "code store"

// CodeRepository is an in-memory domain.CodeRepository whose codes belong
// to the users of a UserRepository.
type CodeRepository struct {
	users *UserRepository

	mu    sync.Mutex
	codes map[codeKey]domain.OneTimeCode
}

type codeKey struct {
	user    domain.UserID
	purpose domain.CodePurpose
}

var _ domain.CodeRepository = (*CodeRepository)(nil)

// NewCodeRepository returns an empty CodeRepository for the users in users.
func NewCodeRepository(users *UserRepository) *CodeRepository {
	r := &CodeRepository{users: users, codes: map[codeKey]domain.OneTimeCode{}}
	users.whenErased(func(id domain.UserID) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for k := range r.codes {
			if k.user == id {
				delete(r.codes, k)
			}
		}
	})
	return r
}

// SaveCode implements domain.CodeRepository.
func (r *CodeRepository) SaveCode(ctx context.Context, c domain.OneTimeCode) error {
	if err := checkContext(ctx, codeStore); err != nil {
		return err
	}
	c.Hash = bytes.Clone(c.Hash)
	c.CreatedAt, c.ExpiresAt, c.Attempts = storedTime(c.CreatedAt), storedTime(c.ExpiresAt), 0
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.users.exists(c.UserID) { // under r.mu: see UserRepository.exists
		return errUserNotFound()
	}
	r.codes[codeKey{c.UserID, c.Purpose}] = c
	return nil
}

// Code implements domain.CodeRepository.
func (r *CodeRepository) Code(ctx context.Context, user domain.UserID, purpose domain.CodePurpose) (domain.OneTimeCode, error) {
	if err := checkContext(ctx, codeStore); err != nil {
		return domain.OneTimeCode{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.codes[codeKey{user, purpose}]
	if !ok {
		return domain.OneTimeCode{UserID: user, Purpose: purpose}, domain.Errorf(domain.CodeNotFound, "code not found")
	}
	c.Hash = bytes.Clone(c.Hash)
	return c, nil
}

// ConsumeCode implements domain.CodeRepository.
func (r *CodeRepository) ConsumeCode(ctx context.Context, user domain.UserID, purpose domain.CodePurpose, hash []byte, now time.Time) (bool, error) {
	if err := checkContext(ctx, codeStore); err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := codeKey{user, purpose}
	c, ok := r.codes[k]
	if !ok || !bytes.Equal(c.Hash, hash) || !storedTime(now).Before(c.ExpiresAt) || c.Attempts >= domain.MaxCodeAttempts {
		return false, nil
	}
	delete(r.codes, k)
	return true, nil
}

// CountFailedAttempt implements domain.CodeRepository.
func (r *CodeRepository) CountFailedAttempt(ctx context.Context, user domain.UserID, purpose domain.CodePurpose) error {
	if err := checkContext(ctx, codeStore); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := codeKey{user, purpose}
	if c, ok := r.codes[k]; ok {
		c.Attempts++
		r.codes[k] = c
	}
	return nil
}
