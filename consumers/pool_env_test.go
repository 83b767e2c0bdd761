package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/producers"
	"github.com/authworker/authworker/testenv"
)

// poolWait bounds every wait in the pool tests: far above what any step
// takes, it only turns a hang into a failure.
const poolWait = 60 * time.Second

// rec identifies a record by where the broker put it.
type rec struct {
	partition int32
	offset    int64
}

func (r rec) String() string { return fmt.Sprintf("%d@%d", r.partition, r.offset) }

func recOf(msg *kafka.Message) rec {
	return rec{partition: msg.TopicPartition.Partition, offset: int64(msg.TopicPartition.Offset)}
}

// poolKafka is a broker for one test: its topic and consumer group are the
// test's own, and deleted at cleanup.
type poolKafka struct {
	tb        testing.TB
	bootstrap string
	topic     string
	group     string
	admin     *kafka.AdminClient
	producer  *kafka.Producer
}

func newPoolKafka(tb testing.TB, partitions int) *poolKafka {
	tb.Helper()
	bootstrap := testenv.KafkaBootstrap(tb)
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		tb.Fatalf("admin client: %v", err)
	}
	producer, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": true,
	})
	if err != nil {
		admin.Close()
		tb.Fatalf("producer: %v", err)
	}
	k := &poolKafka{tb: tb, bootstrap: bootstrap, topic: testenv.Name(tb, "topic"), group: testenv.Name(tb, "group"),
		admin: admin, producer: producer}
	ctx, cancel := context.WithTimeout(context.Background(), poolWait)
	defer cancel()
	if err := producers.EnsureTopics(ctx, admin, []producers.Topic{{Name: k.topic, Partitions: partitions}}); err != nil {
		producer.Close()
		admin.Close()
		tb.Fatalf("create topic: %v", err)
	}
	tb.Cleanup(func() {
		producer.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.DeleteConsumerGroups(ctx, []string{k.group}); err != nil {
			tb.Logf("delete group %s: %v", k.group, err)
		}
		if _, err := admin.DeleteTopics(ctx, []string{k.topic}); err != nil {
			tb.Logf("delete topic %s: %v", k.topic, err)
		}
		admin.Close()
	})
	return k
}

// message is a record to produce: to partition, or by key when partition
// is kafka.PartitionAny.
type message struct {
	key, value string
	partition  int32
}

// produce writes msgs in order and returns where each landed.
func (k *poolKafka) produce(msgs []message) []rec {
	k.tb.Helper()
	recs, err := k.tryProduce(msgs)
	if err != nil {
		k.tb.Fatal(err)
	}
	return recs
}

// tryProduce is produce for goroutines other than the test's.
func (k *poolKafka) tryProduce(msgs []message) ([]rec, error) {
	delivered := make(chan kafka.Event, len(msgs))
	for i, m := range msgs {
		err := k.producer.Produce(&kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &k.topic, Partition: m.partition},
			Key:            []byte(m.key),
			Value:          []byte(m.value),
			Opaque:         i,
		}, delivered)
		if err != nil {
			return nil, fmt.Errorf("produce: %w", err)
		}
	}
	recs := make([]rec, len(msgs))
	timeout := time.After(poolWait)
	for range msgs {
		select {
		case ev := <-delivered:
			m := ev.(*kafka.Message)
			if m.TopicPartition.Error != nil {
				return nil, fmt.Errorf("deliver: %w", m.TopicPartition.Error)
			}
			recs[m.Opaque.(int)] = recOf(m)
		case <-timeout:
			return nil, errors.New("records not delivered")
		}
	}
	return recs, nil
}

