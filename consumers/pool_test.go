package consumers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func TestPoolHandlesEveryRecordOnce(t *testing.T) {
	t.Parallel()
	const partitions, records, keys = 6, 500, 50
	k := newPoolKafka(t, partitions)
	msgs := make([]message, records)
	for i := range msgs {
		msgs[i] = message{key: fmt.Sprintf("user-%d", i%keys), value: strconv.Itoa(i), partition: kafka.PartitionAny}
	}
	want := k.produce(msgs)

	got := newTally()
	cfg := k.config()
	cfg.Workers = 4
	p := startPool(t, cfg, countingHandler(got))
	waitFor(t, "every record handled", func() bool { return got.covers(want) })
	p.stop()

	for r, n := range got.snapshot() {
		if n != 1 {
			t.Errorf("record %v handled %d times, want once", r, n)
		}
	}
	if n := got.len(); n != records {
		t.Errorf("handled %d records, want %d", n, records)
	}
	// Everything handled is committed: a restart reads nothing again.
	end := map[int32]int64{}
	for _, r := range want {
		end[r.partition] = max(end[r.partition], r.offset+1)
	}
	committed := k.committed(partitions)
	for part, want := range end {
		if committed[part] != want {
			t.Errorf("partition %d committed at %d, want %d", part, committed[part], want)
		}
	}
}

func TestPoolKeepsKeyOrder(t *testing.T) {
	t.Parallel()
	const keys, perKey = 40, 10
	k := newPoolKafka(t, 4)
	var msgs []message
	for seq := range perKey {
		for key := range keys {
			msgs = append(msgs, message{key: fmt.Sprintf("user-%d", key), value: strconv.Itoa(seq), partition: kafka.PartitionAny})
		}
	}
	k.produce(msgs)

	var (
		mu       sync.Mutex
		next     = map[string]int{}
		handled  atomic.Int64
		disorder []string
	)
	cfg := k.config()
	cfg.Workers = 4
	startPool(t, cfg, HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		seq, _ := strconv.Atoi(string(msg.Value))
		mu.Lock()
		if want := next[string(msg.Key)]; seq != want {
			disorder = append(disorder, fmt.Sprintf("%s: got seq %d, want %d", msg.Key, seq, want))
		}
		next[string(msg.Key)] = seq + 1
		mu.Unlock()
		handled.Add(1)
		return nil
	}))
	waitFor(t, "every record handled", func() bool { return handled.Load() >= keys*perKey })

	mu.Lock()
	defer mu.Unlock()
	if len(disorder) > 0 {
		t.Errorf("records of one key out of order:\n%s", strings.Join(disorder, "\n"))
	}
}

// TestPoolCommitsOnlyBehindDurableOutcomes holds some records back while
// the others, of other keys, finish out of order around them.
func TestPoolCommitsOnlyBehindDurableOutcomes(t *testing.T) {
	t.Parallel()
	const partitions, perPartition, workers = 2, 20, 4
	held := map[rec]bool{{0, 4}: true, {0, 11}: true, {1, 7}: true}
	k := newPoolKafka(t, partitions)
	// Held records have keys of their own, so the others all finish while
	// the held ones wait.
	heldKeys, freeKeys := distinctKeys("held", len(held)), distinctKeys("free", 10)
	var msgs []message
	for part := range int32(partitions) {
		for off := range int64(perPartition) {
			key := freeKeys[int(off)%len(freeKeys)]
			if held[rec{part, off}] {
				key, heldKeys = heldKeys[0], heldKeys[1:]
			}
			msgs = append(msgs, message{key: key, partition: part})
		}
	}
	k.produce(msgs)

	first := newTally()
	cfg := k.config()
	cfg.Workers = workers
	cfg.DrainTimeout = time.Second
	p := startPool(t, cfg, HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
		if held[recOf(msg)] {
			<-ctx.Done() // an outcome that never becomes durable
			return ctx.Err()
		}
		first.add(recOf(msg))
		return nil
	}))
	waitFor(t, "all but the held records handled", func() bool { return first.len() == partitions*perPartition-len(held) })
	p.stop()

	wantCommitted := map[int32]int64{0: 4, 1: 7}
	got := k.committed(partitions)
	for part, want := range wantCommitted {
		if got[part] != want {
			t.Errorf("partition %d committed at %d, want %d (the first unfinished record)", part, got[part], want)
		}
	}

	// At least once: the next pool in the group reads the unfinished
	// records again, and nothing before the committed offsets.
	second := newTally()
	startPool(t, cfg, countingHandler(second))
	var rest []rec
	for part, from := range wantCommitted {
		for off := from; off < perPartition; off++ {
			rest = append(rest, rec{part, off})
		}
	}
	waitFor(t, "the second pool to read from the committed offsets", func() bool { return second.covers(rest) })
	for r := range second.snapshot() {
		if r.offset < wantCommitted[r.partition] {
			t.Errorf("second pool read %v, before the committed offset %d", r, wantCommitted[r.partition])
		}
	}
}

