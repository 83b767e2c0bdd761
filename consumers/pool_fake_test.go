package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// The tests in this file run the pool over a fakeConsumer: each rebalance,
// pause and store is the test's to trigger and observe, without a broker.

// startFakePool runs a pool over f until stop, or until the test ends.
// Unless cfg says otherwise, records in hand get longer to drain than any
// wait in a test, so that a pool waiting when it should not fails the test;
// and a pool that stays full pauses fetching at once.
func startFakePool(tb testing.TB, f *fakeConsumer, cfg Config, h Handler) *runningPool {
	tb.Helper()
	cfg.Topics = []string{fakeTopic}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 2 * poolWait
	}
	cfg.Logger = slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := NewPoolWithConsumer(cfg, f, h)
	if err != nil {
		tb.Fatalf("NewPoolWithConsumer: %v", err)
	}
	p.stall = time.Millisecond
	return runPool(tb, p)
}

// journal lists handled records in the order they finished.
type journal struct {
	mu   sync.Mutex
	recs []rec
}

func (j *journal) add(r rec) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.recs = append(j.recs, r)
}

func (j *journal) list() []rec {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.recs)
}

// recsOf returns the records at offsets [from, to) of partition.
func recsOf(partition int32, from, to int64) []rec {
	var recs []rec
	for o := from; o < to; o++ {
		recs = append(recs, rec{partition, o})
	}
	return recs
}

// checkHandledOnce fails the test unless every record in want was handled
// exactly once.
func checkHandledOnce(tb testing.TB, handled *tally, want []rec) {
	tb.Helper()
	got := handled.snapshot()
	for _, r := range want {
		if got[r] != 1 {
			tb.Errorf("record %v handled %d times, want once", r, got[r])
		}
	}
}

// checkNotStarted fails the test if a record in recs reached the handler.
func checkNotStarted(tb testing.TB, started *tally, recs []rec) {
	tb.Helper()
	got := started.snapshot()
	for _, r := range recs {
		if got[r] != 0 {
			tb.Errorf("record %v reached the handler %d times, want never", r, got[r])
		}
	}
}

// checkCommitted fails the test unless partition's committed offset is want
// (-1 for none).
func checkCommitted(tb testing.TB, f *fakeConsumer, partition int32, want int64) {
	tb.Helper()
	if got := f.committedOffset(partition); got != want {
		tb.Errorf("partition %d committed at %d, want %d", partition, got, want)
	}
}

// checkNoRejectedStores fails the test if the pool tried to store an offset
// for a partition it did not own.
func checkNoRejectedStores(tb testing.TB, f *fakeConsumer) {
	tb.Helper()
	if rej := f.rejectedStores(); len(rej) > 0 {
		tb.Errorf("offsets stored for partitions not assigned: %v", rej)
	}
}

// produceOnTwoKeys appends n records to partitions 0 and 1. Partition 0's
// share a key, so they queue behind its first; partition 1's share
// another, so they flow past them.
func produceOnTwoKeys(f *fakeConsumer, n int) {
	f.produce(0, slices.Repeat([]string{"busy"}, n)...)
	f.produce(1, slices.Repeat([]string{"free"}, n)...)
}

// gate returns a channel for handlers to wait on and the function that
// closes it, once however often it is called. Tests defer the function, so
// that no handler outlives its test.
func gate() (<-chan struct{}, func()) {
	ch := make(chan struct{})
	return ch, sync.OnceFunc(func() { close(ch) })
}

