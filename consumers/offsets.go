package consumers

import (
	"context"
	"sort"
	"sync"
)

// partitionOffsets tracks the records of one assigned partition that were
// dispatched to the workers, so that the stored offset never passes a record
// whose outcome is not durable yet: records of different keys finish out of order,
// but the stored offset only advances over a contiguous run of finished ones.
// A record that was skipped or given up on stays pending, so nothing after it
// is committed and the next owner of the partition reads it again.
//
// A new partitionOffsets is made for every assignment; jobs carry the one
// they were dispatched under, so a record finishing after its partition was
// revoked (and perhaps reassigned) cannot move the new assignment's offset.
type partitionOffsets struct {
	// ctx is what the handler sees for this partition's records. It ends
	// when the partition is revoked and its records in hand had their
	// time to finish, or when the pool gave up waiting at shutdown.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	pending []pendingOffset // ascending offsets, as the broker delivers them
	last    int64           // highest offset added, -1 before the first
	stored  int64           // highest offset handed to store, -1 before the first
	running int             // records started and not finished
	stopped bool            // revoked: no record starts any more
	stopCh  chan struct{}   // closed by stop
	idle    chan struct{}   // closed when running drops to 0, for draining
}

type pendingOffset struct {
	offset int64
	done   bool
}

func newPartitionOffsets(parent context.Context) *partitionOffsets {
	ctx, cancel := context.WithCancel(parent)
	return &partitionOffsets{ctx: ctx, cancel: cancel, last: -1, stored: -1, stopCh: make(chan struct{})}
}

// add records that offset is about to be dispatched. Adding an offset at or
// below the last one added is a no-op, so a dispatch that has to be retried
// does not track its record twice.
func (p *partitionOffsets) add(offset int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if offset <= p.last {
		return
	}
	p.last = offset
	p.pending = append(p.pending, pendingOffset{offset: offset})
}

// start reports whether a dispatched record may be handled: not once its
// partition was revoked. A record that does not start stays pending.
func (p *partitionOffsets) start() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	p.running++
	return true
}

// finish ends a record that start let run. When ok, the record's outcome is
// durable; if that grows the contiguous finished run, store is called with
// the next offset to consume. store runs under the tracker's lock, so
// concurrent finishes store their offsets in order and the stored offset
// never moves back; and a drain never ends between a record's completion and
// the store of its offset.
func (p *partitionOffsets) finish(offset int64, ok bool, store func(next int64)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ok {
		if next := p.complete(offset); next > p.stored {
			store(next)
			p.stored = next
		}
	}
	p.running--
	if p.running == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
}

// complete marks offset done and returns the offset to store (the next one
// to consume) if the contiguous finished run grew, or -1.
func (p *partitionOffsets) complete(offset int64) int64 {
	i := sort.Search(len(p.pending), func(i int) bool { return p.pending[i].offset >= offset })
	if i == len(p.pending) || p.pending[i].offset != offset {
		return -1
	}
	p.pending[i].done = true
	n := 0
	for n < len(p.pending) && p.pending[n].done {
		n++
	}
	if n == 0 {
		return -1
	}
	next := p.pending[n-1].offset + 1
	p.pending = append(p.pending[:0], p.pending[n:]...)
	return next
}

// stop keeps records that have not started from starting and ends retries,
// and returns a channel closed once no record is running.
func (p *partitionOffsets) stop() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		p.stopped = true
		close(p.stopCh)
	}
	if p.running == 0 {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	if p.idle == nil {
		p.idle = make(chan struct{})
	}
	return p.idle
}

// stopping returns a channel closed once stop was called.
func (p *partitionOffsets) stopping() <-chan struct{} { return p.stopCh }

// inFlight returns how many records are running.
func (p *partitionOffsets) inFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}