func TestPoolRetriesFailedRecord(t *testing.T) {
	t.Parallel()
	const workers = 4
	k := newPoolKafka(t, 1)
	keys, others := []string{"user"}, []string{"other"}
	var msgs []message
	for seq := range 6 {
		msgs = append(msgs, message{key: keys[0], value: strconv.Itoa(seq)})
	}
	msgs = append(msgs, message{key: others[0], value: "other"})
	k.produce(msgs)

	var (
		mu       sync.Mutex
		order    []string
		attempts int
	)
	otherDone := make(chan struct{})
	var once sync.Once
	cfg := k.config()
	cfg.Workers = workers
	startPool(t, cfg, HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
		v := string(msg.Value)
		if v == "other" {
			once.Do(func() { close(otherDone) })
		}
		if v == "2" {
			mu.Lock()
			attempts++
			n := attempts
			mu.Unlock()
			// Fails until a record of another key went through behind it:
			// a failing record holds back its own key only.
			select {
			case <-otherDone:
				if n < 3 {
					return errNotYet
				}
			default:
				return errNotYet
			}
		}
		mu.Lock()
		order = append(order, v)
		mu.Unlock()
		return nil
	}))
	waitFor(t, "every record handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == len(msgs)
	})

	mu.Lock()
	defer mu.Unlock()
	var ofKey []string
	for _, v := range order {
		if v != "other" {
			ofKey = append(ofKey, v)
		}
	}
	if want := []string{"0", "1", "2", "3", "4", "5"}; !slices.Equal(ofKey, want) {
		t.Errorf("key order %v, want %v: later records must wait for the failing one", ofKey, want)
	}
	if attempts < 3 {
		t.Errorf("failing record attempted %d times, want at least 3", attempts)
	}
}

func TestPoolShutdown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// honourCtx: the handler returns when its context ends.
		honourCtx bool
	}{
		{"RecordsInHandFinish", true},
		{"HandlerIgnoresContext", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const partitions, records, workers = 3, 60, 3
			k := newPoolKafka(t, partitions)
			msgs := make([]message, records)
			for i := range msgs {
				msgs[i] = message{key: fmt.Sprintf("user-%d", i), partition: kafka.PartitionAny}
			}
			all := k.produce(msgs)

			release := make(chan struct{})
			var (
				mu       sync.Mutex
				started  = map[rec]bool{}
				finished = map[rec]bool{}
			)
			cfg := k.config()
			cfg.Workers = workers
			cfg.QueueDepth = 4
			cfg.DrainTimeout = 2 * time.Second
			p := startPool(t, cfg, HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
				mu.Lock()
				started[recOf(msg)] = true
				mu.Unlock()
				if tt.honourCtx {
					select {
					case <-release:
					case <-ctx.Done():
						return ctx.Err()
					}
				} else {
					<-release
				}
				mu.Lock()
				finished[recOf(msg)] = true
				mu.Unlock()
				return nil
			}))
			// Workers busy, records queued behind them.
			waitFor(t, "records in hand and queued", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(started) > 0 && p.Stats().InFlight > len(started)
			})

			p.cancel() // stopping now: the workers take no queued record from here on
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				p.stop()
			}()
			if tt.honourCtx {
				close(release) // the records in hand finish while Run drains
			}
			<-stopped // bounded by stop
			if !tt.honourCtx {
				close(release) // the abandoned handlers return after Close: nothing may touch the consumer
			}

			mu.Lock()
			inHand := len(started)
			if inHand > workers {
				t.Errorf("%d records started, want at most %d: queued records must not start once stopping", inHand, workers)
			}
			if tt.honourCtx && len(finished) != inHand {
				t.Errorf("%d of %d records in hand finished, want all", len(finished), inHand)
			}
			mu.Unlock()

			// The next pool reads everything not committed, nothing before.
			committed := k.committed(partitions)
			var notCommitted []rec
			for _, r := range all {
				if r.offset >= committed[r.partition] {
					notCommitted = append(notCommitted, r)
				}
			}
			mu.Lock()
			for _, r := range all {
				if !finished[r] && r.offset < committed[r.partition] {
					t.Errorf("record %v committed (partition at %d) but never finished", r, committed[r.partition])
				}
			}
			mu.Unlock()
			second := newTally()
			startPool(t, cfg, countingHandler(second))
			waitFor(t, "the next pool to read the records not committed", func() bool { return second.covers(notCommitted) })
			for r := range second.snapshot() {
				if r.offset < committed[r.partition] {
					t.Errorf("next pool read %v, before the committed offset %d", r, committed[r.partition])
				}
			}
			t.Logf("%d records in hand at shutdown, %d read again by the next pool", inHand, len(notCommitted))
		})
	}
}