// TestPoolRevokeDrainsRecordInHand: a revoked partition stays assigned
// until its record in hand finishes, so that record's offset is stored and
// committed before the partition moves; the records queued behind it are
// left to the next owner.
func TestPoolRevokeDrainsRecordInHand(t *testing.T) {
	t.Parallel()
	const workers = 2
	f := newFakeConsumer(t)
	produceOnTwoKeys(f, 3) // 0@0 in hand, 0@1 and 0@2 queued behind it
	f.assign(0, 1)

	release, open := gate()
	defer open()
	started, handled := newTally(), newTally()
	p := startFakePool(t, f, Config{Workers: workers, QueueDepth: 4}, HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
		started.add(recOf(msg))
		if recOf(msg) == (rec{0, 0}) {
			<-release
		}
		handled.add(recOf(msg))
		return nil
	}))
	waitFor(t, "0@0 in hand, 0@1 and 0@2 queued, partition 1 handled", func() bool {
		return started.covers([]rec{{0, 0}}) && handled.covers(recsOf(1, 0, 3)) && p.Stats().InFlight == 3
	})

	f.revoke(0)
	waitFor(t, "the revocation to wait for 0@0", f.rebalancing)
	if !f.isAssigned(0) {
		t.Fatal("partition 0 unassigned while 0@0 is in hand, want it kept until 0@0 finishes")
	}
	open()
	waitFor(t, "partition 0 unassigned", func() bool { return !f.isAssigned(0) })
	checkCommitted(t, f, 0, 1) // committed on unassign, so stored before it
	if got, want := p.Stats().Assigned, 1; got != want {
		t.Errorf("Stats().Assigned = %d after revoking one of two partitions, want %d", got, want)
	}
	waitFor(t, "the queued records of partition 0 dropped", func() bool { return p.Stats().InFlight == 0 })
	p.stop()

	checkNotStarted(t, started, recsOf(0, 1, 3))
	checkHandledOnce(t, handled, append(recsOf(0, 0, 1), recsOf(1, 0, 3)...))
	checkCommitted(t, f, 0, 1)
	checkCommitted(t, f, 1, 3)
	checkNoRejectedStores(t, f)
}

// TestPoolRevokeLeavesUnfinishedRecord: when the record in hand of a
// revoked partition does not finish in time, or the partition was lost,
// the partition moves on without it and nothing is stored for it: the next
// owner reads the record again.
func TestPoolRevokeLeavesUnfinishedRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		drain time.Duration // 0: longer than the test waits
		lose  bool
		// hold handles 0@0; release is closed once partition 0 is
		// unassigned.
		hold func(ctx context.Context, release <-chan struct{}) error
	}{
		{
			name: "FailingRecordGivenUp",
			hold: func(context.Context, <-chan struct{}) error { return errNotYet },
		},
		{
			name:  "RecordPastDrainTimeoutCancelled",
			drain: time.Millisecond,
			hold: func(ctx context.Context, _ <-chan struct{}) error {
				<-ctx.Done()
				return ctx.Err()
			},
		},
		{
			name: "LostRecordNotWaitedFor",
			lose: true,
			hold: func(_ context.Context, release <-chan struct{}) error {
				<-release // finishes after the loss: too late to store
				return nil
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const workers = 2
			f := newFakeConsumer(t)
			produceOnTwoKeys(f, 3)
			f.assign(0, 1)

			release, open := gate()
			defer open()
			started := newTally()
			cfg := Config{Workers: workers, QueueDepth: 4, DrainTimeout: tt.drain}
			p := startFakePool(t, f, cfg, HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
				started.add(recOf(msg))
				if recOf(msg) == (rec{0, 0}) {
					return tt.hold(ctx, release)
				}
				return nil
			}))
			waitFor(t, "0@0 in hand, 0@1 and 0@2 queued, partition 1 handled", func() bool {
				return started.covers(append(recsOf(0, 0, 1), recsOf(1, 0, 3)...)) && p.Stats().InFlight == 3
			})

			if tt.lose {
				f.lose()
			} else {
				f.revoke(0)
			}
			waitFor(t, "partition 0 unassigned", func() bool { return !f.isAssigned(0) })
			open()
			waitFor(t, "0@0 given up and the queued records dropped", func() bool { return p.Stats().InFlight == 0 })
			p.stop()

			if got := f.storedOffsets(0); len(got) > 0 {
				t.Errorf("offsets %v stored for partition 0, want none: 0@0 never finished while assigned", got)
			}
			checkCommitted(t, f, 0, -1)
			checkNotStarted(t, started, recsOf(0, 1, 3))
			checkNoRejectedStores(t, f)
		})
	}
}

