package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authworker/authworker/domain"
)

const signingKeyStore = "signing key store"

// SigningKeysLockID is the key of the transaction-level advisory lock
// (pg_advisory_xact_lock) that UpdateSigningKeys holds, serialising key
// management across workers. It is "authkeys" in ASCII, read as a
// big-endian int64; it must differ from every other advisory lock taken in
// the database, goose's migration lock (4097083626) included.
const SigningKeysLockID int64 = 0x617574686b657973

// SigningKeyRepository stores signing keys in the signing_keys table.
//
// It never joins a transaction of DB.InTx: it runs on the pool even when
// the context carries one, and UpdateSigningKeys commits on its own. Key
// management is not part of any request, and the advisory lock it holds
// must be released as soon as the keys are stored, not when some request
// commits. Called inside InTx, it uses a second pooled connection.
type SigningKeyRepository struct {
	db *DB
}

var _ domain.SigningKeyRepository = (*SigningKeyRepository)(nil)

// NewSigningKeyRepository returns a SigningKeyRepository on db.
func NewSigningKeyRepository(db *DB) *SigningKeyRepository {
	return &SigningKeyRepository{db: db}
}

const signingKeyColumns = `kid, algorithm, public_key, sealed_private_key, created_at, sign_from, sign_until, publish_until`

// publishedKeys selects the keys published at $1, oldest first. The
// condition is domain.SigningKey.Published.
const publishedKeys = `SELECT ` + signingKeyColumns + ` FROM signing_keys
	WHERE publish_until IS NULL OR publish_until > $1
	ORDER BY created_at, kid`

// SigningKeys implements domain.SigningKeyRepository. Keys created at the
// same instant come in kid order.
func (r *SigningKeyRepository) SigningKeys(ctx context.Context, now time.Time) ([]domain.SigningKey, error) {
	keys, err := loadSigningKeys(ctx, r.db.pool, now)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", storeError(signingKeyStore, err))
	}
	return keys, nil
}

// UpdateSigningKeys implements domain.SigningKeyRepository. The lock is the
// advisory lock SigningKeysLockID, taken first in the transaction and
// released by its end. A returned key without an ID, algorithm or key
// material is rejected with CodeInternal, and nothing is stored.
func (r *SigningKeyRepository) UpdateSigningKeys(ctx context.Context, now time.Time, update func([]domain.SigningKey) ([]domain.SigningKey, error)) error {
	tx, err := r.db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("update signing keys: %w", storeError(signingKeyStore, err))
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit

	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, SigningKeysLockID); err != nil {
		return fmt.Errorf("update signing keys: lock: %w", storeError(signingKeyStore, err))
	}
	// Read committed: this statement's snapshot is taken after the lock is
	// granted, so it sees what the previous holder committed.
	keys, err := loadSigningKeys(ctx, tx, now)
	if err != nil {
		return fmt.Errorf("update signing keys: load: %w", storeError(signingKeyStore, err))
	}
	changed, err := update(keys)
	if err != nil {
		return err
	}
	if len(changed) == 0 {
		return nil
	}
	for _, k := range changed {
		if k.ID == "" || k.Algorithm == "" || len(k.PublicKey) == 0 || len(k.SealedPrivateKey) == 0 {
			return domain.Errorf(domain.CodeInternal, "incomplete signing key %q", k.ID)
		}
	}
	batch := &pgx.Batch{}
	for _, k := range changed {
		batch.Queue(`INSERT INTO signing_keys (`+signingKeyColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (kid) DO UPDATE SET
				algorithm = EXCLUDED.algorithm,
				public_key = EXCLUDED.public_key,
				sealed_private_key = EXCLUDED.sealed_private_key,
				created_at = EXCLUDED.created_at,
				sign_from = EXCLUDED.sign_from,
				sign_until = EXCLUDED.sign_until,
				publish_until = EXCLUDED.publish_until`,
			k.ID, k.Algorithm, k.PublicKey, k.SealedPrivateKey, dbTime(k.CreatedAt),
			dbTime(k.SignFrom), nullTime(k.SignUntil), nullTime(k.PublishUntil))
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("update signing keys: save: %w", storeError(signingKeyStore, err))
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("update signing keys: commit: %w", storeError(signingKeyStore, err))
	}
	return nil
}

func loadSigningKeys(ctx context.Context, q querier, now time.Time) ([]domain.SigningKey, error) {
	rows, err := q.Query(ctx, publishedKeys, dbTime(now))
	if err != nil {
		return nil, err
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.SigningKey, error) {
		var (
			k                       domain.SigningKey
			signUntil, publishUntil *time.Time
		)
		if err := row.Scan(&k.ID, &k.Algorithm, &k.PublicKey, &k.SealedPrivateKey,
			&k.CreatedAt, &k.SignFrom, &signUntil, &publishUntil); err != nil {
			return domain.SigningKey{}, err
		}
		k.CreatedAt, k.SignFrom = k.CreatedAt.UTC(), k.SignFrom.UTC()
		k.SignUntil, k.PublishUntil = fromNullTime(signUntil), fromNullTime(publishUntil)
		return k, nil
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}
