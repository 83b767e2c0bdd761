package postgres

import (
	"context"
	"math"

	"github.com/authworker/authworker/domain"
)

// Pending returns the messages waiting in the outbox, in the order a relay
// publishes them, values opened: what the conformance suite reads.
func (o *Outbox) Pending(ctx context.Context) ([]domain.OutboxMessage, error) {
	rows, err := fetchOutbox(ctx, o.db.pool, allShards(), math.MaxInt32)
	if err != nil {
		return nil, err
	}
	msgs := make([]domain.OutboxMessage, len(rows))
	for i, r := range rows {
		if msgs[i], err = r.open(o.sealer); err != nil {
			return nil, err
		}
	}
	return msgs, nil
}

// LegacyOutboxAD is the associated data of rows written before rows had a
// seal nonce.
var LegacyOutboxAD = legacyOutboxAD

// EncodeOutboxHeaders is how rows store headers.
var EncodeOutboxHeaders = encodeHeaders

// OnCommit registers fn to run once the transaction ctx carries commits; it
// reports false outside a transaction.
func (db *DB) OnCommit(ctx context.Context, fn func()) bool {
	s, ok := db.state(ctx)
	if ok {
		s.onCommit(fn)
	}
	return ok
}

// Exec runs a statement on the transaction ctx carries, or on the pool.
func (db *DB) Exec(ctx context.Context, sql string, args ...any) error {
	_, err := db.conn(ctx).Exec(ctx, sql, args...)
	return err
}
