package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/latency"
)

// Defaults for OutboxRelayConfig.
const (
	DefaultOutboxBatchSize    = 500
	DefaultOutboxPollInterval = time.Second
	DefaultOutboxMinBackoff   = 100 * time.Millisecond
	DefaultOutboxMaxBackoff   = 10 * time.Second
)

// Advisory locks of the relays, in the two-key space of pg_advisory_lock
// (int4, int4), apart from the one-key space of SigningKeysLockID and
// goose's migration lock: shard s is (relayLockClass, s), and every relay
// holds (relayLockClass, relayMemberKey) shared, so that relays can count
// each other in pg_locks. relayLockClass is "outb" in ASCII.
const (
	relayLockClass int32 = 0x6f757462
	relayMemberKey int32 = 1 << 16
)

// statementTimeout bounds each statement of a relay, so that a connection
// that went silent is given up and dialled anew.
const statementTimeout = 30 * time.Second

// OutboxPublisher sends outbox messages to the broker; producers.
// OutboxPublisher implements it.
type OutboxPublisher interface {
	// Publish sends msgs and waits until the broker has acknowledged each,
	// or ctx ends. No two of msgs share a key, so their order does not
	// matter: the relay sends a key's next message only once the previous
	// one is acknowledged. It returns one error per message, in order: nil
	// for a message the broker acknowledged.
	Publish(ctx context.Context, msgs []domain.OutboxMessage) []error
}

// OutboxRelayConfig configures an OutboxRelay.
type OutboxRelayConfig struct {
	// Publisher sends the messages. Required.
	Publisher OutboxPublisher
	// BatchSize bounds the rows read at once. Default 500.
	BatchSize int
	// PollInterval is how often the relay looks for messages it was not
	// notified of (a notification is lost while its connection is down)
	// and for shards to take or give up. Default 1 second.
	PollInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failure to reach the
	// database or to publish, doubling from one to the other. Defaults 100
	// milliseconds and 10 seconds.
	MinBackoff, MaxBackoff time.Duration
	// Now tells the time of acknowledgements, for Stats. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *OutboxRelayConfig) setDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = DefaultOutboxBatchSize
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultOutboxPollInterval
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultOutboxMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultOutboxMaxBackoff
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first setting that cannot work. Zero values are
// valid and mean the defaults.
func (c OutboxRelayConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.Publisher == nil:
		return errors.New("outbox relay: a publisher is required")
	case c.BatchSize < 0:
		return fmt.Errorf("outbox relay: BatchSize %d is negative", c.BatchSize)
	case c.PollInterval < 0:
		return fmt.Errorf("outbox relay: PollInterval %v is negative", c.PollInterval)
	case c.MinBackoff < 0 || c.MaxBackoff < 0:
		return fmt.Errorf("outbox relay: backoff %v to %v is negative", c.MinBackoff, c.MaxBackoff)
	case c.MinBackoff > c.MaxBackoff:
		return fmt.Errorf("outbox relay: MinBackoff %v exceeds MaxBackoff %v", c.MinBackoff, c.MaxBackoff)
	}
	return nil
}

// OutboxRelayStats is what a relay has done since it was built, for
// metrics.
type OutboxRelayStats struct {
	// Published counts the messages the broker acknowledged.
	Published uint64
	// Batches counts calls to the publisher.
	Batches uint64
	// Failed counts messages that did not open or were not acknowledged,
	// at every attempt.
	Failed uint64
	// LastLag is, in the last batch acknowledged, the longest time from a
	// message's enqueueing (by the database's clock, moments before its
	// transaction committed) to its acknowledgement (by the relay's).
	LastLag time.Duration
	// Lag counts the lag of every message acknowledged, as LastLag
	// measures it: the delivery latency consumers see, less their own.
	Lag latency.Snapshot
	// Shards is how many shards the relay owns now.
	Shards int
	// Sessions counts the database sessions the relay opened: more than
	// one means it reconnected.
	Sessions uint64
}

