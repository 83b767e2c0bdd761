package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/postgres"
	"github.com/authworker/authworker/storagetest"
)

// recorder is an OutboxPublisher standing for the broker: it acknowledges
// what it is given, in order, unless fail refuses a message.
type recorder struct {
	t    testing.TB
	fail func(m domain.OutboxMessage) error // nil acknowledges everything

	mu    sync.Mutex
	acked []domain.OutboxMessage
	calls int
}

func (r *recorder) Publish(ctx context.Context, msgs []domain.OutboxMessage) []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	keys := map[string]bool{}
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		if keys[string(m.Key)] {
			r.t.Errorf("Publish got two messages of key %q at once, so the broker could reorder them", m.Key)
		}
		keys[string(m.Key)] = true
		if r.fail != nil {
			if errs[i] = r.fail(m); errs[i] != nil {
				continue
			}
		}
		r.acked = append(r.acked, m)
	}
	return errs
}

// published returns what was acknowledged so far.
func (r *recorder) published() []domain.OutboxMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]domain.OutboxMessage(nil), r.acked...)
}

func (r *recorder) attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// relayEnv is a fresh database with an outbox and what it takes to run
// relays on it.
type relayEnv struct {
	db     *postgres.DB
	dbURL  string
	outbox *postgres.Outbox
}

func newRelayEnv(t *testing.T) relayEnv {
	t.Helper()
	db, dbURL := openDB(t)
	return relayEnv{db: db, dbURL: dbURL, outbox: postgres.NewOutbox(db, newSealer(t))}
}

