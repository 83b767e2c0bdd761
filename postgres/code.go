package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authworker/authworker/domain"
)

const codeStore = "code store"

// CodeRepository stores one-time codes in the one_time_codes table, one
// per user and purpose.
type CodeRepository struct {
	db *DB
}

var _ domain.CodeRepository = (*CodeRepository)(nil)

// NewCodeRepository returns a CodeRepository on db.
func NewCodeRepository(db *DB) *CodeRepository {
	return &CodeRepository{db: db}
}

// SaveCode implements domain.CodeRepository. In a transaction it runs in a
// savepoint, so that a missing user leaves the transaction usable. The
// user's row is share-locked while the code is written, so that an
// EraseUser waits for it and then deletes the code, or has erased the user
// first and no code is written.
func (r *CodeRepository) SaveCode(ctx context.Context, c domain.OneTimeCode) error {
	if !domain.ValidID(string(c.UserID)) {
		return errUserNotFound()
	}
	var saved int64
	err := r.db.atomic(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `
			INSERT INTO one_time_codes (user_id, purpose, code_hash, created_at, expires_at, attempts)
			SELECT id, $2::text, $3::bytea, $4::timestamptz, $5::timestamptz, 0
			FROM users WHERE id = $1 AND status <> 'erased' FOR SHARE
			ON CONFLICT ON CONSTRAINT one_time_codes_pkey DO UPDATE SET
				code_hash = EXCLUDED.code_hash, created_at = EXCLUDED.created_at,
				expires_at = EXCLUDED.expires_at, attempts = 0`,
			string(c.UserID), string(c.Purpose), c.Hash, dbTime(c.CreatedAt), dbTime(c.ExpiresAt))
		saved = tag.RowsAffected()
		return err
	})
	if code, constraint := sqlState(err); code == foreignKeyViolation && constraint == "one_time_codes_user_id_fkey" {
		return errUserNotFound()
	}
	if err != nil {
		return fmt.Errorf("save code: %w", storeError(codeStore, err))
	}
	if saved == 0 {
		return errUserNotFound() // none, or erased
	}
	return nil
}

// Code implements domain.CodeRepository.
func (r *CodeRepository) Code(ctx context.Context, user domain.UserID, purpose domain.CodePurpose) (domain.OneTimeCode, error) {
	c := domain.OneTimeCode{UserID: user, Purpose: purpose}
	if !domain.ValidID(string(user)) {
		return c, domain.Errorf(domain.CodeNotFound, "code not found")
	}
	err := r.db.conn(ctx).QueryRow(ctx, `
		SELECT code_hash, created_at, expires_at, attempts FROM one_time_codes WHERE user_id = $1 AND purpose = $2`,
		string(user), string(purpose)).Scan(&c.Hash, &c.CreatedAt, &c.ExpiresAt, &c.Attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, domain.Errorf(domain.CodeNotFound, "code not found")
	}
	if err != nil {
		return c, fmt.Errorf("load code: %w", storeError(codeStore, err))
	}
	c.CreatedAt, c.ExpiresAt = c.CreatedAt.UTC(), c.ExpiresAt.UTC()
	return c, nil
}

// ConsumeCode implements domain.CodeRepository with one conditional delete.
func (r *CodeRepository) ConsumeCode(ctx context.Context, user domain.UserID, purpose domain.CodePurpose, hash []byte, now time.Time) (bool, error) {
	if !domain.ValidID(string(user)) {
		return false, nil
	}
	tag, err := r.db.conn(ctx).Exec(ctx, `
		DELETE FROM one_time_codes
		WHERE user_id = $1 AND purpose = $2 AND code_hash = $3 AND expires_at > $4 AND attempts < $5`,
		string(user), string(purpose), hash, dbTime(now), domain.MaxCodeAttempts)
	if err != nil {
		return false, fmt.Errorf("consume code: %w", storeError(codeStore, err))
	}
	return tag.RowsAffected() == 1, nil
}

// CountFailedAttempt implements domain.CodeRepository.
func (r *CodeRepository) CountFailedAttempt(ctx context.Context, user domain.UserID, purpose domain.CodePurpose) error {
	if !domain.ValidID(string(user)) {
		return nil
	}
	if _, err := r.db.conn(ctx).Exec(ctx,
		`UPDATE one_time_codes SET attempts = attempts + 1 WHERE user_id = $1 AND purpose = $2`,
		string(user), string(purpose)); err != nil {
		return fmt.Errorf("count failed code: %w", storeError(codeStore, err))
	}
	return nil
}