// OutboxRelay publishes the messages of an Outbox once their transactions
// have committed, and deletes each once the broker has acknowledged it.
// Several relays, one per worker, share the work; each key's messages go
// out in the order they were enqueued, at least once.
//
// # Ownership
//
// The outbox is cut into OutboxShards shards by key. A relay publishes only
// the shards it owns, each by a session-level advisory lock
// (pg_try_advisory_lock) held on a connection of its own, beside the DB's
// pool. Every poll interval it counts the relays (each holds a shared
// advisory lock for that) and gives up or takes shards to own its fair
// share, ceil(OutboxShards / relays): ownership spreads as relays come and
// go. A relay that crashes or loses its connection loses its locks with
// it, and the others take its shards over at their next poll; the server
// probes the connection (TCP keepalives), so a relay cut off without
// closing it loses them within about half a minute. The relay reads and
// deletes on that same connection, so a relay that lost its locks finds
// out at its next statement and stops touching the rows.
//
// Why not SELECT ... FOR UPDATE SKIP LOCKED, with any relay taking any
// rows? It spreads rows, not keys: when two relays take consecutive rows of
// one key, the second may publish its row before the first does, or while
// the first is retrying a failure, and the key's order is lost. Owning a
// shard makes one relay the only publisher of all of its keys' rows, so it
// can send them in id order and retry in place.
//
// # Order and acknowledgements
//
// Each round reads up to BatchSize rows of the owned shards, lowest ids
// first, and hands them to the publisher in waves: the first message of
// every key, then, once all of those are acknowledged, the second of every
// key, and so on. A key's next message is thus sent only once the broker
// has its previous one, whatever the producer does with retries and
// timeouts (librdkafka may deliver a partition's later records after an
// earlier one timed out); the price is a broker round trip per message for
// a key with a backlog, while distinct keys go out together. A message that fails to publish, or whose value
// does not open, stops its key for the round; the relay then waits,
// doubling the wait from MinBackoff to MaxBackoff while failures go on,
// and retries from that message. A message that can never be published
// therefore holds back its key, and slows the others to a round per
// MaxBackoff; Stats.Failed and the error log show it.
//
// Rows are deleted as soon as their wave is acknowledged, not marked and
// pruned later: the table then holds only what is left to publish, so
// each read is a short index scan from the head of each shard, published
// secrets do not linger at rest, and a row that committed after rows with
// higher ids is still found (a relay that kept a high-water mark would
// skip it).
//
// Delivery is at least once. Messages that were acknowledged but not yet
// deleted when the relay crashed or lost its connection are published again
// by the next owner of their shard, as is a wave still in flight then:
// consumers deduplicate, by an event id the use case puts in the value or
// a header.
//
// # Latency
//
// The outbox notifies the relays once an enqueueing transaction has
// committed (LISTEN/NOTIFY, sent from outside the transaction: see waker),
// so a relay wakes at once; it also polls every PollInterval, in case a
// notification was lost. When a round reads a full batch, the next starts
// at once.
//
// # Failures
//
// When its connection fails, the relay forgets its shards, dials anew with
// backoff, and takes shards again: a restarted PostgreSQL costs no message
// and no order. When the broker is down, rows stay and are retried with
// backoff. The relay needs a session of its own to hold its locks: it
// cannot run through a pooler in transaction mode.
type OutboxRelay struct {
	outbox *Outbox
	cfg    OutboxRelayConfig

	published, batches, failed, sessions atomic.Uint64
	lastLag                              atomic.Int64
	lag                                  latency.Histogram
	shards                               atomic.Int32
}

// NewOutboxRelay returns a relay that publishes outbox's messages.
func NewOutboxRelay(outbox *Outbox, cfg OutboxRelayConfig) (*OutboxRelay, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &OutboxRelay{outbox: outbox, cfg: cfg}, nil
}