// TestPoolResumesPartitionRevokedWhilePaused: librdkafka keeps a pause
// across assignments, so a partition paused by backpressure when it is
// revoked must be resumed then; assigned again while fetching is still
// paused, it is paused anew once it delivers, like any partition. Every
// record is handled once: none skipped by the pauses or the move, none
// handled twice.
func TestPoolResumesPartitionRevokedWhilePaused(t *testing.T) {
	t.Parallel()
	const workers = 2
	moving, stuck := "moving", "stuck"
	f := newFakeConsumer(t)
	f.produce(0, slices.Repeat([]string{moving}, 2)...)
	f.produce(1, slices.Repeat([]string{stuck}, 6)...)
	f.assign(0, 1)

	releaseMoving, openMoving := gate()
	releaseStuck, openStuck := gate()
	defer openMoving()
	defer openStuck()
	started, order := newTally(), &journal{}
	p := startFakePool(t, f, Config{Workers: workers, QueueDepth: 1}, HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
		started.add(recOf(msg))
		if msg.TopicPartition.Partition == 0 {
			<-releaseMoving
		} else {
			<-releaseStuck
		}
		order.add(recOf(msg))
		return nil
	}))
	// Each key has one record in hand and one queued, which fills the
	// pool; 1@2 waits for room.
	waitFor(t, "both partitions paused behind a full pool", func() bool {
		st := p.Stats()
		return started.covers([]rec{{0, 0}, {1, 0}}) && st.InFlight == 4 && st.Backlog == 1 && f.isPaused(0) && f.isPaused(1)
	})

	f.revoke(0)
	waitFor(t, "the revocation to wait for 0@0", f.rebalancing)
	openMoving()
	waitFor(t, "partition 0 unassigned", func() bool { return !f.isAssigned(0) })
	if f.isPaused(0) {
		t.Error("partition 0 still paused once revoked, want it resumed for its next assignment")
	}
	// The room partition 0 left goes to partition 1's records, queued
	// behind their key's first, until the pool is full again.
	waitFor(t, "partition 1 paused again behind a full pool", func() bool {
		st := p.Stats()
		return st.Paused == 1 && f.isPaused(1) && st.InFlight == 4 && st.Backlog == 1
	})
	checkCommitted(t, f, 0, 1)

	f.produce(0, slices.Repeat([]string{moving}, 3)...)
	f.assign(0)
	waitFor(t, "partition 0 to deliver 0@1 and be paused again", func() bool {
		return f.isPaused(0) && p.Stats().Backlog == 2 && p.Stats().Paused == 2
	})
	openStuck()
	all := append(recsOf(0, 0, 5), recsOf(1, 0, 6)...)
	waitFor(t, "every record handled", func() bool { return len(order.list()) == len(all) })
	p.stop()

	checkHandledOnce(t, started, all)
	for part := range int32(2) {
		var got []int64
		for _, r := range order.list() {
			if r.partition == part {
				got = append(got, r.offset)
			}
		}
		if !slices.IsSorted(got) {
			t.Errorf("partition %d handled in order %v, want ascending", part, got)
		}
	}
	checkCommitted(t, f, 0, 5)
	checkCommitted(t, f, 1, 6)
	checkNoRejectedStores(t, f)
}

