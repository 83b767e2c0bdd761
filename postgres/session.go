package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

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
//
// The user's row is share-locked while the session is written, so that an
// EraseUser waits for it and then clears its address and user agent, or
// has erased the user first and no session is written.
func (r *SessionRepository) CreateSession(ctx context.Context, s *domain.Session, first domain.RefreshToken) error {
	if err := s.CheckRefreshToken(first); err != nil {
		return err
	}
	snap := s.Snapshot()
	if !domain.ValidID(string(snap.UserID)) {
		return errSessionUserNotFound(nil) // no user has such an id
	}
	var created int64
	err := r.db.atomic(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `
			WITH u AS (
				SELECT id FROM users WHERE id = $2 AND status <> 'erased' FOR SHARE
			), s AS (
				INSERT INTO sessions (id, user_id, client_id, ip, user_agent, created_at, expires_at, authenticated_at)
				SELECT $1::uuid, id, $3::text, NULLIF($4::text, ''), NULLIF($5::text, ''), $6::timestamptz, $7::timestamptz, $11::timestamptz FROM u
				RETURNING id
			)
			INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)
			SELECT $8, id, $9, $10 FROM s`,
			string(snap.ID), string(snap.UserID), snap.ClientID, snap.IP, snap.UserAgent,
			dbTime(snap.CreatedAt), dbTime(snap.ExpiresAt),
			first.Hash, dbTime(first.CreatedAt), dbTime(first.ExpiresAt), dbTime(snap.AuthenticatedAt))
		created = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("create session: %w", sessionError(err))
	}
	if created == 0 {
		return errSessionUserNotFound(nil) // none, or erased
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

const sessionColumns = `s.id, s.user_id, s.client_id, coalesce(s.ip, ''), coalesce(s.user_agent, ''), s.created_at, s.expires_at, s.revoked_at, s.authenticated_at`

// sessionRow scans the sessionColumns into a snapshot.
type sessionRow struct {
	snap      domain.SessionSnapshot
	id, user  string
	revokedAt *time.Time
}

func (r *sessionRow) targets() []any {
	return []any{&r.id, &r.user, &r.snap.ClientID, &r.snap.IP, &r.snap.UserAgent, &r.snap.CreatedAt, &r.snap.ExpiresAt, &r.revokedAt, &r.snap.AuthenticatedAt}
}

func (r *sessionRow) session() *domain.Session {
	r.snap.ID, r.snap.UserID = domain.SessionID(r.id), domain.UserID(r.user)
	r.snap.CreatedAt, r.snap.ExpiresAt, r.snap.AuthenticatedAt = r.snap.CreatedAt.UTC(), r.snap.ExpiresAt.UTC(), r.snap.AuthenticatedAt.UTC()
	r.snap.RevokedAt = fromNullTime(r.revokedAt)
	return domain.RestoreSession(r.snap)
}

// RefreshToken implements domain.SessionRepository.
func (r *SessionRepository) RefreshToken(ctx context.Context, hash []byte) (domain.RefreshToken, *domain.Session, error) {
	var (
		tok    = domain.RefreshToken{Hash: hash}
		usedAt *time.Time
		row    sessionRow
	)
	err := r.db.conn(ctx).QueryRow(ctx, `
		SELECT t.created_at, t.expires_at, t.used_at, `+sessionColumns+`
		FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
		WHERE t.token_hash = $1`, hash).Scan(append([]any{&tok.CreatedAt, &tok.ExpiresAt, &usedAt}, row.targets()...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.RefreshToken{}, nil, domain.Errorf(domain.CodeNotFound, "refresh token not found")
	}
	if err != nil {
		return domain.RefreshToken{}, nil, fmt.Errorf("load refresh token: %w", sessionError(err))
	}
	s := row.session()
	tok.SessionID = s.ID()
	tok.CreatedAt, tok.ExpiresAt, tok.UsedAt = tok.CreatedAt.UTC(), tok.ExpiresAt.UTC(), fromNullTime(usedAt)
	return tok, s, nil
}

// RefreshGrant implements domain.SessionRepository: one query joins the
// token, its session and the session's user.
func (r *SessionRepository) RefreshGrant(ctx context.Context, hash []byte) (domain.RefreshGrant, error) {
	var (
		g      = domain.RefreshGrant{Token: domain.RefreshToken{Hash: hash}}
		usedAt *time.Time
		row    sessionRow
		user   nullUserRow
	)
	err := r.db.conn(ctx).QueryRow(ctx, `
		SELECT t.created_at, t.expires_at, t.used_at, `+sessionColumns+`, `+prefixed("u.", userColumns)+`
		FROM refresh_tokens t
		JOIN sessions s ON s.id = t.session_id
		LEFT JOIN users u ON u.id = s.user_id AND u.status <> 'erased'
		WHERE t.token_hash = $1`, hash).Scan(slices.Concat([]any{&g.Token.CreatedAt, &g.Token.ExpiresAt, &usedAt}, row.targets(), user.targets())...)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.RefreshGrant{}, domain.Errorf(domain.CodeNotFound, "refresh token not found")
	}
	if err != nil {
		return domain.RefreshGrant{}, fmt.Errorf("load refresh token: %w", sessionError(err))
	}
	g.Session = row.session()
	g.Token.SessionID = g.Session.ID()
	g.Token.CreatedAt, g.Token.ExpiresAt, g.Token.UsedAt = g.Token.CreatedAt.UTC(), g.Token.ExpiresAt.UTC(), fromNullTime(usedAt)
	g.User = user.user()
	return g, nil
}

// RotateRefreshToken implements domain.SessionRepository with one
// statement: the claim of the old token (a conditional update, so of
// concurrent rotations one wins, the others finding it used) and the insert
// of its successor. In a transaction it runs in a savepoint.
func (r *SessionRepository) RotateRefreshToken(ctx context.Context, hash []byte, next domain.RefreshToken) error {
	if len(next.Hash) != sha256.Size || !domain.ValidID(string(next.SessionID)) {
		return domain.Errorf(domain.CodeInternal, "rotate refresh token: malformed successor")
	}
	now := dbTime(next.CreatedAt)
	// One statement that raises no error a caller expects, so it needs no
	// savepoint (two round trips fewer on the hottest write there is): the
	// claim only happens when the successor's hash is free, and the insert
	// skips a hash taken meanwhile, which 256 random bits make moot.
	var rotated int
	err := r.db.conn(ctx).QueryRow(ctx, `
		WITH claimed AS (
			UPDATE refresh_tokens SET used_at = $3, replaced_by = $4
			WHERE token_hash = $1 AND session_id = $2 AND used_at IS NULL AND expires_at > $3
				AND NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = $4)
			RETURNING session_id
		), successor AS (
			INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)
			SELECT $4, session_id, $3, $5 FROM claimed
			ON CONFLICT ON CONSTRAINT refresh_tokens_pkey DO NOTHING
			RETURNING 1
		)
		SELECT count(*) FROM successor`,
		hash, string(next.SessionID), now, next.Hash, dbTime(next.ExpiresAt)).Scan(&rotated)
	if err != nil {
		return fmt.Errorf("rotate refresh token: %w", sessionError(err))
	}
	if rotated == 1 {
		return nil
	}
	// Nothing was claimed: tell why.
	var sameSession bool
	err = r.db.conn(ctx).QueryRow(ctx,
		`SELECT session_id = $2 FROM refresh_tokens WHERE token_hash = $1`,
		hash, string(next.SessionID)).Scan(&sameSession)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Errorf(domain.CodeNotFound, "refresh token not found")
	}
	if err != nil {
		return fmt.Errorf("rotate refresh token: %w", sessionError(err))
	}
	if !sameSession {
		return domain.Errorf(domain.CodeInternal, "rotate refresh token: successor belongs to another session")
	}
	return domain.Errorf(domain.CodeConflict, "refresh token used or expired")
}

