package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
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
// Values are sealed, bound to a random nonce of the row, its topic, key and
// headers, so that a value moved to another row, or a row whose headers
// were changed, does not open and is not published. Topic, key, headers and creation time stay
// readable for operators.
type Outbox struct {
	db     *DB
	sealer Sealer
	waker  *waker
}

var _ domain.Outbox = (*Outbox)(nil)

// NewOutbox returns an Outbox on db that seals values with sealer.
func NewOutbox(db *DB, sealer Sealer) *Outbox {
	return &Outbox{db: db, sealer: sealer, waker: &waker{db: db}}
}

// Enqueue implements domain.Outbox with one statement in the caller's
// transaction, which locks the messages' keys and inserts the rows, their
// ids drawn after the locks. The statement goes out with the transaction's
// next one, or its COMMIT (see DB.later), so Enqueue costs no round trip of
// its own; a failure fails that statement or the commit. Once the
// transaction commits, the relays are woken (see waker); a transaction that
// rolls back wakes nobody.
//
// The lock on each key (a transaction-level advisory lock on a 32-bit hash
// of it, taken in one sorted sweep) is what makes id order commit order
// for a key: a transaction that enqueues for a key waits for any other that
// did and has not ended, and so draws its ids after that one's and commits
// after it. Relays publish a key's messages in id order, hence in the order
// their changes committed. A hash collision only makes two keys wait for
// each other.
//
// Enqueue measures what it adds to a transaction in BenchmarkOutboxEnqueue.
func (o *Outbox) Enqueue(ctx context.Context, msgs ...domain.OutboxMessage) error {
	state, ok := o.db.state(ctx)
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
	var (
		locks   = make([]int32, len(msgs))
		shards  = make([]int16, len(msgs))
		topics  = make([]string, len(msgs))
		keys    = make([][]byte, len(msgs))
		headers = make([][]byte, len(msgs))
		nonces  = make([][]byte, len(msgs))
		values  = make([][]byte, len(msgs))
		created = make([]time.Time, len(msgs))
	)
	for i, m := range msgs {
		locks[i], shards[i], topics[i], keys[i], created[i] = keyLock(m.Key), outboxShard(m.Key), m.Topic, bytes.Clone(m.Key), dbTime(m.CreatedAt)
		headers[i] = encodeHeaders(m.Headers)
		nonces[i] = make([]byte, sealNonceSize)
		_, _ = rand.Read(nonces[i]) // never fails
		values[i] = o.sealer.Seal(m.Value, outboxAD(nonces[i], m.Topic, m.Key, headers[i]))
	}
	err := o.db.later(ctx, enqueueError, `
		INSERT INTO outbox (shard, topic, key, headers, seal_nonce, value, created_at)
		SELECT m.shard, m.topic, m.key, m.headers, m.nonce, m.value, m.created
		FROM (SELECT count(pg_advisory_xact_lock($1::int, k))
		      FROM (SELECT DISTINCT unnest($2::int[]) AS k ORDER BY 1) AS keys) AS locked,
		     unnest($3::smallint[], $4::text[], $5::bytea[], $6::bytea[], $7::bytea[], $8::bytea[], $9::timestamptz[])
		         WITH ORDINALITY AS m (shard, topic, key, headers, nonce, value, created, n)
		ORDER BY m.n`,
		keyLockClass, locks, shards, topics, keys, headers, nonces, values, created)
	if err != nil {
		return err
	}
	state.onCommit(o.waker.wake)
	return nil
}

// enqueueError translates the error of Enqueue's statement.
func enqueueError(err error) error {
	return fmt.Errorf("enqueue: %w", storeError(outboxStore, err))
}

// waker notifies the relays (NOTIFY on outboxChannel) after transactions
// that enqueued have committed, from outside them, one notification at a
// time: a wake while a notification is on its way makes one more follow it,
// so every commit is followed by a notification sent after it, and a burst
// of commits costs a few.
//
// Why not NOTIFY inside the transaction, which PostgreSQL delivers at
// commit? Commits that notify are serialised by PostgreSQL: each holds a
// database-wide lock while its commit record is flushed to disk. Under load
// the workers' transactions queued on that lock (half of the samples of
// pg_stat_activity during a refresh benchmark were "Lock: object" at
// COMMIT). A notification sent on its own writes no commit record. Should
// one be lost (the worker stops first, the database is unreachable), the
// relays' poll finds the messages.
type waker struct {
	db *DB

	mu          sync.Mutex
	busy, again bool
}