// TestPoolPausesFetchingWhileKeyBlocked: a key whose first record blocks
// collects its later records until the pool is full, which pauses
// fetching; the pool keeps polling without taking records, what it holds
// stays within what the configuration allows, and fetching resumes once the
// key's records drain.
func TestPoolPausesFetchingWhileKeyBlocked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                     string
		workers, depth           int
		partitions, perPartition int
	}{
		{"OneWorkerOneSlot", 1, 1, 3, 40},
		{"TwoWorkersTwoSlots", 2, 2, 3, 100},
		{"FourWorkersDeepLanes", 4, 16, 5, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const stuck = "stuck"
			f := newFakeConsumer(t)
			var all []rec
			for part := range int32(tt.partitions) {
				keys := make([]string, tt.perPartition)
				for i := range keys {
					keys[i] = fmt.Sprintf("user-%d-%d", part, i)
					if i%2 == 0 {
						keys[i] = stuck
					}
				}
				f.produce(part, keys...)
				all = append(all, recsOf(part, 0, int64(tt.perPartition))...)
			}
			parts := make([]int32, tt.partitions)
			for i := range parts {
				parts[i] = int32(i)
			}
			f.assign(parts...)

			release, open := gate()
			defer open()
			handled := newTally()
			p := startFakePool(t, f, Config{Workers: tt.workers, QueueDepth: tt.depth}, HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
				if string(msg.Key) == stuck {
					<-release
				}
				handled.add(recOf(msg))
				return nil
			}))
			// Polling on while paused is what serves rebalances.
			waitFor(t, "the pool to poll with every partition paused", func() bool { return f.pausedPollCount() >= 3 })
			// The pool holds workers × (1 + depth) records; beyond them,
			// the record that did not fit, and at most one from each
			// partition that delivered before it was paused.
			limit := tt.workers*(tt.depth+1) + 1 + tt.partitions
			if held := f.deliveredCount() - handled.len(); held > limit {
				t.Errorf("%d records fetched and not handled while a key is blocked, want at most %d", held, limit)
			}
			if st := p.Stats(); st.Pauses == 0 {
				t.Errorf("Stats() = %+v while a key is blocked, want Pauses > 0", st)
			}

			open()
			waitFor(t, "every record handled", func() bool { return handled.covers(all) })
			waitFor(t, "fetching resumed", func() bool { return p.Stats().Paused == 0 && !slices.ContainsFunc(parts, f.isPaused) })
			st := p.Stats()
			p.stop()

			checkHandledOnce(t, handled, all)
			if limit := tt.workers * (tt.depth + 1); st.PeakInFlight > limit {
				t.Errorf("PeakInFlight = %d, want at most %d", st.PeakInFlight, limit)
			}
			if limit := 1 + tt.partitions; st.PeakBacklog > limit {
				t.Errorf("PeakBacklog = %d, want at most %d", st.PeakBacklog, limit)
			}
			if st.InFlight != 0 || st.Backlog != 0 {
				t.Errorf("Stats() = %+v once every record was handled, want nothing in flight or waiting", st)
			}
			for _, part := range parts {
				checkCommitted(t, f, part, int64(tt.perPartition))
			}
		})
	}
}

// TestPoolStoresOffsetsBehindUnfinishedRecords: records of different keys
// finish out of order, but the stored offset never passes a record whose
// outcome is not durable, and never moves back.
func TestPoolStoresOffsetsBehindUnfinishedRecords(t *testing.T) {
	t.Parallel()
	const workers, records = 4, 20
	tests := []struct {
		name string
		held []int64 // offsets held back, in order
		fail bool    // held records fail until released, instead of blocking
		want int64   // the offset stored while they are held, -1 for none
	}{
		{name: "FirstRecordHeld", held: []int64{0}, want: -1},
		{name: "MiddleRecordHeld", held: []int64{7}, want: 7},
		{name: "TwoRecordsHeld", held: []int64{4, 11}, want: 4},
		{name: "FailingRecordHeld", held: []int64{7}, fail: true, want: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Held records have keys of their own, so the others all
			// finish while the held ones wait.
			heldKeys, freeKeys := distinctKeys("held", len(tt.held)), distinctKeys("free", 6)
			keys := make([]string, records)
			for i := range keys {
				keys[i] = freeKeys[i%len(freeKeys)]
				if j := slices.Index(tt.held, int64(i)); j >= 0 {
					keys[i] = heldKeys[j]
				}
			}
			f := newFakeConsumer(t)
			f.produce(0, keys...)
			f.assign(0)

			release, open := gate()
			defer open()
			handled := newTally()
			p := startFakePool(t, f, Config{Workers: workers, QueueDepth: 16}, HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
				if slices.Contains(tt.held, int64(msg.TopicPartition.Offset)) {
					if tt.fail {
						select {
						case <-release:
						default:
							return errNotYet
						}
					} else {
						<-release
					}
				}
				handled.add(recOf(msg))
				return nil
			}))
			waitFor(t, "every record but the held ones finished", func() bool {
				return handled.len() == records-len(tt.held) && p.Stats().InFlight == len(tt.held)
			})
			stored := f.storedOffsets(0)
			if got := slices.Max(append([]int64{-1}, stored...)); got != tt.want {
				t.Errorf("stored up to offset %d while %v are held, want %d: stored %v", got, tt.held, tt.want, stored)
			}

			open()
			waitFor(t, "every offset stored", func() bool { return slices.Contains(f.storedOffsets(0), records) })
			p.stop()

			if stored := f.storedOffsets(0); !slices.IsSorted(stored) {
				t.Errorf("stored offsets %v moved back", stored)
			}
			checkHandledOnce(t, handled, recsOf(0, 0, records))
			checkCommitted(t, f, 0, records)
		})
	}
}

