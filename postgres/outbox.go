package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authworker/authworker/domain"
)

const outboxStore = "outbox"

// OutboxShards is how many shards the outbox is cut into by key. An
// OutboxRelay owns whole shards, so that every message of a key goes
// through one relay. It is fixed by the table's check constraint; changing
// it needs an empty outbox.
const OutboxShards = 16

// outboxChannel is the channel Enqueue notifies and relays listen on.
const outboxChannel = "outbox"

// Sealer encrypts outbox values at rest, since notifications carry one-time
// codes; seal.Box implements it.
type Sealer interface {
	Seal(plaintext, ad []byte) []byte
	Open(sealed, ad []byte) ([]byte, error)
}

// Outbox stores messages in the outbox table, in the caller's transaction,
// for an OutboxRelay to publish once it commits.
//
// Values are sealed, bound to the row's id, topic, key and headers, so that
// a value moved to another row, or a row whose headers were changed, does
// not open and is not published. Topic, key, headers and creation time stay
// readable for operators.
type Outbox struct {
	db     *DB
	sealer Sealer
}

var _ domain.Outbox = (*Outbox)(nil)

// NewOutbox returns an Outbox on db that seals values with sealer.
func NewOutbox(db *DB, sealer Sealer) *Outbox {
	return &Outbox{db: db, sealer: sealer}
}

