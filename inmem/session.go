package inmem

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"

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
	r := &SessionRepository{
		users:    users,
		sessions: make(map[domain.SessionID]domain.SessionSnapshot),
		tokens:   make(map[string]domain.RefreshToken),
	}
	users.whenErased(r.eraseClient)
	return r
}

// eraseClient forgets the address and user agent of an erased user's
// sessions.
func (r *SessionRepository) eraseClient(user domain.UserID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, s := range r.sessions {
		if s.UserID == user {
			s.IP, s.UserAgent = "", ""
			r.sessions[id] = s
		}
	}
}

// RefreshToken implements domain.SessionRepository.
func (r *SessionRepository) RefreshToken(ctx context.Context, hash []byte) (domain.RefreshToken, *domain.Session, error) {
	if err := checkContext(ctx, sessionStore); err != nil {
		return domain.RefreshToken{}, nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tokens[string(hash)]
	if !ok {
		return domain.RefreshToken{}, nil, domain.Errorf(domain.CodeNotFound, "refresh token not found")
	}
	return storedToken(t), domain.RestoreSession(r.sessions[t.SessionID]), nil
}

// RotateRefreshToken implements domain.SessionRepository, like
// postgres.SessionRepository.
func (r *SessionRepository) RotateRefreshToken(ctx context.Context, hash []byte, next domain.RefreshToken) error {
	if err := checkContext(ctx, sessionStore); err != nil {
		return err
	}
	if len(next.Hash) != 32 || !domain.ValidID(string(next.SessionID)) {
		return domain.Errorf(domain.CodeInternal, "rotate refresh token: malformed successor")
	}
	next = storedToken(next)
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tokens[string(hash)]
	if !ok {
		return domain.Errorf(domain.CodeNotFound, "refresh token not found")
	}
	if t.SessionID != next.SessionID {
		return domain.Errorf(domain.CodeInternal, "rotate refresh token: successor belongs to another session")
	}
	if t.Used() || !next.CreatedAt.Before(t.ExpiresAt) {
		return domain.Errorf(domain.CodeConflict, "refresh token used or expired")
	}
	if _, taken := r.tokens[string(next.Hash)]; taken {
		return domain.Errorf(domain.CodeConflict, "refresh token already exists")
	}
	t.UsedAt = next.CreatedAt
	r.tokens[string(hash)] = t
	r.tokens[string(next.Hash)] = next
	return nil
}

// Session implements domain.SessionRepository.
func (r *SessionRepository) Session(ctx context.Context, id domain.SessionID) (*domain.Session, error) {
	if err := checkContext(ctx, sessionStore); err != nil {
		return nil, err
	}
	s, ok := r.Stored(id)
	if !ok {
		return nil, domain.Errorf(domain.CodeNotFound, "session not found")
	}
	return s, nil
}

// RevokeSession implements domain.SessionRepository.
func (r *SessionRepository) RevokeSession(ctx context.Context, id domain.SessionID, _ string, now time.Time) (bool, error) {
	if err := checkContext(ctx, sessionStore); err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sessions[id]
	if !ok {
		return false, domain.Errorf(domain.CodeNotFound, "session not found")
	}
	if !s.RevokedAt.IsZero() {
		return false, nil
	}
	s.RevokedAt = storedTime(now)
	r.sessions[id] = s
	return true, nil
}

// RevokeUserSessions implements domain.SessionRepository.
func (r *SessionRepository) RevokeUserSessions(ctx context.Context, user domain.UserID, except domain.SessionID, _ string, now time.Time) ([]domain.SessionID, error) {
	if err := checkContext(ctx, sessionStore); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []domain.SessionID
	for id, s := range r.sessions {
		if s.UserID == user && id != except && s.RevokedAt.IsZero() && s.ExpiresAt.After(now.Add(-24*time.Hour)) {
			s.RevokedAt = storedTime(now)
			r.sessions[id] = s
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Reauthenticate implements domain.SessionRepository.
func (r *SessionRepository) Reauthenticate(ctx context.Context, id domain.SessionID, now time.Time) error {
	if err := checkContext(ctx, sessionStore); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sessions[id]
	if !ok {
		return domain.Errorf(domain.CodeNotFound, "session not found")
	}
	s.AuthenticatedAt = storedTime(now)
	r.sessions[id] = s
	return nil
}

// RevokedSince implements domain.SessionRepository.
func (r *SessionRepository) RevokedSince(ctx context.Context, since time.Time) ([]domain.SessionID, error) {
	if err := checkContext(ctx, sessionStore); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []domain.SessionID
	for id, s := range r.sessions {
		if !s.RevokedAt.IsZero() && !s.RevokedAt.Before(storedTime(since)) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
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
	snap.CreatedAt, snap.ExpiresAt, snap.AuthenticatedAt = storedTime(snap.CreatedAt), storedTime(snap.ExpiresAt), storedTime(snap.AuthenticatedAt)
	tok := storedToken(first)

	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.users.exists(snap.UserID) { // under r.mu: see UserRepository.exists
		return domain.Errorf(domain.CodeNotFound, "user not found")
	}
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

// Stored returns the stored session with the id, for assertions in tests.
func (r *SessionRepository) Stored(id domain.SessionID) (*domain.Session, bool) {
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
	t.CreatedAt, t.ExpiresAt, t.UsedAt = storedTime(t.CreatedAt), storedTime(t.ExpiresAt), storedTime(t.UsedAt)
	return t
}

// RefreshGrant implements domain.SessionRepository, like
// postgres.SessionRepository.
func (r *SessionRepository) RefreshGrant(ctx context.Context, hash []byte) (domain.RefreshGrant, error) {
	tok, s, err := r.RefreshToken(ctx, hash)
	if err != nil {
		return domain.RefreshGrant{}, err
	}
	u, err := r.users.UserByID(ctx, s.UserID())
	if domain.ErrorCode(err) == domain.CodeNotFound {
		u, err = nil, nil
	}
	if err != nil {
		return domain.RefreshGrant{}, err
	}
	return domain.RefreshGrant{Token: tok, Session: s, User: u}, nil
}