// TestPoolCommitsAtShutdown: stopping commits what finished, records in hand
// included when they finish within DrainTimeout; queued records do not
// start, and a handler that ignores its context is abandoned without
// storing anything once the consumer is closed.
func TestPoolCommitsAtShutdown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		drain time.Duration // 0: longer than the test waits
		// releaseInDrain: the record in hand finishes while Run drains;
		// otherwise only once Run returned.
		releaseInDrain bool
		want           int64 // partition 0's committed offset
	}{
		{name: "RecordInHandFinishes", releaseInDrain: true, want: 3},
		{name: "HandlerIgnoringContextAbandoned", drain: time.Millisecond, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const workers, perPartition = 2, 8
			f := newFakeConsumer(t)
			produceOnTwoKeys(f, perPartition)
			f.assign(0, 1)

			release, open := gate()
			defer open()
			started, handled := newTally(), newTally()
			// Room for every record: nothing pauses.
			cfg := Config{Workers: workers, QueueDepth: perPartition, DrainTimeout: tt.drain}
			p := startFakePool(t, f, cfg, HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
				started.add(recOf(msg))
				if recOf(msg) == (rec{0, 2}) {
					<-release // ignores ctx
				}
				handled.add(recOf(msg))
				return nil
			}))
			waitFor(t, "0@2 in hand with records queued behind it, partition 1 handled", func() bool {
				return started.covers([]rec{{0, 2}}) && handled.covers(recsOf(1, 0, perPartition)) && p.Stats().InFlight > 1
			})

			p.cancel() // from here on no queued record starts
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				p.stop()
			}()
			if tt.releaseInDrain {
				open()
			}
			<-stopped // bounded by stop
			open()    // an abandoned handler returns after Close: the fake fails the test if its offset is stored
			waitFor(t, "the abandoned handler to return", func() bool { return p.Stats().InFlight == 0 })

			if !f.isClosed() {
				t.Error("consumer not closed after Run returned")
			}
			checkNotStarted(t, started, recsOf(0, 3, perPartition))
			checkCommitted(t, f, 0, tt.want)
			checkCommitted(t, f, 1, perPartition)
			checkNoRejectedStores(t, f)
		})
	}
}