// Enqueue implements domain.Outbox. It takes two round trips in the
// caller's transaction: one draws the ids that the sealed values are bound
// to, the other inserts the rows and notifies the relays. The notification
// is delivered only if the transaction commits, so relays wake at once for
// committed messages and never for rolled-back ones.
//
// PostgreSQL serialises the commits of transactions that notify, on a
// lock held while the commit record is flushed: a cost each Enqueue pays
// once its transaction commits, measured by BenchmarkOutboxEnqueue.
func (o *Outbox) Enqueue(ctx context.Context, msgs ...domain.OutboxMessage) error {
	tx, ok := o.db.tx(ctx)
	if !ok {
		return domain.Errorf(domain.CodeInternal, "outbox enqueue outside a transaction")
	}
	for _, m := range msgs {
		if err := m.Validate(); err != nil {
			return err
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	ids, err := o.nextIDs(ctx, tx, msgs)
	if err != nil {
		return fmt.Errorf("enqueue: %w", storeError(outboxStore, err))
	}
	var (
		shards  = make([]int16, len(msgs))
		topics  = make([]string, len(msgs))
		keys    = make([][]byte, len(msgs))
		headers = make([][]byte, len(msgs))
		values  = make([][]byte, len(msgs))
		created = make([]time.Time, len(msgs))
	)
	for i, m := range msgs {
		shards[i], topics[i], keys[i], created[i] = outboxShard(m.Key), m.Topic, m.Key, dbTime(m.CreatedAt)
		headers[i] = encodeHeaders(m.Headers)
		values[i] = o.sealer.Seal(m.Value, outboxAD(ids[i], m.Topic, m.Key, headers[i]))
	}
	batch := &pgx.Batch{}
	batch.Queue(`INSERT INTO outbox (id, shard, topic, key, headers, value, created_at)
		SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::bytea[], $5::bytea[], $6::bytea[], $7::timestamptz[])`,
		ids, shards, topics, keys, headers, values, created)
	batch.Queue(`SELECT pg_notify($1, '')`, outboxChannel)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("enqueue: %w", storeError(outboxStore, err))
	}
	return nil
}

// keyLockClass is the first key of the transaction-level advisory locks
// that order each key's messages: "okey" in ASCII.
const keyLockClass int32 = 0x6f6b6579

// nextIDs locks the keys of msgs until the transaction ends, then draws one
// id per message from the table's sequence, in increasing order.
//
// The lock is what makes id order commit order for each key: a
// transaction that enqueues for a key waits for any other that did and has
// not ended, and so draws its ids after that one's and commits after it.
// Relays publish a key's messages in id order, so they publish them in the
// order their changes committed, whatever row locks the transactions took.
// Keys are locked in one sorted sweep, by a 32-bit hash: a collision only
// makes two keys wait for each other.
func (o *Outbox) nextIDs(ctx context.Context, q querier, msgs []domain.OutboxMessage) ([]int64, error) {
	hashes := make([]int32, len(msgs))
	for i, m := range msgs {
		h := fnv.New32a()
		h.Write(m.Key) // never fails
		hashes[i] = int32(h.Sum32())
	}
	rows, err := q.Query(ctx, `
		SELECT nextval('outbox_id_seq')
		FROM (SELECT count(pg_advisory_xact_lock($2::int, k))
		      FROM (SELECT DISTINCT unnest($3::int[]) AS k ORDER BY 1) AS keys) AS locked,
		     generate_series(1, $1)`, len(msgs), keyLockClass, hashes)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return ids, nil
}

// outboxShard returns the shard of a key: FNV-1a, modulo OutboxShards.
func outboxShard(key []byte) int16 {
	h := fnv.New32a()
	h.Write(key) // never fails
	return int16(h.Sum32() % OutboxShards)
}

// encodeHeaders writes headers as length-prefixed (key, value) pairs. It
// never returns nil, which pgx would store as NULL.
func encodeHeaders(hs []domain.MessageHeader) []byte {
	b := []byte{}
	for _, h := range hs {
		b = binary.AppendUvarint(b, uint64(len(h.Key)))
		b = append(b, h.Key...)
		b = binary.AppendUvarint(b, uint64(len(h.Value)))
		b = append(b, h.Value...)
	}
	return b
}

var errBadHeaders = errors.New("outbox headers are corrupt")

// decodeHeaders reads what encodeHeaders wrote.
func decodeHeaders(b []byte) ([]domain.MessageHeader, error) {
	var hs []domain.MessageHeader
	next := func() ([]byte, error) {
		n, size := binary.Uvarint(b)
		if size <= 0 || n > uint64(len(b)-size) {
			return nil, errBadHeaders
		}
		field := b[size : size+int(n)]
		b = b[size+int(n):]
		return field, nil
	}
	for len(b) > 0 {
		key, err := next()
		if err != nil {
			return nil, err
		}
		value, err := next()
		if err != nil {
			return nil, err
		}
		hs = append(hs, domain.MessageHeader{Key: string(key), Value: value})
	}
	return hs, nil
}

// outboxAD is the associated data a row's value is sealed with: the row's
// id, topic, key and encoded headers, each but the last length-prefixed.
func outboxAD(id int64, topic string, key, headers []byte) []byte {
	b := make([]byte, 0, 8+2*binary.MaxVarintLen64+len(topic)+len(key)+len(headers))
	b = binary.BigEndian.AppendUint64(b, uint64(id))
	b = binary.AppendUvarint(b, uint64(len(topic)))
	b = append(b, topic...)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	return append(b, headers...)
}

// outboxRow is a row of the outbox table, its value sealed.
type outboxRow struct {
	id        int64
	shard     int16
	topic     string
	key       []byte
	headers   []byte
	value     []byte
	createdAt time.Time
	// enqueuedAt is when the row was written, by the server's clock.
	enqueuedAt time.Time
}

// fetchOutbox returns up to limit rows of the given shards, lowest ids
// first. It reads at most limit rows of each shard, through the primary
// key, however long the shards are.
func fetchOutbox(ctx context.Context, q querier, shards []int16, limit int) ([]outboxRow, error) {
	rows, err := q.Query(ctx, `
		SELECT o.id, o.shard, o.topic, o.key, o.headers, o.value, o.created_at, o.enqueued_at
		FROM unnest($1::smallint[]) AS s (shard)
		CROSS JOIN LATERAL (
			SELECT * FROM outbox WHERE outbox.shard = s.shard ORDER BY id LIMIT $2
		) AS o
		ORDER BY o.id LIMIT $2`,
		shards, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (outboxRow, error) {
		var r outboxRow
		err := row.Scan(&r.id, &r.shard, &r.topic, &r.key, &r.headers, &r.value, &r.createdAt, &r.enqueuedAt)
		return r, err
	})
}

// open returns the message r holds, its value opened. It fails when the
// value does not open with r's id, topic, key and headers: another key-
// encryption key, or a row changed behind the adapter's back.
func (r outboxRow) open(sealer Sealer) (domain.OutboxMessage, error) {
	value, err := sealer.Open(r.value, outboxAD(r.id, r.topic, r.key, r.headers))
	if err != nil {
		return domain.OutboxMessage{}, fmt.Errorf("open outbox row %d: %w", r.id, err)
	}
	headers, err := decodeHeaders(r.headers)
	if err != nil {
		return domain.OutboxMessage{}, fmt.Errorf("outbox row %d: %w", r.id, err)
	}
	return domain.OutboxMessage{
		Topic:     r.topic,
		Key:       r.key,
		Value:     value,
		Headers:   headers,
		CreatedAt: r.createdAt.UTC(),
	}, nil
}

// allShards lists every shard.
func allShards() []int16 {
	s := make([]int16, OutboxShards)
	for i := range s {
		s[i] = int16(i)
	}
	return s
}
