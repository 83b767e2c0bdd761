package consumers

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// fakeTopic is the one topic a fakeConsumer holds.
const fakeTopic = "auth.request"

// fakeConsumer is a Consumer over an in-memory topic. Where the pool relies
// on librdkafka it behaves the same:
//
//   - rebalances the test queues are delivered one per Poll, by calling the
//     rebalance callback from inside Poll, which must acknowledge them, and
//     other events the test queues are returned by Poll;
//   - Poll returns the records of assigned, unpaused partitions in offset
//     order, taking the partitions in turn;
//   - an assigned partition starts at its committed offset, or at the start
//     of its log (auto.offset.reset=earliest);
//   - Pause stops a partition at once, as if what librdkafka prefetched were
//     dropped, and Resume continues after the last record Poll returned;
//   - a pause outlives an unassignment: a partition assigned again is still
//     paused until it is resumed;
//   - offsets are stored only for assigned partitions, and committed by
//     Commit and by IncrementalUnassign, unless the assignment was lost;
//   - Close revokes the assignment through the rebalance callback.
//
// It does not commit in the background, so what a test reads as committed
// is what the pool had committed. Misuse that librdkafka would refuse or
// hang on fails the test.
type fakeConsumer struct {
	tb testing.TB

	mu          sync.Mutex
	wake        chan struct{} // closed and replaced when Poll may have something new
	rebalance   func(kafka.Event)
	queued      []any              // fakeRebalance or kafka.Event, for the next Polls
	log         map[int32][]string // each partition's record keys, by offset
	position    map[int32]int64    // assigned partitions: the next offset Poll returns
	paused      map[int32]bool
	stored      map[int32]int64
	committed   map[int32]int64
	history     map[int32][]int64 // every offset stored, in order
	rejected    []kafka.TopicPartition
	turn        int // where Poll starts looking for a record, for fairness
	lost        bool
	acked       bool // the rebalance in progress was acknowledged
	balancing   bool // the rebalance callback is running
	closed      bool
	pausedPolls int // Polls while every assigned partition was paused
	delivered   int // records Poll returned
}

// fakeRebalance is a rebalance the test queued for the next Poll.
type fakeRebalance struct {
	assign     bool
	lost       bool // revokes the whole assignment, whatever partitions says
	partitions []int32
}

var _ Consumer = (*fakeConsumer)(nil)

func newFakeConsumer(tb testing.TB) *fakeConsumer {
	return &fakeConsumer{
		tb:        tb,
		wake:      make(chan struct{}),
		log:       map[int32][]string{},
		position:  map[int32]int64{},
		paused:    map[int32]bool{},
		stored:    map[int32]int64{},
		committed: map[int32]int64{},
		history:   map[int32][]int64{},
	}
}

// notify wakes a waiting Poll. The caller holds f.mu.
func (f *fakeConsumer) notify() {
	close(f.wake)
	f.wake = make(chan struct{})
}

// produce appends one record per key to partition.
func (f *fakeConsumer) produce(partition int32, keys ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log[partition] = append(f.log[partition], keys...)
	f.notify()
}

// assign queues the assignment of partitions for the next Poll.
func (f *fakeConsumer) assign(partitions ...int32) {
	f.queue(fakeRebalance{assign: true, partitions: partitions})
}

// revoke queues the revocation of partitions for the next Poll.
func (f *fakeConsumer) revoke(partitions ...int32) {
	f.queue(fakeRebalance{partitions: partitions})
}

// lose queues the loss of the whole assignment for the next Poll, as when
// the member was expelled from the group: AssignmentLost reports true while
// the callback runs.
func (f *fakeConsumer) lose() {
	f.queue(fakeRebalance{lost: true})
}

// queueEvent queues ev for Poll to return.
func (f *fakeConsumer) queueEvent(ev kafka.Event) { f.queue(ev) }

func (f *fakeConsumer) queue(r any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queued = append(f.queued, r)
	f.notify()
}

// isAssigned reports whether partition is in the assignment.
func (f *fakeConsumer) isAssigned(partition int32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.position[partition]
	return ok
}

// isPaused reports whether partition is paused.
func (f *fakeConsumer) isPaused(partition int32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.paused[partition]
}

// rebalancing reports whether the rebalance callback is running.
func (f *fakeConsumer) rebalancing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.balancing
}

