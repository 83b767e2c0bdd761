package consumers

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// scheduler hands dispatched records to the workers: any idle worker takes
// the oldest record whose key has nothing running, so records of one key
// run one at a time in the order they were dispatched, and no worker idles
// while a record of another key waits. Parallelism is thus bounded by the
// number of workers and the number of distinct keys waiting, never by how
// keys hash or how many partitions there are.
//
// It holds at most limit records (queued or running): the pool's
// backpressure. A keyless record needs no order (the contract keys every
// request that does): it gets a key of its own.
type scheduler struct {
	limit   int
	maxIdle int // records that may be idle at once, not counted in held

	mu      sync.Mutex
	queues  map[string]*keyQueue // keys with records queued or running
	ready   []*keyQueue          // keys with records queued and none running, oldest first
	held    int                  // records queued or running, idle ones excepted
	idling  int                  // records running and idle
	keyless uint64               // numbers the keyless records
	closed  bool

	// readyN has a token for each key in ready: workers wait on it.
	readyN chan struct{}
	// room is signalled when a record leaves and the scheduler was full.
	room chan struct{}
}

// keyQueue is one key's records, in order.
type keyQueue struct {
	key     string
	jobs    []job
	running bool
}

// maxIdleFactor bounds idle records (see idle) to this many times the
// scheduler's limit: what they hold is a goroutine and a record each.
const maxIdleFactor = 4

func newScheduler(limit int) *scheduler {
	return &scheduler{
		limit:   limit,
		maxIdle: maxIdleFactor * limit,
		queues:  map[string]*keyQueue{},
		readyN:  make(chan struct{}, (1+maxIdleFactor)*limit),
		room:    make(chan struct{}, 1),
	}
}

// idle takes a running record out of the count the limit bounds, and
// reports whether it did: not when maxIdle records are idle already.
func (s *scheduler) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idling >= s.maxIdle {
		return false
	}
	s.idling++
	s.held--
	s.signalRoom()
	return true
}

// busy counts an idle record again. The scheduler may hold more than its
// limit for a while: it takes no record until it is under it again.
func (s *scheduler) busy() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idling--
	s.held++
}

// signalRoom wakes an offer waiting for room. Called with s.mu held.
func (s *scheduler) signalRoom() {
	select {
	case s.room <- struct{}{}:
	default:
	}
}

// offer adds j, waiting at most wait for room. It reports whether j was
// added.
func (s *scheduler) offer(ctx context.Context, j job, wait time.Duration) bool {
	if s.tryOffer(j) {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-s.room:
			if s.tryOffer(j) {
				return true
			}
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func (s *scheduler) tryOffer(j job) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.held >= s.limit {
		return false
	}
	s.held++
	key := string(j.msg.Key)
	if len(j.msg.Key) == 0 {
		s.keyless++
		key = "\x00" + strconv.FormatUint(s.keyless, 36) // no record key starts with NUL and has no other byte
	}
	q := s.queues[key]
	if q == nil {
		q = &keyQueue{key: key}
		s.queues[key] = q
	}
	q.jobs = append(q.jobs, j)
	if !q.running && len(q.jobs) == 1 {
		s.markReady(q)
	}
	return true
}

// markReady queues q for a worker. Called with s.mu held.
func (s *scheduler) markReady(q *keyQueue) {
	s.ready = append(s.ready, q)
	s.readyN <- struct{}{} // never blocks: ready keys ≤ held + idling ≤ (1 + maxIdleFactor) × limit
}

// next waits for a record whose key has nothing running, and marks the key
// running until done. ok is false once the scheduler is closed and every
// ready key was taken.
func (s *scheduler) next() (j job, q *keyQueue, ok bool) {
	if _, ok := <-s.readyN; !ok {
		return job{}, nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q = s.ready[0]
	s.ready[0] = nil
	s.ready = s.ready[1:]
	q.running = true
	j = q.jobs[0]
	q.jobs[0] = job{}
	q.jobs = q.jobs[1:]
	return j, q, true
}

// done ends the record next returned for q: q's next record, if any,
// becomes ready. Once the scheduler is closed, q's queued records are
// dropped instead, and done returns how many.
func (s *scheduler) done(q *keyQueue) (dropped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q.running = false
	s.held--
	if s.closed && len(q.jobs) > 0 {
		dropped = len(q.jobs)
		s.held -= dropped
		clear(q.jobs)
		q.jobs = nil
	}
	if len(q.jobs) == 0 {
		delete(s.queues, q.key)
	} else {
		s.markReady(q)
	}
	s.signalRoom()
	return dropped
}

// close takes no more records and lets next return false once the ready
// keys are taken; records queued behind a running one of their key are
// dropped when it is done.
func (s *scheduler) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.readyN)
	}
}

// len returns the number of records queued or running.
func (s *scheduler) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}