// wake has the relays notified soon.
func (w *waker) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.busy {
		w.again = true
		return
	}
	w.busy = true
	go w.notify()
}

// notify sends notifications until no wake asked for another.
func (w *waker) notify() {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), wakeTimeout)
		_, _ = w.db.pool.Exec(ctx, `SELECT pg_notify($1, '')`, outboxChannel) // the poll covers a failure
		cancel()
		w.mu.Lock()
		if !w.again {
			w.busy = false
			w.mu.Unlock()
			return
		}
		w.again = false
		w.mu.Unlock()
	}
}

// wakeTimeout bounds a notification; the relays' poll covers one that
// fails.
const wakeTimeout = 5 * time.Second

// keyLockClass is the first key of the transaction-level advisory locks
// that order each key's messages: "okey" in ASCII.
const keyLockClass int32 = 0x6f6b6579

// keyLock is the second key of the advisory lock of a message key.
func keyLock(key []byte) int32 {
	h := fnv.New32a()
	h.Write(key) // never fails
	return int32(h.Sum32())
}

// sealNonceSize is the length of a row's seal nonce.
const sealNonceSize = 16

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
// seal nonce, topic, key and encoded headers, each but the last
// length-prefixed. A value moved to another row, or a row whose topic, key
// or headers were changed, does not open.
func outboxAD(nonce []byte, topic string, key, headers []byte) []byte {
	b := make([]byte, 0, 3*binary.MaxVarintLen64+len(nonce)+len(topic)+len(key)+len(headers))
	b = binary.AppendUvarint(b, uint64(len(nonce)))
	b = append(b, nonce...)
	return appendOutboxAD(b, topic, key, headers)
}

// legacyOutboxAD is the associated data of rows written before they had a
// seal nonce: bound to the row's id instead.
func legacyOutboxAD(id int64, topic string, key, headers []byte) []byte {
	b := make([]byte, 0, 8+2*binary.MaxVarintLen64+len(topic)+len(key)+len(headers))
	b = binary.BigEndian.AppendUint64(b, uint64(id))
	return appendOutboxAD(b, topic, key, headers)
}

func appendOutboxAD(b []byte, topic string, key, headers []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(topic)))
	b = append(b, topic...)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	return append(b, headers...)
}

// outboxRow is a row of the outbox table, its value sealed.
type outboxRow struct {
	id      int64
	shard   int16
	topic   string
	key     []byte
	headers []byte
	value   []byte
	// nonce is what value is bound to; nil for a row written before rows
	// had one, whose value is bound to its id.
	nonce     []byte
	createdAt time.Time
	// enqueuedAt is when the row was written, by the server's clock.
	enqueuedAt time.Time
}

// fetchOutbox returns up to limit rows of the given shards, lowest ids
// first. It reads at most limit rows of each shard, through the primary
// key, however long the shards are.
func fetchOutbox(ctx context.Context, q querier, shards []int16, limit int) ([]outboxRow, error) {
	rows, err := q.Query(ctx, `
		SELECT o.id, o.shard, o.topic, o.key, o.headers, o.seal_nonce, o.value, o.created_at, o.enqueued_at
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
		err := row.Scan(&r.id, &r.shard, &r.topic, &r.key, &r.headers, &r.nonce, &r.value, &r.createdAt, &r.enqueuedAt)
		return r, err
	})
}

// open returns the message r holds, its value opened. It fails when the
// value does not open with r's id, topic, key and headers: another key-
// encryption key, or a row changed behind the adapter's back.
func (r outboxRow) open(sealer Sealer) (domain.OutboxMessage, error) {
	ad := outboxAD(r.nonce, r.topic, r.key, r.headers)
	if r.nonce == nil {
		ad = legacyOutboxAD(r.id, r.topic, r.key, r.headers)
	}
	value, err := sealer.Open(r.value, ad)
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