// committedOffset returns partition's committed offset, -1 if none.
func (f *fakeConsumer) committedOffset(partition int32) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o, ok := f.committed[partition]; ok {
		return o
	}
	return -1
}

// storedOffsets returns every offset stored for partition, in order.
func (f *fakeConsumer) storedOffsets(partition int32) []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.history[partition])
}

// rejectedStores returns the offsets the pool tried to store for
// partitions not assigned.
func (f *fakeConsumer) rejectedStores() []kafka.TopicPartition {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rejected)
}

// pausedPollCount returns how many times Poll was called while partitions
// were assigned and all of them paused.
func (f *fakeConsumer) pausedPollCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pausedPolls
}

// deliveredCount returns how many records Poll returned.
func (f *fakeConsumer) deliveredCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.delivered
}

// isClosed reports whether Close was called.
func (f *fakeConsumer) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// SubscribeTopics implements Consumer.
func (f *fakeConsumer) SubscribeTopics(topics []string, rebalance func(kafka.Event)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Equal(topics, []string{fakeTopic}) {
		f.tb.Errorf("subscribed to %v, want [%s]", topics, fakeTopic)
	}
	f.rebalance = rebalance
	return nil
}

// Poll implements Consumer.
func (f *fakeConsumer) Poll(timeoutMs int) kafka.Event {
	timeout := time.NewTimer(time.Duration(timeoutMs) * time.Millisecond)
	defer timeout.Stop()
	f.mu.Lock()
	if f.allPaused() {
		f.pausedPolls++
	}
	for {
		if f.closed {
			f.mu.Unlock()
			f.tb.Error("Poll after Close")
			return nil
		}
		if len(f.queued) > 0 {
			q := f.queued[0]
			f.queued = f.queued[1:]
			f.mu.Unlock()
			if r, ok := q.(fakeRebalance); ok {
				f.deliver(r)
				return nil
			}
			return q.(kafka.Event)
		}
		if msg := f.next(); msg != nil {
			f.mu.Unlock()
			return msg
		}
		wake := f.wake
		f.mu.Unlock()
		select {
		case <-wake:
		case <-timeout.C:
			return nil
		}
		f.mu.Lock()
	}
}

// allPaused reports whether partitions are assigned and all of them
// paused. The caller holds f.mu.
func (f *fakeConsumer) allPaused() bool {
	for p := range f.position {
		if !f.paused[p] {
			return false
		}
	}
	return len(f.position) > 0
}

// next returns the next record of the first assigned, unpaused partition
// after the last one served that has one, or nil. The caller holds f.mu.
func (f *fakeConsumer) next() *kafka.Message {
	parts := slices.Sorted(maps.Keys(f.position))
	for i := range parts {
		n := (f.turn + i) % len(parts)
		p := parts[n]
		off := f.position[p]
		if f.paused[p] || off >= int64(len(f.log[p])) {
			continue
		}
		f.position[p] = off + 1
		f.turn = n + 1
		f.delivered++
		topic := fakeTopic
		return &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.Offset(off)},
			Key:            []byte(f.log[p][off]),
			Value:          fmt.Appendf(nil, "%d@%d", p, off),
		}
	}
	return nil
}

// deliver runs the rebalance callback for r, as librdkafka does inside
// Poll.
func (f *fakeConsumer) deliver(r fakeRebalance) {
	f.mu.Lock()
	var ev kafka.Event
	switch {
	case r.assign:
		ev = kafka.AssignedPartitions{Partitions: fakePartitions(r.partitions)}
	case r.lost:
		f.lost = true
		ev = kafka.RevokedPartitions{Partitions: fakePartitions(slices.Sorted(maps.Keys(f.position)))}
	default:
		ev = kafka.RevokedPartitions{Partitions: fakePartitions(r.partitions)}
	}
	f.acked, f.balancing = false, true
	rebalance := f.rebalance
	f.mu.Unlock()

	if rebalance == nil {
		f.tb.Errorf("rebalance %v before SubscribeTopics", ev)
		return
	}
	rebalance(ev)

	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.acked {
		f.tb.Errorf("rebalance %v not acknowledged: librdkafka would hang", ev)
	}
	f.lost, f.balancing = false, false
}

