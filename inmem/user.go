package inmem

import (
	"context"
	"sync"
	"time"

	"github.com/authworker/authworker/domain"
)

const userStore = "user store"

// UserRepository is an in-memory domain.UserRepository.
type UserRepository struct {
	mu      sync.Mutex
	byID    map[domain.UserID]domain.UserSnapshot
	byEmail map[domain.Email]domain.UserID
	locks   map[domain.UserID]rowLock // held across UpdateUser's closure
	// onErase are the stores holding personal data of users, told when
	// one is erased, as PostgreSQL's single statement does.
	onErase []func(domain.UserID)
}

var _ domain.UserRepository = (*UserRepository)(nil)

// NewUserRepository returns an empty UserRepository.
func NewUserRepository() *UserRepository {
	return &UserRepository{
		byID:    make(map[domain.UserID]domain.UserSnapshot),
		byEmail: make(map[domain.Email]domain.UserID),
		locks:   make(map[domain.UserID]rowLock),
	}
}

// CreateUser implements domain.UserRepository, like postgres.UserRepository.
func (r *UserRepository) CreateUser(ctx context.Context, u *domain.User) error {
	if err := checkContext(ctx, userStore); err != nil {
		return err
	}
	s := storedUser(u.Snapshot())
	if !domain.ValidID(string(s.ID)) {
		return domain.Errorf(domain.CodeInternal, "user id is not a UUID")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byEmail[s.Email]; ok {
		return domain.Errorf(domain.CodeConflict, "email already registered")
	}
	if _, ok := r.byID[s.ID]; ok {
		return domain.Errorf(domain.CodeConflict, "user already exists")
	}
	r.byID[s.ID] = s
	r.byEmail[s.Email] = s.ID
	r.locks[s.ID] = newRowLock()
	return nil
}

// UserByEmail implements domain.UserRepository.
func (r *UserRepository) UserByEmail(ctx context.Context, email domain.Email) (*domain.User, error) {
	if err := checkContext(ctx, userStore); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.byEmail[email]
	if !ok {
		return nil, errUserNotFound()
	}
	return domain.RestoreUser(r.byID[id]), nil
}

// UserByID implements domain.UserRepository.
func (r *UserRepository) UserByID(ctx context.Context, id domain.UserID) (*domain.User, error) {
	if err := checkContext(ctx, userStore); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.byID[id]
	if !ok || s.Status == domain.UserErased {
		return nil, errUserNotFound()
	}
	return domain.RestoreUser(s), nil
}

// EraseUser implements domain.UserRepository, like postgres.UserRepository;
// the sessions' addresses are erased by the SessionRepository that shares
// the users (see SessionRepository.eraseClient).
func (r *UserRepository) EraseUser(ctx context.Context, id domain.UserID, now time.Time) error {
	if err := checkContext(ctx, userStore); err != nil {
		return err
	}
	r.mu.Lock()
	s, ok := r.byID[id]
	if !ok || s.Status == domain.UserErased {
		r.mu.Unlock()
		return errUserNotFound()
	}
	delete(r.byEmail, s.Email)
	s.Email = domain.Email("erased:" + string(id))
	s.PasswordHash, s.Status, s.EmailVerifiedAt, s.UpdatedAt = "", domain.UserErased, time.Time{}, storedTime(now)
	r.byID[id] = s
	hooks := r.onErase
	r.mu.Unlock()
	for _, h := range hooks {
		h(id)
	}
	return nil
}

// UpdateUser implements domain.UserRepository. Like a row lock, the user's
// lock is held while update runs: update may read the repository, but
// updating the same user from inside it deadlocks, as it would in
// PostgreSQL.
func (r *UserRepository) UpdateUser(ctx context.Context, id domain.UserID, update func(*domain.User) error) error {
	if err := checkContext(ctx, userStore); err != nil {
		return err
	}
	r.mu.Lock()
	l, ok := r.locks[id]
	erased := r.byID[id].Status == domain.UserErased
	r.mu.Unlock()
	if !ok || erased {
		return errUserNotFound()
	}
	if err := l.lock(ctx, userStore); err != nil {
		return err
	}
	defer l.unlock()

	r.mu.Lock()
	before := r.byID[id]
	r.mu.Unlock()
	u := domain.RestoreUser(before)
	if err := update(u); err != nil {
		return err
	}
	after := storedUser(u.Snapshot())
	if after == before {
		return nil
	}
	if after.ID != before.ID {
		return domain.Errorf(domain.CodeInternal, "update changed the user id")
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if after.Email != before.Email {
		if _, taken := r.byEmail[after.Email]; taken {
			return domain.Errorf(domain.CodeConflict, "email already registered")
		}
		delete(r.byEmail, before.Email)
		r.byEmail[after.Email] = id
	}
	r.byID[id] = after
	return nil
}

// exists reports whether a user has the id and is not erased, for the
// stores of its sessions and codes. They call it holding their own lock,
// which EraseUser's hooks take after the user is marked erased: a session
// or code written after exists returned true is then erased by the hook.
func (r *UserRepository) exists(id domain.UserID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.byID[id]
	return ok && s.Status != domain.UserErased
}

func storedUser(s domain.UserSnapshot) domain.UserSnapshot {
	s.CreatedAt = storedTime(s.CreatedAt)
	s.UpdatedAt = storedTime(s.UpdatedAt)
	s.PasswordChangedAt = storedTime(s.PasswordChangedAt)
	s.EmailVerifiedAt = storedTime(s.EmailVerifiedAt)
	return s
}

// whenErased registers a store to tell when a user is erased.
func (r *UserRepository) whenErased(f func(domain.UserID)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onErase = append(r.onErase, f)
}

func errUserNotFound() error {
	return domain.Errorf(domain.CodeNotFound, "user not found")
}