// Stats returns what the relay has done so far. It is safe to call while
// the relay runs.
func (r *OutboxRelay) Stats() OutboxRelayStats {
	return OutboxRelayStats{
		Published: r.published.Load(),
		Batches:   r.batches.Load(),
		Failed:    r.failed.Load(),
		LastLag:   time.Duration(r.lastLag.Load()),
		Lag:       r.lag.Snapshot(),
		Shards:    int(r.shards.Load()),
		Sessions:  r.sessions.Load(),
	}
}

// Run publishes until ctx ends, then closes its connection, which releases
// its shards, and returns. Failures are logged and retried, never
// returned. Call it once.
func (r *OutboxRelay) Run(ctx context.Context) {
	backoff := r.cfg.MinBackoff
	for {
		connected, err := r.session(ctx)
		r.shards.Store(0)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff = r.cfg.MinBackoff
		}
		r.cfg.Logger.Warn("outbox relay lost its database session", "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, r.cfg.MaxBackoff)
	}
}

// session runs one database session: it connects, joins the relays, and
// relays until the connection fails or ctx ends. connected reports whether
// it got that far.
func (r *OutboxRelay) session(ctx context.Context) (connected bool, err error) {
	conn, err := r.connect(ctx)
	if err != nil {
		return false, err
	}
	defer func() {
		// Ending the session releases every lock it holds, whatever state
		// the connection is in.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(ctx)
	}()
	s := &relaySession{relay: r, conn: conn, offset: int(time.Now().UnixNano() % OutboxShards)}
	if err := s.join(ctx); err != nil {
		return false, err
	}
	r.sessions.Add(1)
	return true, s.run(ctx)
}

// connect dials the relay's own connection (see DB.dial).
func (r *OutboxRelay) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := r.outbox.db.dial(ctx, "outbox relay", false)
	if err != nil {
		return nil, fmt.Errorf("outbox relay: connect: %w", storeError(outboxStore, err))
	}
	return conn, nil
}

// relaySession is a relay's state for one connection.
type relaySession struct {
	relay  *OutboxRelay
	conn   *pgx.Conn
	owned  []int16 // in the order taken
	offset int     // where this relay starts looking for free shards
}

// join announces the relay to the others and listens for notifications.
func (s *relaySession) join(ctx context.Context) error {
	return s.exec(ctx, "join the relays", func(ctx context.Context) error {
		if _, err := s.conn.Exec(ctx, `SELECT pg_advisory_lock_shared($1, $2)`, relayLockClass, relayMemberKey); err != nil {
			return err
		}
		_, err := s.conn.Exec(ctx, `LISTEN `+outboxChannel)
		return err
	})
}

// exec runs fn within the statement timeout and names what failed.
func (s *relaySession) exec(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, statementTimeout)
	defer cancel()
	if err := fn(ctx); err != nil {
		return fmt.Errorf("outbox relay: %s: %w", what, storeError(outboxStore, err))
	}
	return nil
}

// run relays until the connection fails or ctx ends.
func (s *relaySession) run(ctx context.Context) error {
	cfg := s.relay.cfg
	backoff := cfg.MinBackoff
	var nextPoll time.Time
	for {
		if !time.Now().Before(nextPoll) {
			if err := s.rebalance(ctx); err != nil {
				return err
			}
			nextPoll = time.Now().Add(cfg.PollInterval)
		}
		round := roundResult{}
		if len(s.owned) > 0 {
			var err error
			if round, err = s.round(ctx); err != nil {
				return err
			}
		}
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case round.failed:
			if !sleep(ctx, backoff) {
				return ctx.Err()
			}
			backoff = min(2*backoff, cfg.MaxBackoff)
			continue
		case round.full:
			backoff = cfg.MinBackoff
			continue
		}
		backoff = cfg.MinBackoff
		if err := s.wait(ctx, time.Until(nextPoll)); err != nil {
			return err
		}
	}
}

