package consumers

import (
	"sort"
	"sync"
)

// partitionOffsets tracks the records of one assigned partition that are in
// flight, so that the committed offset never passes a record whose outcome is
// not yet durable: records finish out of order across lanes, but the stored
// offset only advances over a contiguous run of finished ones.
//
// A new partitionOffsets is made for every assignment; completions carry the
// one they were dispatched under, so a record finishing after its partition
// was revoked and reassigned cannot move the new assignment's offset.
type partitionOffsets struct {
	mu      sync.Mutex
	pending []pendingOffset // ascending offsets, as the broker delivers them
	idle    chan struct{}   // closed when pending empties, for draining
}

type pendingOffset struct {
	offset int64
	done   bool
}

func newPartitionOffsets() *partitionOffsets {
	return &partitionOffsets{}
}

// add records that offset was dispatched.
func (p *partitionOffsets) add(offset int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = append(p.pending, pendingOffset{offset: offset})
}

// done records that offset finished and returns the offset to store (the
// next one to consume) if the contiguous finished run grew, or -1.
func (p *partitionOffsets) done(offset int64) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
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
	if len(p.pending) == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
	return next
}

// drained returns a channel closed once nothing is in flight.
func (p *partitionOffsets) drained() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := make(chan struct{})
	if len(p.pending) == 0 {
		close(ch)
		return ch
	}
	if p.idle == nil {
		p.idle = make(chan struct{})
	}
	return p.idle
}

// inFlight returns how many records are dispatched and not finished.
func (p *partitionOffsets) inFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, e := range p.pending {
		if !e.done {
			n++
		}
	}
	return n
}