// TestPoolStopsOnFatalError: a fatal consumer error ends Run with that
// error, after committing what finished and closing the consumer.
func TestPoolStopsOnFatalError(t *testing.T) {
	t.Parallel()
	f := newFakeConsumer(t)
	f.produce(0, "a", "b", "c")
	f.assign(0)
	handled := newTally()
	p, err := NewPoolWithConsumer(Config{Topics: []string{fakeTopic}}, f, countingHandler(handled))
	if err != nil {
		t.Fatalf("NewPoolWithConsumer: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	waitFor(t, "every record handled", func() bool { return handled.covers(recsOf(0, 0, 3)) && p.Stats().InFlight == 0 })

	fatal := kafka.NewError(kafka.ErrFatal, "fenced by a newer instance", true)
	f.queueEvent(fatal)
	var got error
	select {
	case got = <-done:
	case <-time.After(poolWait):
		t.Fatal("Run did not return after a fatal error")
	}
	if !errors.Is(got, fatal) {
		t.Errorf("Run = %v, want %v", got, fatal)
	}
	checkCommitted(t, f, 0, 3)
	if !f.isClosed() {
		t.Error("consumer not closed after Run returned")
	}
}

// TestNewPoolWithConsumer: a pool given its consumer checks its own
// settings only; the consumer's are the caller's.
func TestNewPoolWithConsumer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"NoBootstrapServersNeeded", Config{Topics: []string{fakeTopic}}, false},
		{"TopicsRequired", Config{}, true},
		{"NegativeWorkersRefused", Config{Topics: []string{fakeTopic}, Workers: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewPoolWithConsumer(tt.cfg, newFakeConsumer(t), countingHandler(newTally()))
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("NewPoolWithConsumer(%+v) error = %v, want error: %t", tt.cfg, err, tt.wantErr)
			}
		})
	}
}

// TestPoolCloseWithoutRun: a pool built but never run releases its consumer
// on Close, once, and Run after Close refuses to start.
func TestPoolCloseWithoutRun(t *testing.T) {
	c := newFakeConsumer(t)
	p, err := NewPoolWithConsumer(Config{Topics: []string{"requests"}}, c, HandlerFunc(func(context.Context, *kafka.Message) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	p.Close()
	if !c.isClosed() {
		t.Error("Close left the consumer open")
	}
	if err := p.Run(context.Background()); err == nil {
		t.Error("Run after Close started")
	}
}

// TestPoolKeepsEveryWorkerBusy: whenever as many records of distinct keys
// wait as there are workers, every worker holds one, however the keys hash
// and whatever partition they come from: parallelism is bounded by the
// workers and the keys, nothing else.
func TestPoolKeepsEveryWorkerBusy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		workers    int
		partitions int
	}{
		{"OnePartition", 8, 1},
		{"FewerPartitionsThanWorkers", 8, 3},
		{"ManyWorkers", 32, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeConsumer(t)
			parts := make([]int32, tt.partitions)
			for i := range parts {
				parts[i] = int32(i)
			}
			keys := distinctKeys("user", tt.workers)
			for i, k := range keys {
				f.produce(parts[i%len(parts)], k)
			}
			f.assign(parts...)
			release, open := gate()
			defer open()
			inHand := newTally()
			p := startFakePool(t, f, Config{Workers: tt.workers, QueueDepth: 1}, HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
				inHand.add(recOf(msg))
				<-release
				return nil
			}))
			waitFor(t, "every worker to hold a record", func() bool { return inHand.len() == tt.workers })
			if st := p.Stats(); st.InFlight != tt.workers {
				t.Errorf("Stats().InFlight = %d, want %d", st.InFlight, tt.workers)
			}
			open()
			p.stop()
		})
	}
}

// TestPoolJoinedByAnyAssignment: a pool has joined its group once it is
// given an assignment, even an empty one (the group gave every partition
// to other members), and not before: readiness waits for it.
func TestPoolJoinedByAnyAssignment(t *testing.T) {
	tests := []struct {
		name       string
		partitions []int32
	}{
		{"Partitions", []int32{0, 1}},
		{"NonePartitionsOwnedByOthers", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeConsumer(t)
			rp := startFakePool(t, f, Config{Workers: 2}, HandlerFunc(func(context.Context, *kafka.Message) error { return nil }))
			defer rp.stop()
			if rp.Stats().Joined {
				t.Fatal("Joined before any assignment")
			}
			f.assign(tt.partitions...)
			waitFor(t, "the pool to join", func() bool { return rp.Stats().Joined })
			if got := rp.Stats().Assigned; got != len(tt.partitions) {
				t.Errorf("Assigned = %d, want %d", got, len(tt.partitions))
			}
		})
	}
}