// fakePartitions returns partitions of fakeTopic as a rebalance carries
// them: without offsets, so that they start from the committed ones.
func fakePartitions(partitions []int32) []kafka.TopicPartition {
	tps := make([]kafka.TopicPartition, len(partitions))
	for i, p := range partitions {
		topic := fakeTopic
		tps[i] = kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.OffsetInvalid}
	}
	return tps
}

// partitionOf returns tp's partition, failing the test for another topic.
func (f *fakeConsumer) partitionOf(tp kafka.TopicPartition) int32 {
	if tp.Topic == nil || *tp.Topic != fakeTopic {
		f.tb.Errorf("partition %v is not of topic %s", tp, fakeTopic)
	}
	return tp.Partition
}

// IncrementalAssign implements Consumer.
func (f *fakeConsumer) IncrementalAssign(partitions []kafka.TopicPartition) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acked = true
	for _, tp := range partitions {
		p := f.partitionOf(tp)
		if _, ok := f.position[p]; ok {
			f.tb.Errorf("partition %d assigned twice", p)
			continue
		}
		switch {
		case tp.Offset >= 0:
			f.position[p] = int64(tp.Offset)
		default:
			f.position[p] = max(f.committed[p], 0)
		}
	}
	f.notify()
	return nil
}

// IncrementalUnassign implements Consumer.
func (f *fakeConsumer) IncrementalUnassign(partitions []kafka.TopicPartition) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acked = true
	for _, tp := range partitions {
		p := f.partitionOf(tp)
		if _, ok := f.position[p]; !ok {
			f.tb.Errorf("partition %d unassigned but not assigned", p)
			continue
		}
		if o, ok := f.stored[p]; ok && !f.lost {
			f.committed[p] = o
		}
		delete(f.stored, p)
		delete(f.position, p)
	}
	return nil
}

// AssignmentLost implements Consumer.
func (f *fakeConsumer) AssignmentLost() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lost
}

// Pause implements Consumer.
func (f *fakeConsumer) Pause(partitions []kafka.TopicPartition) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tp := range partitions {
		f.paused[f.partitionOf(tp)] = true
	}
	return nil
}

// Resume implements Consumer.
func (f *fakeConsumer) Resume(partitions []kafka.TopicPartition) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tp := range partitions {
		delete(f.paused, f.partitionOf(tp))
	}
	f.notify()
	return nil
}

// StoreOffsets implements Consumer.
func (f *fakeConsumer) StoreOffsets(offsets []kafka.TopicPartition) ([]kafka.TopicPartition, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		f.tb.Errorf("StoreOffsets(%v) after Close", offsets)
		return nil, kafka.NewError(kafka.ErrState, "consumer closed", false)
	}
	var err error
	res := slices.Clone(offsets)
	for i, tp := range offsets {
		p := f.partitionOf(tp)
		if _, ok := f.position[p]; !ok {
			f.rejected = append(f.rejected, tp)
			res[i].Error = kafka.NewError(kafka.ErrState, "partition not assigned", false)
			err = res[i].Error
			continue
		}
		f.stored[p] = int64(tp.Offset)
		f.history[p] = append(f.history[p], int64(tp.Offset))
	}
	return res, err
}

// Commit implements Consumer.
func (f *fakeConsumer) Commit() ([]kafka.TopicPartition, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		f.tb.Error("Commit after Close")
		return nil, kafka.NewError(kafka.ErrState, "consumer closed", false)
	}
	var res []kafka.TopicPartition
	for _, p := range slices.Sorted(maps.Keys(f.stored)) {
		if o, ok := f.committed[p]; ok && o == f.stored[p] {
			continue
		}
		f.committed[p] = f.stored[p]
		topic := fakeTopic
		res = append(res, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.Offset(f.stored[p])})
	}
	if len(res) == 0 {
		return nil, kafka.NewError(kafka.ErrNoOffset, "Local: No offset stored", false)
	}
	return res, nil
}

// Close implements Consumer.
func (f *fakeConsumer) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return kafka.NewError(kafka.ErrState, "Consumer is already closing", false)
	}
	assigned := slices.Sorted(maps.Keys(f.position))
	f.mu.Unlock()
	if len(assigned) > 0 {
		f.deliver(fakeRebalance{partitions: assigned})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.notify()
	return nil
}
