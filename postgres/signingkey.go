package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authworker/authworker/domain"
)

const signingKeyStore = "signing key store"

// SigningKeysChannel is the channel UpdateSigningKeys notifies when it
// changed the keys.
const SigningKeysChannel = "authworker_signing_keys"

// SigningKeysLockID is the key of the transaction-level advisory lock
// (pg_advisory_xact_lock) that UpdateSigningKeys holds, serialising key
// management across workers. It is "authkeys" in ASCII, read as a
// big-endian int64; it must differ from every other advisory lock taken in
// the database, goose's migration lock (4097083626) included.
const SigningKeysLockID int64 = 0x617574686b657973

// SigningKeyRepository stores signing keys in the signing_keys table.
//
// It never joins a transaction of the caller's: SigningKeys runs on the
// pool, and UpdateSigningKeys runs a transaction of its own even when the
// context carries one. Key management is not part of any request, and the
// advisory lock it holds must be released as soon as the keys are stored,
// not when some request commits.
//
// UpdateSigningKeys notifies SigningKeysChannel when it stores a change, at
// commit; ListenSigningKeys turns that into a reload on every worker.
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
func (r *SigningKeyRepository) UpdateSigningKeys(ctx context.Context, now time.Time, update func(context.Context, []domain.SigningKey) ([]domain.SigningKey, error)) error {
	return r.db.InTx(r.db.detached(ctx), func(ctx context.Context) error {
		q := r.db.conn(ctx)
		if _, err := q.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, SigningKeysLockID); err != nil {
			return fmt.Errorf("update signing keys: lock: %w", storeError(signingKeyStore, err))
		}
		// Read committed: this statement's snapshot is taken after the lock
		// is granted, so it sees what the previous holder committed.
		keys, err := loadSigningKeys(ctx, q, now)
		if err != nil {
			return fmt.Errorf("update signing keys: load: %w", storeError(signingKeyStore, err))
		}
		changed, err := update(ctx, keys)
		if err != nil {
			return err
		}
		for _, k := range changed {
			if k.ID == "" || k.Algorithm == "" || len(k.PublicKey) == 0 || len(k.SealedPrivateKey) == 0 {
				return domain.Errorf(domain.CodeInternal, "incomplete signing key %q", k.ID)
			}
		}
		save := statementError("update signing keys: save")
		for _, k := range changed {
			err := r.db.later(ctx, save, `INSERT INTO signing_keys (`+signingKeyColumns+`)
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
			if err != nil {
				return err
			}
		}
		if err := r.db.later(ctx, save, `DELETE FROM signing_keys WHERE publish_until <= $1`, dbTime(now)); err != nil {
			return err
		}
		if len(changed) > 0 {
			return r.db.later(ctx, save, `SELECT pg_notify($1, '')`, SigningKeysChannel)
		}
		return nil
	})
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