func TestPoolRebalance(t *testing.T) {
	t.Parallel()
	const partitions, workers, depth = 6, 4, 8
	k := newPoolKafka(t, partitions)
	batch := func(from, n int) []message {
		msgs := make([]message, n)
		for i := range msgs {
			msgs[i] = message{key: fmt.Sprintf("user-%d", (from+i)%97), value: strconv.Itoa(from + i), partition: kafka.PartitionAny}
		}
		return msgs
	}
	var (
		mu  sync.Mutex
		all = k.produce(batch(0, 300))
	)
	// Records keep flowing while the group changes.
	stopProducing := make(chan struct{})
	producing := make(chan struct{})
	go func() {
		defer close(producing)
		for i := 300; ; i += 20 {
			select {
			case <-stopProducing:
				return
			case <-time.After(20 * time.Millisecond):
			}
			recs, err := k.tryProduce(batch(i, 20))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			all = append(all, recs...)
			mu.Unlock()
		}
	}()

	slow := func(t *tally) Handler {
		return HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
			time.Sleep(time.Millisecond)
			t.add(recOf(msg))
			return nil
		})
	}
	cfg := k.config()
	cfg.Workers = workers
	cfg.QueueDepth = depth
	a, b := newTally(), newTally()
	poolA := startPool(t, cfg, slow(a))
	waitFor(t, "pool A to handle records", func() bool { return a.len() >= 100 })
	poolB := startPool(t, cfg, slow(b))
	waitFor(t, "pool B to get partitions from A", func() bool { return b.len() >= 100 })
	poolA.stop()
	seenB := b.len()
	waitFor(t, "pool B to take A's partitions over", func() bool { return b.len() >= seenB+200 })
	close(stopProducing)
	<-producing

	mu.Lock()
	produced := slices.Clone(all)
	mu.Unlock()
	both := func() bool {
		sa, sb := a.snapshot(), b.snapshot()
		for _, r := range produced {
			if sa[r]+sb[r] == 0 {
				return false
			}
		}
		return true
	}
	waitFor(t, "every record handled", both)
	poolB.stop()

	sa, sb := a.snapshot(), b.snapshot()
	var dups []rec
	for _, r := range produced {
		if sa[r] > 1 || sb[r] > 1 {
			t.Errorf("record %v handled %d times by A and %d by B: one pool handled it twice", r, sa[r], sb[r])
		}
		if sa[r] > 0 && sb[r] > 0 {
			dups = append(dups, r)
		}
	}
	// Duplicates come only from records in flight at a revocation: at most
	// the pool's capacity at each of A's two revocations (B joining, A
	// leaving).
	if limit := 2 * workers * (depth + 1); len(dups) > limit {
		t.Errorf("%d records handled by both pools, want at most %d (records in flight at revocation): %v", len(dups), limit, dups)
	}
	t.Logf("%d records: A handled %d, B %d, %d by both (in flight when A's partitions were revoked): %v",
		len(produced), len(sa), len(sb), len(dups), dups)
}

