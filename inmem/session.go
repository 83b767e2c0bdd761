package inmem

import (
	"bytes"
	"context"
	"slices"
	"sync"

	"github.com/authworker/authworker/domain"
)

const sessionStore = "session store"

// SessionRepository is an in-memory domain.SessionRepository. Its sessions
// belong to the users of a UserRepository, as the foreign key in PostgreSQL
// demands.
type SessionRepository struct {
	users *UserRepository

	mu       sync.Mutex
	sessions map[domain.SessionID]domain.SessionSnapshot
	tokens   map[string]domain.RefreshToken // by string(Hash)
}

var _ domain.SessionRepository = (*SessionRepository)(nil)

// NewSessionRepository returns an empty SessionRepository for the users in
// users.
func NewSessionRepository(users *UserRepository) *SessionRepository {
	return &SessionRepository{
		users:    users,
		sessions: make(map[domain.SessionID]domain.SessionSnapshot),
		tokens:   make(map[string]domain.RefreshToken),
	}
}

// CreateSession implements domain.SessionRepository, like
// postgres.SessionRepository.
func (r *SessionRepository) CreateSession(ctx context.Context, s *domain.Session, first domain.RefreshToken) error {
	if err := checkContext(ctx, sessionStore); err != nil {
		return err
	}
	if err := s.CheckRefreshToken(first); err != nil {
		return err
	}
	snap := s.Snapshot()
	if !r.users.exists(snap.UserID) {
		return domain.Errorf(domain.CodeNotFound, "user not found")
	}
	snap.CreatedAt, snap.ExpiresAt = storedTime(snap.CreatedAt), storedTime(snap.ExpiresAt)
	tok := storedToken(first)

	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.sessions[snap.ID]; ok {
		return domain.Errorf(domain.CodeConflict, "session already exists")
	}
	if _, ok := r.tokens[string(tok.Hash)]; ok {
		return domain.Errorf(domain.CodeConflict, "refresh token already exists")
	}
	r.sessions[snap.ID] = snap
	r.tokens[string(tok.Hash)] = tok
	return nil
}

// Session returns the stored session with the id, for assertions in tests.
func (r *SessionRepository) Session(id domain.SessionID) (*domain.Session, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sessions[id]
	if !ok {
		return nil, false
	}
	return domain.RestoreSession(s), true
}

// RefreshTokens returns copies of the session's stored refresh tokens,
// oldest first, for assertions in tests.
func (r *SessionRepository) RefreshTokens(id domain.SessionID) []domain.RefreshToken {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ts []domain.RefreshToken
	for _, t := range r.tokens {
		if t.SessionID == id {
			ts = append(ts, storedToken(t))
		}
	}
	slices.SortFunc(ts, func(a, b domain.RefreshToken) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(a.Hash, b.Hash)
	})
	return ts
}

// storedToken is a deep copy of t as PostgreSQL would return it.
func storedToken(t domain.RefreshToken) domain.RefreshToken {
	t.Hash = bytes.Clone(t.Hash)
	t.CreatedAt, t.ExpiresAt = storedTime(t.CreatedAt), storedTime(t.ExpiresAt)
	return t
}