// committed returns the group's committed offset per partition; -1 where
// nothing is committed.
func (k *poolKafka) committed(partitions int) map[int32]int64 {
	k.tb.Helper()
	tps := make([]kafka.TopicPartition, partitions)
	for i := range tps {
		tps[i] = kafka.TopicPartition{Topic: &k.topic, Partition: int32(i)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), poolWait)
	defer cancel()
	res, err := k.admin.ListConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: k.group, Partitions: tps}})
	if err != nil {
		k.tb.Fatalf("list group offsets: %v", err)
	}
	got := map[int32]int64{}
	for _, tp := range res.ConsumerGroupsTopicPartitions[0].Partitions {
		if tp.Error != nil {
			k.tb.Fatalf("group offset of partition %d: %v", tp.Partition, tp.Error)
		}
		got[tp.Partition] = max(int64(tp.Offset), -1)
	}
	return got
}

// config is a pool configuration for this test's topic and group.
func (k *poolKafka) config() Config {
	return Config{
		BootstrapServers: k.bootstrap,
		GroupID:          k.group,
		Topics:           []string{k.topic},
		DrainTimeout:     5 * time.Second,
		// Members learn of a rebalance at their next heartbeat.
		Kafka:  map[string]string{"heartbeat.interval.ms": "500"},
		Logger: slog.New(slog.NewTextHandler(k.tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// runningPool is a Pool whose Run is in progress.
type runningPool struct {
	*Pool
	tb      testing.TB
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
	stopped bool
}

// startPool runs a pool until stop, or until the test ends.
func startPool(tb testing.TB, cfg Config, h Handler) *runningPool {
	tb.Helper()
	p, err := NewPool(cfg, h)
	if err != nil {
		tb.Fatalf("NewPool: %v", err)
	}
	return runPool(tb, p)
}

func runPool(tb testing.TB, p *Pool) *runningPool {
	ctx, cancel := context.WithCancel(context.Background())
	rp := &runningPool{Pool: p, tb: tb, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rp.done)
		rp.err = p.Run(ctx)
	}()
	tb.Cleanup(func() { rp.stop() })
	return rp
}

// stop cancels Run and waits for it to return: within DrainTimeout, the
// grace for handlers ignoring cancellation, and a margin for leaving the
// group and closing.
func (rp *runningPool) stop() {
	rp.tb.Helper()
	if rp.stopped {
		return
	}
	rp.stopped = true
	rp.cancel()
	limit := rp.cfg.DrainTimeout + abandonGrace + 10*time.Second
	select {
	case <-rp.done:
	case <-time.After(limit):
		rp.tb.Fatalf("Run did not return within %v of its context ending", limit)
	}
	if rp.err != nil {
		rp.tb.Errorf("Run: %v", rp.err)
	}
}

// waitFor polls cond until it holds, failing the test after poolWait.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(poolWait)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tally counts handled records, safe for concurrent handlers.
type tally struct {
	mu    sync.Mutex
	count map[rec]int
}

func newTally() *tally { return &tally{count: map[rec]int{}} }

func (t *tally) add(r rec) {
	t.mu.Lock()
	t.count[r]++
	t.mu.Unlock()
}

func (t *tally) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.count)
}

func (t *tally) snapshot() map[rec]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := make(map[rec]int, len(t.count))
	for r, n := range t.count {
		m[r] = n
	}
	return m
}

// covers reports whether every record in want was handled at least once.
func (t *tally) covers(want []rec) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range want {
		if t.count[r] == 0 {
			return false
		}
	}
	return true
}

// countingHandler tallies every record and succeeds.
func countingHandler(t *tally) Handler {
	return HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
		t.add(recOf(msg))
		return nil
	})
}

// keysOnLanes returns n distinct keys that a pool with workers lanes sends
// to a lane accepted by onLane.
func keysOnLanes(prefix string, n, workers int, onLane func(lane int) bool) []string {
	p := &Pool{cfg: Config{Workers: workers}}
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("%s-%d", prefix, i)
		if onLane(p.laneOf(&kafka.Message{Key: []byte(k)})) {
			keys = append(keys, k)
		}
	}
	return keys
}

var errNotYet = errors.New("not yet")