// TestPoolRebalanceWhileHandlersBlock: a member whose handlers are stuck
// (a store outage) still serves rebalances, so the group moves partitions
// to a healthy member instead of waiting for max.poll.interval.ms.
func TestPoolRebalanceWhileHandlersBlock(t *testing.T) {
	t.Parallel()
	const partitions, records = 4, 200
	k := newPoolKafka(t, partitions)
	msgs := make([]message, records)
	for i := range msgs {
		msgs[i] = message{key: fmt.Sprintf("user-%d", i), partition: kafka.PartitionAny}
	}
	all := k.produce(msgs)

	cfg := k.config()
	cfg.Workers = 2
	cfg.QueueDepth = 2
	cfg.DrainTimeout = time.Second
	a := startPool(t, cfg, HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
		<-ctx.Done() // stuck until its partition is taken away
		return ctx.Err()
	}))
	waitFor(t, "pool A to stall and pause", func() bool { return a.Stats().Pauses > 0 })

	b := newTally()
	cfg.Workers = 4
	cfg.QueueDepth = 16
	startPool(t, cfg, countingHandler(b))
	waitFor(t, "pool B to get partitions while A's handlers are stuck", func() bool { return b.len() > 0 })
	a.stop()
	waitFor(t, "pool B to handle every record", func() bool { return b.covers(all) })
}

func TestPoolBackpressure(t *testing.T) {
	t.Parallel()
	const partitions, records, workers, depth = 3, 300, 2, 2
	k := newPoolKafka(t, partitions)
	msgs := make([]message, records)
	for i := range msgs {
		msgs[i] = message{key: fmt.Sprintf("user-%d", i%30), partition: kafka.PartitionAny}
	}
	want := k.produce(msgs)

	release := make(chan struct{})
	got := newTally()
	cfg := k.config()
	cfg.Workers = workers
	cfg.QueueDepth = depth
	p, err := NewPool(cfg, HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		time.Sleep(time.Millisecond) // slower than the broker
		got.add(recOf(msg))
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	p.stall = 20 * time.Millisecond // pause soon after the pool fills
	rp := runPool(t, p)
	// The handler blocks: the pool fills, fetching pauses, and it
	// keeps polling without taking more records.
	waitFor(t, "fetching to pause", func() bool { return p.Stats().Pauses > 0 })
	time.Sleep(200 * time.Millisecond) // several paused polls; nothing may come in meanwhile
	close(release)
	waitFor(t, "every record handled", func() bool { return got.covers(want) })
	rp.stop()

	for r, n := range got.snapshot() {
		if n != 1 {
			t.Errorf("record %v handled %d times, want once: pausing must not refetch", r, n)
		}
	}
	st := p.Stats()
	if peak, limit := st.PeakInFlight, workers*(depth+1); peak > limit {
		t.Errorf("%d records dispatched and unfinished at once, want at most %d", peak, limit)
	}
	// Beyond its capacity the pool holds the record that did not fit, plus at
	// most one from each partition that delivered before it was paused.
	if peak, limit := st.PeakBacklog, 1+partitions; peak > limit {
		t.Errorf("%d records fetched and waiting for room, want at most %d", peak, limit)
	}
	t.Logf("peak dispatched %d, peak waiting %d, paused %d times", st.PeakInFlight, st.PeakBacklog, st.Pauses)
}

func BenchmarkPoolThroughput(b *testing.B) {
	k := newPoolKafka(b, 6)
	msgs := make([]message, b.N)
	for i := range msgs {
		msgs[i] = message{key: fmt.Sprintf("user-%d", i%1000), value: "x", partition: kafka.PartitionAny}
	}
	k.produce(msgs)

	var (
		handled     atomic.Int64
		first, last atomic.Int64
	)
	cfg := k.config()
	p := startPool(b, cfg, HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
		now := time.Now().UnixNano()
		first.CompareAndSwap(0, now)
		if handled.Add(1) == int64(b.N) {
			last.Store(now)
		}
		return nil
	}))
	b.ResetTimer()
	waitFor(b, "every record handled", func() bool { return handled.Load() >= int64(b.N) })
	b.StopTimer()
	p.stop()
	if elapsed := time.Duration(last.Load() - first.Load()); elapsed > 0 {
		b.ReportMetric(float64(b.N-1)/elapsed.Seconds(), "records/s")
	}
}