// fastRelay is a relay configuration for tests: short intervals, so that
// ownership moves and retries happen within a test.
func fastRelay(t testing.TB, pub postgres.OutboxPublisher) postgres.OutboxRelayConfig {
	return postgres.OutboxRelayConfig{
		Publisher:    pub,
		PollInterval: 50 * time.Millisecond,
		MinBackoff:   10 * time.Millisecond,
		MaxBackoff:   50 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
}

// runningRelay is a relay running in the background until stop.
type runningRelay struct {
	*postgres.OutboxRelay
	stop func()
}

// startRelay runs a relay until stop is called or the test ends.
func (e relayEnv) startRelay(t testing.TB, cfg postgres.OutboxRelayConfig) runningRelay {
	t.Helper()
	relay, err := postgres.NewOutboxRelay(e.outbox, cfg)
	if err != nil {
		t.Fatalf("NewOutboxRelay: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); relay.Run(ctx) }()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return runningRelay{relay, stop}
}

// enqueue writes msgs in one transaction that commits.
func (e relayEnv) enqueue(t testing.TB, msgs ...domain.OutboxMessage) {
	t.Helper()
	if err := e.db.InTx(context.Background(), func(ctx context.Context) error {
		return e.outbox.Enqueue(ctx, msgs...)
	}); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
}

// rows counts the outbox's rows.
func (e relayEnv) rows(t testing.TB) int {
	t.Helper()
	var n int
	if err := connect(t, e.dbURL).QueryRow(context.Background(), `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond until it holds, failing the test after a generous
// bound: a condition, not a timing, is what is tested.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkPublishedInOrder reports an error unless got holds exactly want's
// messages, each once, and every key's in want's order.
func checkPublishedInOrder(t testing.TB, got, want []domain.OutboxMessage) {
	t.Helper()
	byKey := func(ms []domain.OutboxMessage) map[string][]domain.OutboxMessage {
		out := map[string][]domain.OutboxMessage{}
		for _, m := range ms {
			out[string(m.Key)] = append(out[string(m.Key)], m)
		}
		return out
	}
	gotByKey, wantByKey := byKey(got), byKey(want)
	if len(got) != len(want) {
		t.Errorf("published %d messages, want %d", len(got), len(want))
	}
	for key, w := range wantByKey {
		g := gotByKey[key]
		if len(g) != len(w) {
			t.Errorf("key %s: published %d messages, want %d", key, len(g), len(w))
			continue
		}
		for i := range w {
			if !storagetest.SameOutboxMessage(g[i], w[i]) {
				t.Errorf("key %s: message %d published is %v, want %v", key, i, g[i], w[i])
				break
			}
		}
	}
}

// TestOutboxRelayPublishesCommittedOnly: a committed message is published
// with its topic, key, headers and value, then deleted; a rolled-back one
// never is. The relay polls once an hour here, so only the notification of
// the commit can wake it in time.
func TestOutboxRelayPublishesCommittedOnly(t *testing.T) {
	t.Parallel()
	e := newRelayEnv(t)
	pub := &recorder{t: t}
	cfg := fastRelay(t, pub)
	cfg.PollInterval = time.Hour
	relay := e.startRelay(t, cfg)
	waitFor(t, "the relay to own every shard", func() bool { return relay.Stats().Shards == postgres.OutboxShards })

	key := storagetest.NewUUID()
	rolledBack, committed := storagetest.NewOutboxMessage("auth.events", key, 1), storagetest.NewOutboxMessage("auth.events", key, 2)
	committed.CreatedAt = time.Now()
	err := e.db.InTx(context.Background(), func(ctx context.Context) error {
		if err := e.outbox.Enqueue(ctx, rolledBack); err != nil {
			return err
		}
		return errRefused
	})
	if !errors.Is(err, errRefused) {
		t.Fatalf("InTx = %v, want the refusal", err)
	}
	e.enqueue(t, committed)

	// Messages of a key go out in order: had the rolled-back one been
	// published, it would be there before the committed one.
	waitFor(t, "the committed message", func() bool { return len(pub.published()) > 0 })
	storagetest.CheckOutboxMessages(t, pub.published(), []domain.OutboxMessage{committed})
	waitFor(t, "the published row to be deleted", func() bool { return e.rows(t) == 0 })
	if s := relay.Stats(); s.Published != 1 || s.Batches != 1 || s.Failed != 0 || s.LastLag <= 0 || s.Lag.Count() != 1 || s.Sessions != 1 {
		t.Errorf("Stats = %+v, want 1 published in 1 batch, no failure, a lag, 1 session", s)
	}
}

// TestOutboxRelayRetriesFromFailedMessage: a message the broker refuses
// holds back the later messages of its key, not of other keys, and is
// retried; each message goes out once and every key in order.
func TestOutboxRelayRetriesFromFailedMessage(t *testing.T) {
	t.Parallel()
	e := newRelayEnv(t)
	a, b := storagetest.NewUUID(), storagetest.NewUUID()
	var want []domain.OutboxMessage
	for i := range 5 {
		want = append(want, storagetest.NewOutboxMessage("auth.events", a, i), storagetest.NewOutboxMessage("auth.notifications", b, i))
	}
	var once sync.Once
	pub := &recorder{t: t, fail: func(m domain.OutboxMessage) error {
		var err error
		if storagetest.SameOutboxMessage(m, want[2]) { // a's second
			once.Do(func() { err = domain.Unavailable("kafka", errors.New("delivery timed out")) })
		}
		return err
	}}
	e.enqueue(t, want...)
	relay := e.startRelay(t, fastRelay(t, pub))

	waitFor(t, "every message", func() bool { return len(pub.published()) >= len(want) })
	waitFor(t, "the rows to be deleted", func() bool { return e.rows(t) == 0 })
	checkPublishedInOrder(t, pub.published(), want)
	if s := relay.Stats(); s.Failed != 1 || s.Published != uint64(len(want)) {
		t.Errorf("Stats = %+v, want 1 failure and %d published", s, len(want))
	}
}

// TestOutboxRelayRidesOutBrokerOutage: while the broker refuses
// everything, the relay keeps the rows and retries with backoff; once it is
// back, every message goes out once, in order.
func TestOutboxRelayRidesOutBrokerOutage(t *testing.T) {
	t.Parallel()
	e := newRelayEnv(t)
	var mu sync.Mutex
	down := true
	pub := &recorder{t: t, fail: func(domain.OutboxMessage) error {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return domain.Unavailable("kafka", errors.New("all brokers down"))
		}
		return nil
	}}
	var want []domain.OutboxMessage
	keys := []string{storagetest.NewUUID(), storagetest.NewUUID(), storagetest.NewUUID(), storagetest.NewUUID()}
	for i := range 20 {
		want = append(want, storagetest.NewOutboxMessage("auth.events", keys[i%len(keys)], i))
	}
	e.enqueue(t, want...)
	relay := e.startRelay(t, fastRelay(t, pub))

	waitFor(t, "the relay to retry", func() bool { return pub.attempts() >= 5 })
	if n := e.rows(t); n != len(want) {
		t.Fatalf("%d rows left during the outage, want all %d", n, len(want))
	}
	mu.Lock()
	down = false
	mu.Unlock()
	waitFor(t, "every message", func() bool { return len(pub.published()) >= len(want) })
	waitFor(t, "the rows to be deleted", func() bool { return e.rows(t) == 0 })
	checkPublishedInOrder(t, pub.published(), want)
	if s := relay.Stats(); s.Failed < 5 {
		t.Errorf("Stats = %+v, want the failed attempts counted", s)
	}
}

// TestOutboxRelayRefusesTamperedRows: a value moved to another row does not
// open, so it is never published, nor is anything after it for its key;
// other keys go on.
func TestOutboxRelayRefusesTamperedRows(t *testing.T) {
	t.Parallel()
	e := newRelayEnv(t)
	victim, attacker, bystander := storagetest.NewUUID(), storagetest.NewUUID(), storagetest.NewUUID()
	e.enqueue(t, storagetest.NewOutboxMessage("auth.notifications", victim, 1))
	e.enqueue(t, storagetest.NewOutboxMessage("auth.notifications", attacker, 1))
	// Give the attacker the victim's code, and the victim the attacker's.
	if _, err := connect(t, e.dbURL).Exec(context.Background(), `
		UPDATE outbox SET value = other.value FROM outbox AS other WHERE other.id <> outbox.id`); err != nil {
		t.Fatal(err)
	}
	later := storagetest.NewOutboxMessage("auth.notifications", victim, 2)
	other := storagetest.NewOutboxMessage("auth.events", bystander, 1)
	e.enqueue(t, later, other)

	pub := &recorder{t: t}
	relay := e.startRelay(t, fastRelay(t, pub))
	waitFor(t, "the other key's message", func() bool { return len(pub.published()) > 0 })
	waitFor(t, "the refused rows to be retried", func() bool { return relay.Stats().Failed >= 4 })
	storagetest.CheckOutboxMessages(t, pub.published(), []domain.OutboxMessage{other})
	if n := e.rows(t); n != 3 {
		t.Errorf("%d rows left, want the 3 of the two tampered keys", n)
	}
}

// TestOutboxRelaysShareShards: relays split the shards between them, a
// relay that stops releases its shards with its connection, and the one
// left takes them over.
func TestOutboxRelaysShareShards(t *testing.T) {
	t.Parallel()
	e := newRelayEnv(t)
	pub := &recorder{t: t}
	first := e.startRelay(t, fastRelay(t, pub))
	waitFor(t, "the first relay to own every shard", func() bool { return first.Stats().Shards == postgres.OutboxShards })
	second := e.startRelay(t, fastRelay(t, pub))
	waitFor(t, "the relays to own half the shards each", func() bool {
		return first.Stats().Shards == postgres.OutboxShards/2 && second.Stats().Shards == postgres.OutboxShards/2
	})

	first.stop()
	waitFor(t, "the first relay's connection to end", func() bool { return relayBackends(t, e.dbURL) == 1 })
	waitFor(t, "the second relay to take over", func() bool { return second.Stats().Shards == postgres.OutboxShards })
	var want []domain.OutboxMessage
	for i := range 50 {
		want = append(want, storagetest.NewOutboxMessage("auth.events", fmt.Sprintf("user-%d", i), 1))
	}
	e.enqueue(t, want...)
	waitFor(t, "every message", func() bool { return len(pub.published()) >= len(want) })
	checkPublishedInOrder(t, pub.published(), want)
	// A relay counts a wave once the broker has acknowledged all of it,
	// after the publisher has seen its messages.
	waitFor(t, "the relays to count what they published", func() bool {
		return first.Stats().Published+second.Stats().Published >= uint64(len(want))
	})
	if got := second.Stats().Published; got != uint64(len(want)) {
		t.Errorf("the second relay published %d, want all %d", got, len(want))
	}
}

// relayBackends counts the relays' connections to the test's database.
func relayBackends(tb testing.TB, dbURL string) int {
	tb.Helper()
	var n int
	if err := connect(tb, dbURL).QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name LIKE '% outbox relay'`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestOutboxRelayConfigValidate(t *testing.T) {
	pub := &recorder{t: t}
	tests := []struct {
		name    string
		cfg     postgres.OutboxRelayConfig
		wantErr bool
	}{
		{"ZeroMeansDefaults", postgres.OutboxRelayConfig{Publisher: pub}, false},
		{"NoPublisher", postgres.OutboxRelayConfig{}, true},
		{"NegativeBatchSize", postgres.OutboxRelayConfig{Publisher: pub, BatchSize: -1}, true},
		{"NegativePollInterval", postgres.OutboxRelayConfig{Publisher: pub, PollInterval: -time.Second}, true},
		{"NegativeBackoff", postgres.OutboxRelayConfig{Publisher: pub, MinBackoff: -time.Second}, true},
		{"BackoffBounds", postgres.OutboxRelayConfig{Publisher: pub, MinBackoff: time.Minute, MaxBackoff: time.Second}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

// TestOutboxRelayWokenAfterEveryCommit: notifications are coalesced, yet
// every commit is followed by one: with polling out of the picture, a
// burst of concurrent transactions is published in full.
func TestOutboxRelayWokenAfterEveryCommit(t *testing.T) {
	t.Parallel()
	e := newRelayEnv(t)
	pub := &recorder{t: t}
	cfg := fastRelay(t, pub)
	cfg.PollInterval = time.Hour
	relay := e.startRelay(t, cfg)
	waitFor(t, "the relay to own every shard", func() bool { return relay.Stats().Shards == postgres.OutboxShards })
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for i := range 10 {
				m := storagetest.NewOutboxMessage("auth.events", storagetest.NewUUID(), i)
				if err := e.db.InTx(context.Background(), func(ctx context.Context) error { return e.outbox.Enqueue(ctx, m) }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, "every message", func() bool { return len(pub.published()) == 200 })
}