// Session implements domain.SessionRepository.
func (r *SessionRepository) Session(ctx context.Context, id domain.SessionID) (*domain.Session, error) {
	if !domain.ValidID(string(id)) {
		return nil, domain.Errorf(domain.CodeNotFound, "session not found")
	}
	var row sessionRow
	err := r.db.conn(ctx).QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions s WHERE s.id = $1`, string(id)).Scan(row.targets()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domain.Errorf(domain.CodeNotFound, "session not found")
	}
	if err != nil {
		return nil, fmt.Errorf("load session: %w", sessionError(err))
	}
	return row.session(), nil
}

// RevokeSession implements domain.SessionRepository.
func (r *SessionRepository) RevokeSession(ctx context.Context, id domain.SessionID, reason string, now time.Time) (bool, error) {
	if !domain.ValidID(string(id)) {
		return false, domain.Errorf(domain.CodeNotFound, "session not found")
	}
	var revoked, exists bool
	err := r.db.conn(ctx).QueryRow(ctx, `
		WITH r AS (
			UPDATE sessions SET revoked_at = $2, revoke_reason = $3
			WHERE id = $1 AND revoked_at IS NULL
			RETURNING 1
		)
		SELECT EXISTS (SELECT 1 FROM r), EXISTS (SELECT 1 FROM sessions WHERE id = $1)`,
		string(id), dbTime(now), reason).Scan(&revoked, &exists)
	if err != nil {
		return false, fmt.Errorf("revoke session: %w", sessionError(err))
	}
	if !exists {
		return false, domain.Errorf(domain.CodeNotFound, "session not found")
	}
	return revoked, nil
}

// RevokeUserSessions implements domain.SessionRepository.
func (r *SessionRepository) RevokeUserSessions(ctx context.Context, user domain.UserID, except domain.SessionID, reason string, now time.Time) ([]domain.SessionID, error) {
	if !domain.ValidID(string(user)) {
		return nil, nil
	}
	var keep *string
	if except != "" {
		keep = (*string)(&except)
	}
	rows, err := r.db.conn(ctx).Query(ctx, `
		UPDATE sessions SET revoked_at = $2, revoke_reason = $3
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2::timestamptz - interval '1 day'
			AND ($4::text IS NULL OR id::text <> $4)
		RETURNING id`, string(user), dbTime(now), reason, keep)
	if err != nil {
		return nil, fmt.Errorf("revoke user sessions: %w", sessionError(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("revoke user sessions: %w", sessionError(err))
	}
	out := make([]domain.SessionID, len(ids))
	for i, id := range ids {
		out[i] = domain.SessionID(id)
	}
	return out, nil
}

// Reauthenticate implements domain.SessionRepository.
func (r *SessionRepository) Reauthenticate(ctx context.Context, id domain.SessionID, now time.Time) error {
	if !domain.ValidID(string(id)) {
		return domain.Errorf(domain.CodeNotFound, "session not found")
	}
	tag, err := r.db.conn(ctx).Exec(ctx, `UPDATE sessions SET authenticated_at = $2 WHERE id = $1`, string(id), dbTime(now))
	if err != nil {
		return fmt.Errorf("reauthenticate session: %w", sessionError(err))
	}
	if tag.RowsAffected() == 0 {
		return domain.Errorf(domain.CodeNotFound, "session not found")
	}
	return nil
}

// RevokedSince implements domain.SessionRepository, through the partial
// index on revoked_at.
func (r *SessionRepository) RevokedSince(ctx context.Context, since time.Time) ([]domain.SessionID, error) {
	rows, err := r.db.conn(ctx).Query(ctx,
		`SELECT id FROM sessions WHERE revoked_at IS NOT NULL AND revoked_at >= $1`, dbTime(since))
	if err != nil {
		return nil, fmt.Errorf("load revoked sessions: %w", sessionError(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("load revoked sessions: %w", sessionError(err))
	}
	out := make([]domain.SessionID, len(ids))
	for i, id := range ids {
		out[i] = domain.SessionID(id)
	}
	return out, nil
}