// wait returns when a notification arrives or d has passed.
func (s *relaySession) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	// The wait is idle: end it with a read deadline, at d or as soon as
	// ctx ends, rather than through the connection's handling of a
	// context, which asks the server to cancel a statement (there is
	// none) and gives up only two seconds later, holding up shutdown.
	// A read that times out leaves the connection usable.
	nc := s.conn.PgConn().Conn()
	if err := nc.SetReadDeadline(time.Now().Add(d)); err != nil {
		return fmt.Errorf("outbox relay: wait for notifications: %w", storeError(outboxStore, err))
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetReadDeadline(time.Now()) })
	_, err := s.conn.WaitForNotification(context.Background())
	if !stop() {
		return ctx.Err() // ended by ctx: the session is over
	}
	if derr := nc.SetReadDeadline(time.Time{}); derr != nil && err == nil {
		err = derr
	}
	var timeout net.Error
	switch {
	case err == nil:
		// One round serves every notification received so far.
		done, cancel := context.WithCancel(ctx)
		cancel()
		for {
			if _, err := s.conn.WaitForNotification(done); err != nil {
				return nil
			}
		}
	case errors.As(err, &timeout) && timeout.Timeout():
		return nil // polled
	}
	return fmt.Errorf("outbox relay: wait for notifications: %w", storeError(outboxStore, err))
}

