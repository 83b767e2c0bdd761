package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/postgres"
	"github.com/authworker/authworker/producers"
	"github.com/authworker/authworker/testenv"
)

// outboxEnv is the worker's outbox wiring on a database and a topic of the
// test's own: several relays on it stand for several workers.
type outboxEnv struct {
	db        *postgres.DB
	dbURL     string
	kek       []byte
	bootstrap string
	topic     string
	outbox    *postgres.Outbox
}

func newOutboxEnv(t testing.TB) *outboxEnv {
	t.Helper()
	return newOutboxEnvOn(t, testenv.Database(t))
}

// newOutboxEnvOn is newOutboxEnv on the database at dbURL.
func newOutboxEnvOn(t testing.TB, dbURL string) *outboxEnv {
	t.Helper()
	ctx := context.Background()
	e := &outboxEnv{dbURL: dbURL, bootstrap: testenv.KafkaBootstrap(t), kek: make([]byte, 32)}
	_, _ = crand.Read(e.kek)
	var err error
	if e.db, err = postgres.Open(ctx, postgres.Config{URL: e.dbURL, MaxConns: 8}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.db.Close)
	if err := e.db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	p := e.producer(t)
	admin, err := p.Admin()
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	e.topic = testenv.Name(t, "events")
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := producers.EnsureTopics(ctx, admin, []producers.Topic{{Name: e.topic, Partitions: 3}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteTopics(t, e.bootstrap, e.topic) })
	// The relays' outbox: the same wiring, so the same sealing key.
	if e.outbox, _, err = newOutbox(e.db, p, [][]byte{e.kek}, postgres.OutboxRelayConfig{}); err != nil {
		t.Fatal(err)
	}
	return e
}

