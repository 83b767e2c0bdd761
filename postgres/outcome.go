package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authworker/authworker/domain"
)

const outcomeStore = "outcome store"

// OutcomeRepository stores request outcomes in the request_outcomes table.
type OutcomeRepository struct {
	db *DB
}

var _ domain.OutcomeRepository = (*OutcomeRepository)(nil)

// NewOutcomeRepository returns an OutcomeRepository on db.
func NewOutcomeRepository(db *DB) *OutcomeRepository {
	return &OutcomeRepository{db: db}
}

// Outcome implements domain.OutcomeRepository. It returns CodeInvalid when
// the client id or the request id is empty, longer than 255
// characters, or not text (invalid UTF-8 or NUL), as SaveOutcome would not
// store it.
func (r *OutcomeRepository) Outcome(ctx context.Context, key domain.RequestKey, now time.Time) (domain.Outcome, error) {
	if err := key.Validate(); err != nil {
		return domain.Outcome{}, err
	}
	var (
		o    = domain.Outcome{Key: key}
		code string
	)
	err := r.db.conn(ctx).QueryRow(ctx, `
		SELECT code, request_digest, reply, created_at, expires_at FROM request_outcomes
		WHERE client_id = $1 AND request_id = $2 AND expires_at > $3`,
		key.ClientID, key.RequestID, dbTime(now)).Scan(&code, &o.RequestDigest, &o.Reply, &o.CreatedAt, &o.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Outcome{}, domain.Errorf(domain.CodeNotFound, "outcome not found")
	}
	if err != nil {
		return domain.Outcome{}, fmt.Errorf("load outcome: %w", storeError(outcomeStore, err))
	}
	o.Code = domain.Code(code)
	o.CreatedAt, o.ExpiresAt = o.CreatedAt.UTC(), o.ExpiresAt.UTC()
	return o, nil
}

// SaveOutcome implements domain.OutcomeRepository.
//
// An outcome stored for the key that expired at o.CreatedAt is replaced,
// not a conflict: Outcome no longer returns it, so a request retried after
// its outcome expired, but before DeleteExpiredOutcomes removed it, is
// handled afresh instead of being caught between CodeNotFound from Outcome
// and CodeConflict from here.
//
// In a transaction of DB.InTx the statement is sent with the next one, or
// with COMMIT (see DB.later): a conflict then fails that statement, or the
// commit, with CodeConflict, and the transaction rolls back. The conflict
// is a unique violation raised by the statement itself, so that a COMMIT
// sent after it does not run. While another transaction has saved an
// outcome for the key and not yet ended, SaveOutcome waits for it:
// CodeConflict if it commits, the outcome stored if it rolls back.
//
// It returns CodeInvalid for a key Outcome refuses and CodeInternal for an
// outcome without a reply.
func (r *OutcomeRepository) SaveOutcome(ctx context.Context, o domain.Outcome) error {
	if err := o.Key.Validate(); err != nil {
		return err
	}
	if len(o.Reply) == 0 {
		return domain.Errorf(domain.CodeInternal, "outcome without a reply")
	}
	return r.db.later(ctx, saveOutcomeError, `
		WITH saved AS (
			INSERT INTO request_outcomes AS o (client_id, request_id, code, request_digest, reply, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT ON CONSTRAINT request_outcomes_pkey DO UPDATE SET
				code = EXCLUDED.code,
				request_digest = EXCLUDED.request_digest,
				reply = EXCLUDED.reply,
				created_at = EXCLUDED.created_at,
				expires_at = EXCLUDED.expires_at
			WHERE o.expires_at <= EXCLUDED.created_at
			RETURNING 1
		)
		SELECT request_outcome_saved(count(*)) FROM saved`,
		o.Key.ClientID, o.Key.RequestID, string(o.Code), bytes.Clone(o.RequestDigest), bytes.Clone(o.Reply),
		dbTime(o.CreatedAt), dbTime(o.ExpiresAt))
}

// saveOutcomeError translates SaveOutcome's error: the unique violation
// that request_outcome_saved raises when an outcome is stored already is
// CodeConflict.
func saveOutcomeError(err error) error {
	if code, constraint := sqlState(err); code == uniqueViolation && constraint == "request_outcomes_pkey" {
		return &domain.Error{Code: domain.CodeConflict, Message: "outcome already stored", Err: err}
	}
	return fmt.Errorf("save outcome: %w", storeError(outcomeStore, err))
}

// DeleteExpiredOutcomes implements domain.OutcomeRepository. It skips rows
// locked by a transaction still open, such as a request replacing an
// expired outcome, so that workers purging at once neither wait for
// requests nor for each other. It returns CodeInternal when limit is not
// positive.
func (r *OutcomeRepository) DeleteExpiredOutcomes(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, domain.Errorf(domain.CodeInternal, "delete expired outcomes: limit %d is not positive", limit)
	}
	// The batch is found through the expires_at index, then deleted by
	// row address (a TID scan).
	tag, err := r.db.conn(ctx).Exec(ctx, `
		DELETE FROM request_outcomes WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM request_outcomes WHERE expires_at <= $1
			LIMIT $2 FOR UPDATE SKIP LOCKED))`,
		dbTime(now), limit)
	if err != nil {
		return 0, fmt.Errorf("delete expired outcomes: %w", storeError(outcomeStore, err))
	}
	return int(tag.RowsAffected()), nil
}
