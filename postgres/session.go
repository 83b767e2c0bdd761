package postgres

import (
	"context"
	"fmt"

	"github.com/authworker/authworker/domain"
)

const sessionStore = "session store"

// SessionRepository stores sessions in the sessions table and their refresh
// tokens, by hash, in the refresh_tokens table.
type SessionRepository struct {
	db *DB
}

var _ domain.SessionRepository = (*SessionRepository)(nil)

// NewSessionRepository returns a SessionRepository on db.
func NewSessionRepository(db *DB) *SessionRepository {
	return &SessionRepository{db: db}
}

// CreateSession implements domain.SessionRepository. Both rows are written
// by one statement, hence atomically and in one round trip. An empty IP or
// user agent is stored as NULL. It returns CodeInternal when the token does
// not belong to the session, its hash is not a SHA-256, or the session id is
// not a UUID. In a transaction it runs in a savepoint, so that a conflict or
// a missing user leaves the transaction usable.
func (r *SessionRepository) CreateSession(ctx context.Context, s *domain.Session, first domain.RefreshToken) error {
	if err := s.CheckRefreshToken(first); err != nil {
		return err
	}
	snap := s.Snapshot()
	if !domain.ValidID(string(snap.UserID)) {
		return errSessionUserNotFound(nil) // no user has such an id
	}
	err := r.db.atomic(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `
			WITH s AS (
				INSERT INTO sessions (id, user_id, client_id, ip, user_agent, created_at, expires_at)
				VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), $6, $7)
				RETURNING id
			)
			INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)
			SELECT $8, id, $9, $10 FROM s`,
			string(snap.ID), string(snap.UserID), snap.ClientID, snap.IP, snap.UserAgent,
			dbTime(snap.CreatedAt), dbTime(snap.ExpiresAt),
			first.Hash, dbTime(first.CreatedAt), dbTime(first.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("create session: %w", sessionError(err))
	}
	return nil
}

func errSessionUserNotFound(cause error) error {
	return &domain.Error{Code: domain.CodeNotFound, Message: "user not found", Err: cause}
}

// sessionError translates err, naming the constraints a caller can break.
func sessionError(err error) error {
	code, constraint := sqlState(err)
	switch {
	case code == foreignKeyViolation && constraint == "sessions_user_id_fkey":
		return errSessionUserNotFound(err)
	case code == uniqueViolation && constraint == "sessions_pkey":
		return &domain.Error{Code: domain.CodeConflict, Message: "session already exists", Err: err}
	case code == uniqueViolation && constraint == "refresh_tokens_pkey":
		return &domain.Error{Code: domain.CodeConflict, Message: "refresh token already exists", Err: err}
	}
	return storeError(sessionStore, err)
}