// producer returns a producer of the worker's, closed when the test ends.
func (e *outboxEnv) producer(t testing.TB) *producers.Producer {
	t.Helper()
	p, err := producers.NewProducer(producers.Config{BootstrapServers: e.bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// relay is an OutboxRelay as a worker runs it, with a producer of its own,
// until stop.
type relay struct {
	*postgres.OutboxRelay
	stop func()
}

func (e *outboxEnv) startRelay(t testing.TB, batchSize int) relay {
	t.Helper()
	_, r, err := newOutbox(e.db, e.producer(t), [][]byte{e.kek}, postgres.OutboxRelayConfig{
		BatchSize:    batchSize,
		PollInterval: 50 * time.Millisecond,
		MinBackoff:   10 * time.Millisecond,
		MaxBackoff:   100 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return relay{r, stop}
}

// message is the seq-th message of key, its value a secret.
func (e *outboxEnv) message(key string, seq int) domain.OutboxMessage {
	return domain.OutboxMessage{
		Topic: e.topic,
		Key:   []byte(key),
		Value: fmt.Appendf(nil, "one-time code for %s: %06d", key, seq),
		Headers: []domain.MessageHeader{
			{Key: "type", Value: []byte("code-issued")},
			{Key: "seq", Value: []byte(strconv.Itoa(seq))},
		},
		CreatedAt: time.Now(),
	}
}

// enqueue writes msgs in one transaction that commits.
func (e *outboxEnv) enqueue(msgs ...domain.OutboxMessage) error {
	return e.db.InTx(context.Background(), func(ctx context.Context) error {
		return e.outbox.Enqueue(ctx, msgs...)
	})
}

// stream enqueues perKey messages for each of keys keys, in transactions
// of up to 10 messages of random keys, each key's in sequence, and returns
// how many it enqueued. It may run beside the test's goroutine.
func (e *outboxEnv) stream(keys, perKey int) (int, error) {
	all := make([]int, keys)
	for k := range keys {
		all[k] = k
	}
	return e.write(all, perKey, e.enqueue)
}

// write has enqueue write perKey messages for each of the keys numbered
// keys, in transactions of up to 10 messages of random keys, each key's in
// sequence, and returns how many it wrote.
func (e *outboxEnv) write(keys []int, perKey int, enqueue func(...domain.OutboxMessage) error) (int, error) {
	next := map[int]int{}
	open := slices.Clone(keys)
	n := 0
	for len(open) > 0 {
		var tx []domain.OutboxMessage
		for range 1 + rand.IntN(10) {
			if len(open) == 0 {
				break
			}
			i := rand.IntN(len(open))
			k := open[i]
			tx = append(tx, e.message(fmt.Sprintf("user-%02d", k), next[k]))
			if next[k]++; next[k] == perKey {
				open = append(open[:i], open[i+1:]...)
			}
		}
		if err := enqueue(tx...); err != nil {
			return n, fmt.Errorf("enqueue: %w", err)
		}
		n += len(tx)
	}
	return n, nil
}

// retryingWriters is a stream written by several writers while the
// database may go down: each writes keys of its own, as stream does,
// pausing between transactions; a transaction that fails because the
// database is unavailable is enqueued again, in a new transaction, until
// one commits. So the messages committed are known: every one once, and
// again any whose commit failed only on the way back (a duplicate, as the
// relay may make).
type retryingWriters struct {
	committed atomic.Int64 // messages in transactions that committed
	retried   atomic.Int64 // transactions that failed and were enqueued again
	finished  atomic.Bool  // every writer is done, or gave up
}

// retryFor bounds how long a writer retries one transaction.
const retryFor = time.Minute

// streamRetrying writes perKey messages for each of keys keys with
// writers writers beside the test, and returns a function that waits for
// them and returns how many messages they committed.
func (e *outboxEnv) streamRetrying(t testing.TB, w *retryingWriters, keys, perKey, writers int, pause time.Duration) func() int {
	enqueue := func(msgs ...domain.OutboxMessage) error {
		defer time.Sleep(pause)
		for start := time.Now(); ; {
			err := e.enqueue(msgs...)
			if err == nil {
				w.committed.Add(int64(len(msgs)))
				return nil
			}
			if domain.ErrorCode(err) != domain.CodeUnavailable || time.Since(start) > retryFor {
				return err
			}
			w.retried.Add(1)
			time.Sleep(20 * time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		var own []int
		for k := i; k < keys; k += writers {
			own = append(own, k)
		}
		wg.Go(func() { _, errs[i] = e.write(own, perKey, enqueue) })
	}
	go func() { wg.Wait(); w.finished.Store(true) }()
	return func() int {
		t.Helper()
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		return int(w.committed.Load())
	}
}

// streamInBackground runs stream beside the test and returns a function
// that waits for it.
func (e *outboxEnv) streamInBackground(t testing.TB, keys, perKey int) func() int {
	done := make(chan struct{})
	var n int
	var err error
	go func() { defer close(done); n, err = e.stream(keys, perKey) }()
	return func() int {
		t.Helper()
		<-done
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// reader keeps every record of a topic, from the beginning, in the order
// each partition holds them.
type reader struct {
	mu   sync.Mutex
	recs []*kafka.Message
}

func (e *outboxEnv) read(t testing.TB) *reader {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": e.bootstrap, "group.id": testenv.Name(t, "reader"),
		"auto.offset.reset": "earliest", "enable.auto.commit": false,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(e.topic, nil); err != nil {
		t.Fatal(err)
	}
	r := &reader{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			msg, err := c.ReadMessage(100 * time.Millisecond)
			if err != nil {
				continue // timeouts; anything else shows as missing records
			}
			r.mu.Lock()
			r.recs = append(r.recs, msg)
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done; c.Close() })
	return r
}

func (r *reader) records() []*kafka.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*kafka.Message(nil), r.recs...)
}

// distinct counts the distinct messages read, by key and sequence number.
func (r *reader) distinct() int {
	seen := map[string]bool{}
	for _, m := range r.records() {
		seen[string(m.Key)+"#"+string(headerValue(m, "seq"))] = true
	}
	return len(seen)
}

// waitFor polls cond until it holds, failing the test after a generous
// bound: a condition, not a timing, is what is tested.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkOrder reports an error unless every key's messages 0 to perKey-1
// were read, in order. A message read again after a relay lost its shards
// (delivery is at least once) is a duplicate of one already read, and is
// skipped as a consumer that deduplicates would: any message that is
// neither that nor the next one expected is a loss or a reordering.
func checkOrder(t testing.TB, recs []*kafka.Message, keys, perKey int) (dups int) {
	t.Helper()
	next := map[string]int{}
	for _, m := range recs {
		seq, err := strconv.Atoi(string(headerValue(m, "seq")))
		if err != nil {
			t.Fatalf("record of key %s without a sequence number", m.Key)
		}
		switch want := next[string(m.Key)]; {
		case seq < want:
			dups++
		case seq == want:
			next[string(m.Key)]++
		default:
			t.Fatalf("key %s: read message %d where %d was due: lost or reordered", m.Key, seq, want)
		}
	}
	if len(next) != keys {
		t.Errorf("read messages of %d keys, want %d", len(next), keys)
	}
	for k, n := range next {
		if n != perKey {
			t.Errorf("key %s: read %d messages, want %d", k, n, perKey)
		}
	}
	t.Logf("%d records, %d of them duplicates", len(recs), dups)
	return dups
}

// TestOutboxPublishesCommittedOnly: a message enqueued in a transaction
// that rolls back never reaches Kafka; one that commits does, with its
// topic, key, headers and value (opened) exactly.
func TestOutboxPublishesCommittedOnly(t *testing.T) {
	t.Parallel()
	e := newOutboxEnv(t)
	r := e.read(t)
	e.startRelay(t, 0)

	rolledBack, committed := e.message("user-1", 0), e.message("user-1", 1)
	rolledBack.Value = []byte("a code that was never issued")
	refused := errors.New("refused after enqueueing")
	if err := e.db.InTx(context.Background(), func(ctx context.Context) error {
		if err := e.outbox.Enqueue(ctx, rolledBack); err != nil {
			return err
		}
		return refused
	}); !errors.Is(err, refused) {
		t.Fatalf("InTx = %v, want the refusal", err)
	}
	if err := e.enqueue(committed); err != nil {
		t.Fatal(err)
	}

	// A key's messages arrive in order, so had the rolled-back one been
	// published it would come first.
	waitFor(t, "the committed message", func() bool { return len(r.records()) > 0 })
	got := r.records()[0]
	if *got.TopicPartition.Topic != e.topic || string(got.Key) != "user-1" || !bytes.Equal(got.Value, committed.Value) {
		t.Errorf("published %s %q %q, want %s user-1 %q", *got.TopicPartition.Topic, got.Key, got.Value, e.topic, committed.Value)
	}
	if len(got.Headers) != len(committed.Headers) {
		t.Fatalf("published headers %v, want %v", got.Headers, committed.Headers)
	}
	for i, h := range committed.Headers {
		if got.Headers[i].Key != h.Key || !bytes.Equal(got.Headers[i].Value, h.Value) {
			t.Errorf("published header %d = %v, want %s=%q", i, got.Headers[i], h.Key, h.Value)
		}
	}
	if !got.Timestamp.Equal(committed.CreatedAt.Truncate(time.Millisecond)) {
		t.Errorf("timestamp %v, want the creation time %v", got.Timestamp, committed.CreatedAt)
	}
}

// TestOutboxOrderWithTwoRelays: two workers' relays split the shards and
// publish 1,000 messages over 50 keys, written while both run, each key's
// in order and none lost.
func TestOutboxOrderWithTwoRelays(t *testing.T) {
	t.Parallel()
	const keys, perKey = 50, 20
	e := newOutboxEnv(t)
	r := e.read(t)
	a, b := e.startRelay(t, 50), e.startRelay(t, 50)
	waitFor(t, "the relays to split the shards", func() bool {
		return a.Stats().Shards == postgres.OutboxShards/2 && b.Stats().Shards == postgres.OutboxShards/2
	})

	n, err := e.stream(keys, perKey)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every message", func() bool { return r.distinct() == n })
	checkOrder(t, r.records(), keys, perKey)
	if a.Stats().Published == 0 || b.Stats().Published == 0 {
		t.Errorf("relays published %d and %d, want both to take part", a.Stats().Published, b.Stats().Published)
	}
}

// TestOutboxRelayTakeover: a worker's relay stops mid-stream (its context
// cancelled, its connection closed); the other takes over its shards and
// publishes the rest, in order and without loss.
func TestOutboxRelayTakeover(t *testing.T) {
	t.Parallel()
	const keys, perKey = 50, 20
	e := newOutboxEnv(t)
	r := e.read(t)
	a, b := e.startRelay(t, 10), e.startRelay(t, 10)
	waitFor(t, "the relays to split the shards", func() bool {
		return a.Stats().Shards == postgres.OutboxShards/2 && b.Stats().Shards == postgres.OutboxShards/2
	})

	wait := e.streamInBackground(t, keys, perKey)
	waitFor(t, "the first relay to publish", func() bool { return a.Stats().Published >= 50 })
	a.stop()
	killedAt := r.distinct()
	waitFor(t, "the second relay to take over", func() bool { return b.Stats().Shards == postgres.OutboxShards })
	n := wait()
	waitFor(t, "every message", func() bool { return r.distinct() == n })
	checkOrder(t, r.records(), keys, perKey)
	if killedAt >= n {
		t.Errorf("the first relay stopped after every message was out (%d of %d), not mid-stream", killedAt, n)
	}
	t.Logf("stopped the first relay after %d of %d messages; it published %d, the second %d",
		killedAt, n, a.Stats().Published, b.Stats().Published)
}

// TestOutboxSurvivesConnectionLoss: the relay's PostgreSQL backend is
// terminated mid-stream, twice; the relay reconnects, takes its shards
// again and publishes everything, in order.
func TestOutboxSurvivesConnectionLoss(t *testing.T) {
	t.Parallel()
	const keys, perKey = 50, 20
	e := newOutboxEnv(t)
	r := e.read(t)
	a := e.startRelay(t, 10)
	waitFor(t, "the relay to own every shard", func() bool { return a.Stats().Shards == postgres.OutboxShards })

	wait := e.streamInBackground(t, keys, perKey)
	admin, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	for i, after := range []uint64{100, 400} {
		waitFor(t, "the relay to publish", func() bool { return a.Stats().Published >= after })
		tag, err := admin.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name LIKE '% outbox relay'`)
		if err != nil {
			t.Fatal(err)
		}
		if tag.RowsAffected() != 1 {
			t.Fatalf("terminated %d relay backends, want 1", tag.RowsAffected())
		}
		waitFor(t, "the relay to reconnect", func() bool { return a.Stats().Sessions == uint64(i+2) })
	}
	n := wait()
	waitFor(t, "every message", func() bool { return r.distinct() == n })
	checkOrder(t, r.records(), keys, perKey)
}

// TestOutboxSurvivesPostgresRestart: the relay's PostgreSQL server, one of
// the test's own, goes down mid-stream twice: restarted as an operator
// would, then crashed and started again a moment later. Writers retry the
// transactions that failed meanwhile; the relay reconnects, takes its
// shards again and publishes every committed message, each key's in order.
func TestOutboxSurvivesPostgresRestart(t *testing.T) {
	t.Parallel()
	const keys, perKey, writers = 50, 60, 5
	const total = keys * perKey
	pg := testenv.PrivatePostgres(t)
	e := newOutboxEnvOn(t, pg.URL())
	r := e.read(t)
	a := e.startRelay(t, 50)
	waitFor(t, "the relay to own every shard", func() bool { return a.Stats().Shards == postgres.OutboxShards })

	// Paced to last several seconds, so that both outages fall mid-stream.
	var w retryingWriters
	started := time.Now()
	wait := e.streamRetrying(t, &w, keys, perKey, writers, 40*time.Millisecond)
	for i, outage := range []struct {
		name string
		mode testenv.ShutdownMode
		down time.Duration // kept down this long after stopping
	}{
		{"restart (fast shutdown)", testenv.Fast, 0},
		{"crash (immediate shutdown), down 500ms", testenv.Immediate, 500 * time.Millisecond},
	} {
		waitFor(t, "the writers to get on", func() bool {
			return w.committed.Load() >= int64(total*(i+1)/3) || w.finished.Load()
		})
		before := a.Stats()
		committed, retried := w.committed.Load(), w.retried.Load()
		if w.finished.Load() {
			wait() // fails the test if a writer gave up
		}
		if before.Published == 0 || committed >= total {
			t.Errorf("%s: not mid-stream: %d of %d messages committed, %d published", outage.name, committed, total, before.Published)
		}
		stopping := time.Now()
		back := watchResumption(a, before.Sessions)
		pg.Stop(t, outage.mode)
		stopped := time.Now()
		time.Sleep(outage.down)
		starting := time.Now()
		pg.Start(t)
		up := time.Now()
		res := <-back
		if res.published.IsZero() {
			t.Fatalf("%s: the relay did not publish again within %v (%d sessions)", outage.name, resumeWithin, a.Stats().Sessions)
		}
		waitFor(t, "the relay to own every shard again", func() bool { return a.Stats().Shards == postgres.OutboxShards })
		since := func(at time.Time) time.Duration { return at.Sub(stopping).Round(time.Millisecond) }
		t.Logf("%s at %v, %d messages committed and %d published: server down at %v, starting at %v, accepting connections at %v; "+
			"relay had a session again at %v and published again at %v (times from the stop); writers retried %d transactions meanwhile",
			outage.name, stopping.Sub(started).Round(time.Millisecond), committed, before.Published,
			since(stopped), since(starting), since(up), since(res.reconnected), since(res.published), w.retried.Load()-retried)
	}
	n := wait()
	if n != total {
		t.Fatalf("writers committed %d messages, want %d", n, total)
	}
	waitFor(t, "every message", func() bool { return r.distinct() == n })
	dups := checkOrder(t, r.records(), keys, perKey)
	st := a.Stats()
	if st.Sessions != 3 {
		t.Errorf("relay opened %d sessions, want 3: one, then one after each outage", st.Sessions)
	}
	if w.retried.Load() == 0 {
		t.Error("no writer's transaction failed: the outages did not fall mid-stream")
	}
	t.Logf("%d messages over %d keys in %v by %d writers, who retried %d transactions; relay: %d sessions, %d published, %d duplicates read",
		n, keys, time.Since(started).Round(time.Millisecond), writers, w.retried.Load(), st.Sessions, st.Published, dups)
}

// resumeWithin bounds how long a relay may take to publish again once the
// database is back.
const resumeWithin = time.Minute

// resumption is when a relay, after an outage, opened a session again and
// then published on it.
type resumption struct{ reconnected, published time.Time }

// watchResumption watches a relay from the start of an outage, polling
// finely enough to time its recovery, and sends what it saw once it
// published on a session later than its sessions-th, or after
// resumeWithin.
func watchResumption(a relay, sessions uint64) <-chan resumption {
	ch := make(chan resumption, 1)
	go func() {
		var res resumption
		var base uint64
		for deadline := time.Now().Add(resumeWithin); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			st := a.Stats()
			if res.reconnected.IsZero() {
				if st.Sessions <= sessions {
					continue
				}
				res.reconnected, base = time.Now(), st.Published
			}
			if st.Published > base {
				res.published = time.Now()
				break
			}
		}
		ch <- res
	}()
	return ch
}

// BenchmarkOutboxRelay measures how fast one relay publishes a backlog to
// Kafka, in messages per second, each message of a key of its own (the
// usual case) and with 50 keys (a wave per message of a key).
func BenchmarkOutboxRelay(b *testing.B) {
	e := newOutboxEnv(b)
	for _, keys := range []int{0, 50} {
		name := "Keys=distinct"
		if keys > 0 {
			name = fmt.Sprintf("Keys=%d", keys)
		}
		b.Run(name, func(b *testing.B) {
			for start := 0; start < b.N; start += 1000 {
				var msgs []domain.OutboxMessage
				for i := start; i < b.N && i < start+1000; i++ {
					key := testenv.Unique("user-")
					if keys > 0 {
						key = fmt.Sprintf("user-%d", i%keys)
					}
					msgs = append(msgs, e.message(key, i))
				}
				if err := e.enqueue(msgs...); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			r := e.startRelay(b, 0)
			for r.Stats().Published < uint64(b.N) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			r.stop()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