// rebalance gives up or takes shards until the relay owns its fair share.
func (s *relaySession) rebalance(ctx context.Context) error {
	defer func() { s.relay.shards.Store(int32(len(s.owned))) }()
	before := len(s.owned)
	var relays int
	err := s.exec(ctx, "count the relays", func(ctx context.Context) error {
		return s.conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND granted AND objsubid = 2
				AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
				AND classid = $1::int8::oid AND objid = $2::int8::oid`,
			relayLockClass, relayMemberKey).Scan(&relays)
	})
	if err != nil {
		return err
	}
	relays = max(relays, 1)
	fair := (OutboxShards + relays - 1) / relays
	for len(s.owned) > fair {
		shard := s.owned[len(s.owned)-1]
		if err := s.exec(ctx, "give up a shard", func(ctx context.Context) error {
			_, err := s.conn.Exec(ctx, `SELECT pg_advisory_unlock($1, $2)`, relayLockClass, int32(shard))
			return err
		}); err != nil {
			return err
		}
		s.owned = s.owned[:len(s.owned)-1]
	}
	for i := 0; i < OutboxShards && len(s.owned) < fair; i++ {
		shard := int16((s.offset + i) % OutboxShards)
		if slices.Contains(s.owned, shard) {
			continue
		}
		var took bool
		if err := s.exec(ctx, "take a shard", func(ctx context.Context) error {
			return s.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, relayLockClass, int32(shard)).Scan(&took)
		}); err != nil {
			return err
		}
		if took {
			s.owned = append(s.owned, shard)
		}
	}
	if len(s.owned) != before {
		s.relay.cfg.Logger.Info("outbox relay shards", "owned", len(s.owned), "relays", relays)
	}
	return nil
}

// roundResult says how a round went.
type roundResult struct {
	full   bool // it read a whole batch: there may be more
	failed bool // a message did not open or was not acknowledged
}

// keyQueue is a key's messages in a round, in id order.
type keyQueue struct {
	rows    []outboxRow
	msgs    []domain.OutboxMessage
	stopped bool // a message failed: the rest wait for the next round
}

// round reads a batch, publishes it in waves and deletes what the broker
// acknowledged. It returns an error only when the connection failed.
func (s *relaySession) round(ctx context.Context) (roundResult, error) {
	r := s.relay
	var rows []outboxRow
	if err := s.exec(ctx, "read", func(ctx context.Context) (err error) {
		rows, err = fetchOutbox(ctx, s.conn, s.owned, r.cfg.BatchSize)
		return err
	}); err != nil {
		return roundResult{}, err
	}
	keys, failed := r.queueByKey(rows)
	res := roundResult{full: len(rows) == r.cfg.BatchSize, failed: failed}
	refused := waveFailures{}
	for wave := 0; ctx.Err() == nil; wave++ {
		sent, err := s.wave(ctx, keys, wave, &refused)
		if err != nil {
			return res, err
		}
		if sent == 0 {
			break
		}
	}
	if refused.count > 0 {
		res.failed = true
		if ctx.Err() == nil {
			r.cfg.Logger.Warn("outbox messages not published; their keys wait for a retry", "count", refused.count,
				"err", refused.first, "id", refused.row.id, "topic", refused.row.topic, "key", string(refused.row.key))
		}
	}
	return res, nil
}

// queueByKey opens rows and queues them by key, keys in the order of their
// first row. A row that does not open stops its key: it and the key's
// later rows wait. failed reports whether one did not.
func (r *OutboxRelay) queueByKey(rows []outboxRow) (keys []*keyQueue, failed bool) {
	byKey := map[string]*keyQueue{}
	for _, row := range rows {
		q := byKey[string(row.key)]
		if q == nil {
			q = &keyQueue{}
			byKey[string(row.key)] = q
			keys = append(keys, q)
		}
		if q.stopped {
			continue
		}
		msg, err := row.open(r.outbox.sealer)
		if err != nil {
			r.failed.Add(1)
			failed, q.stopped = true, true
			r.cfg.Logger.Error("outbox row does not open; its key is held back", "err", err,
				"id", row.id, "topic", row.topic, "key", string(row.key))
			continue
		}
		q.rows, q.msgs = append(q.rows, row), append(q.msgs, msg)
	}
	return keys, failed
}

// waveFailures sums up the messages a round's publisher refused, for one
// log line.
type waveFailures struct {
	count int
	first error
	row   outboxRow
}

// wave publishes the wave-th message of every key still going, and
// deletes those the broker acknowledged. It returns how many it sent, and
// an error only when the connection failed.
func (s *relaySession) wave(ctx context.Context, keys []*keyQueue, wave int, refused *waveFailures) (int, error) {
	r := s.relay
	var sent []*keyQueue
	var msgs []domain.OutboxMessage
	for _, q := range keys {
		if !q.stopped && wave < len(q.msgs) {
			sent, msgs = append(sent, q), append(msgs, q.msgs[wave])
		}
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	errs := r.cfg.Publisher.Publish(ctx, msgs)
	r.batches.Add(1)
	now := r.cfg.Now()
	if len(errs) != len(msgs) {
		err := fmt.Errorf("publisher returned %d results for %d messages", len(errs), len(msgs))
		errs = slices.Repeat([]error{err}, len(msgs))
	}
	var acked []outboxRow
	var lag time.Duration
	for i, q := range sent {
		if errs[i] != nil {
			r.failed.Add(1)
			q.stopped = true
			if refused.count++; refused.count == 1 {
				refused.first, refused.row = errs[i], q.rows[wave]
			}
			continue
		}
		acked = append(acked, q.rows[wave])
		d := now.Sub(q.rows[wave].enqueuedAt)
		r.lag.Record(d)
		lag = max(lag, d)
	}
	if len(acked) == 0 {
		return len(msgs), nil
	}
	r.published.Add(uint64(len(acked)))
	r.lastLag.Store(int64(lag))
	// The rows go as soon as the broker has them, even when ctx ended
	// meanwhile: a relay that stops, or loses its shards later in the
	// round, then leaves less to be published twice.
	err := s.exec(context.WithoutCancel(ctx), "delete published rows", func(ctx context.Context) error {
		return deleteOutbox(ctx, s.conn, acked)
	})
	return len(msgs), err
}

// deleteOutbox deletes rows by primary key.
func deleteOutbox(ctx context.Context, q querier, rows []outboxRow) error {
	shards, ids := make([]int16, len(rows)), make([]int64, len(rows))
	for i, r := range rows {
		shards[i], ids[i] = r.shard, r.id
	}
	_, err := q.Exec(ctx, `DELETE FROM outbox WHERE (shard, id) IN (SELECT * FROM unnest($1::smallint[], $2::bigint[]))`, shards, ids)
	return err
}

// sleep waits for d or until ctx ends, and reports whether ctx is still
// live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
