package passwords

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/latency"
)

// BlockingHasher is what a Pool runs in its slots: hashing and verifying
// that cannot be interrupted once begun and costs its full price. *Hasher
// is one.
type BlockingHasher interface {
	Hash(password string) (string, error)
	Verify(password, encoded string) (match, rehash bool, err error)
	VerifyDummy(password string)
}

var _ BlockingHasher = (*Hasher)(nil)

var _ domain.PasswordHasher = (*Pool)(nil)

// NoQueue is PoolConfig.Queue for a pool that queues nothing: a request
// that finds every slot busy is refused at once.
const NoQueue = -1

// Defaults of PoolConfig.
const (
	// DefaultQueuePerSlot is how many requests may wait per slot: enough
	// that a burst of logins keeps every slot busy instead of being
	// refused, few enough that a waiter gets its slot within about eight
	// hash times (a quarter of a second at the OWASP minimum).
	DefaultQueuePerSlot = 8
	// DefaultMaxWait bounds the wait of a request without a deadline.
	DefaultMaxWait = 2 * time.Second
)

// DefaultSlots is PoolConfig.Slots's default: the CPUs Go may use at once.
// More slots than CPUs would only make every hash slower.
func DefaultSlots() int { return runtime.GOMAXPROCS(0) }

// PoolConfig configures a Pool. Zero fields take the defaults.
type PoolConfig struct {
	// Slots is how many hashes run at once, so at most Slots × the
	// argon2 memory cost is in use for hashing. Default DefaultSlots().
	Slots int
	// Queue is how many requests may wait for a slot; beyond it they are
	// refused with CodeRateLimited. Keep Slots + Queue below the number
	// of goroutines that handle requests, so that requests which hash
	// never hold all of them and the others never wait behind hashes.
	// Default DefaultQueuePerSlot × Slots; NoQueue for none.
	Queue int
	// MaxWait is the longest a request waits for a slot, whatever its
	// deadline. Default DefaultMaxWait.
	MaxWait time.Duration
	// Now is the clock that hash durations and waits are measured by.
	// Default time.Now.
	Now func() time.Time
}

func (c *PoolConfig) setDefaults() {
	if c.Slots == 0 {
		c.Slots = DefaultSlots()
	}
	if c.Queue == 0 {
		c.Queue = DefaultQueuePerSlot * c.Slots
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports whether c is usable. NewPool fills in the defaults before
// it calls Validate.
func (c PoolConfig) Validate() error {
	switch {
	case c.Slots < 1:
		return fmt.Errorf("passwords: pool config: %d slots, want at least 1", c.Slots)
	case c.Queue < NoQueue:
		return fmt.Errorf("passwords: pool config: queue of %d, want at least 0", c.Queue)
	case c.MaxWait <= 0:
		return fmt.Errorf("passwords: pool config: max wait %s, want a positive duration", c.MaxWait)
	}
	return nil
}

// ewmaWeight is the weight of the newest hash duration in the estimate of
// the next: the estimate follows a change of load or parameters within a
// dozen hashes, and one slow hash moves it by a fifth.
const ewmaWeight = 0.2

// Pool runs the hashes of a BlockingHasher in a bounded number of slots,
// in the order they were asked for, and refuses, without hashing, those
// that could not finish in time. It is the domain.PasswordHasher the use
// cases get, and it is safe for concurrent use.
//
// A request that finds no free slot waits in a FIFO queue, until the
// deadline of its context less the expected hash time, and never longer
// than MaxWait. The expected hash time is a moving average of the hashes
// measured so far. A request is refused at once when its deadline leaves
// no time for a hash (CodeDeadlineExceeded), when the queue is full, and
// when its estimated wait already exceeds what it may wait
// (CodeRateLimited, RetryAfter the estimated wait). A request that leaves
// the queue because its context ended or its wait ran out is not hashed.
// Every request is admitted by that one rule, whatever it hashes, so that
// a refusal tells nothing of the account a password is for.
//
// Each slot's hashes run on a goroutine of their own, locked to an OS
// thread whose scheduling priority is lowered (nice +10, on Linux): a hash
// gets whatever CPU the rest of the machine leaves, so the cheap requests,
// the stores and the broker beside it are not kept waiting behind hashes,
// and a machine with nothing else to do still gives hashing all of it.
// With Parallelism above 1, the lanes beyond the first run on ordinary
// threads.
type Pool struct {
	inner BlockingHasher
	cfg   PoolConfig
	wait  latency.Histogram // of admitted requests
	runs  []chan func()     // per slot, to its thread
	close sync.Once

	mu       sync.Mutex
	started  []time.Time // per slot, when its hash began; zero when free
	queue    []*waiter   // FIFO
	expected time.Duration
	counts   poolCounts
}

// poolCounts are the cumulative counts of a Pool, under its lock.
type poolCounts struct {
	admitted uint64
	skipped  uint64
	waited   time.Duration
	shed     ShedCounts
}

// waiter is a queued request. The releasing hash hands it a slot under the
// pool's lock and then signals ready.
type waiter struct {
	ready chan struct{}
	slot  int // -1 until granted
}

// NewPool returns a Pool that runs inner's hashes.
func NewPool(inner BlockingHasher, cfg PoolConfig) (*Pool, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Queue == NoQueue {
		cfg.Queue = 0
	}
	p := &Pool{inner: inner, cfg: cfg, started: make([]time.Time, cfg.Slots), runs: make([]chan func(), cfg.Slots)}
	for i := range p.runs {
		p.runs[i] = make(chan func())
		go hashThread(p.runs[i])
	}
	return p, nil
}

// hashThread runs what run sends it on a thread of its own at a lower
// priority, until Close. It never unlocks the thread: the thread ends with
// it, its priority with it.
func hashThread(work <-chan func()) {
	runtime.LockOSThread()
	lowerThreadPriority()
	for f := range work {
		f()
	}
}

// run runs f on slot's thread and returns once it has.
func (p *Pool) run(slot int, f func()) {
	done := make(chan struct{})
	p.runs[slot] <- func() {
		defer close(done)
		f()
	}
	<-done
}

// Close ends the pool's threads. Hashing after Close panics.
func (p *Pool) Close() {
	p.close.Do(func() {
		for _, r := range p.runs {
			close(r)
		}
	})
}

// Hash returns inner's hash of password once a slot is free. It returns
// CodeRateLimited, with RetryAfter, or CodeDeadlineExceeded, without
// hashing, when the password cannot be hashed in time; CodeUnavailable when
// ctx is cancelled while it waits; else what inner's Hash returns.
func (p *Pool) Hash(ctx context.Context, password string) (string, error) {
	slot, err := p.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer p.release(slot)
	var hash string
	p.run(slot, func() { hash, err = p.inner.Hash(password) })
	return hash, err
}

// Verify returns inner's verification of password against encoded once a
// slot is free. It refuses as Hash does, and then reports no match.
func (p *Pool) Verify(ctx context.Context, password, encoded string) (match, rehash bool, err error) {
	slot, err := p.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	defer p.release(slot)
	p.run(slot, func() { match, rehash, err = p.inner.Verify(password, encoded) })
	return match, rehash, err
}

// VerifyDummy runs inner's dummy verification once a slot is free, by the
// same rule as Verify, so that an unknown account is refused exactly when
// a known one would be. It returns the refusal, or nil.
func (p *Pool) VerifyDummy(ctx context.Context, password string) error {
	slot, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer p.release(slot)
	p.run(slot, func() { p.inner.VerifyDummy(password) })
	return nil
}

// HashIfIdle hashes password only if a slot is free and nobody waits for
// one, and reports whether it did: work that may be skipped never waits
// and never delays anyone. Its error is inner's.
func (p *Pool) HashIfIdle(ctx context.Context, password string) (hash string, ok bool, err error) {
	p.mu.Lock()
	slot := -1
	if len(p.queue) == 0 {
		slot = p.take(p.cfg.Now())
	}
	if slot < 0 {
		p.counts.skipped++
		p.mu.Unlock()
		return "", false, nil
	}
	p.counts.admitted++
	p.mu.Unlock()
	p.wait.Record(0)
	defer p.release(slot)
	p.run(slot, func() { hash, err = p.inner.Hash(password) })
	return hash, err == nil, err
}

// acquire returns the slot the caller hashes in, after waiting for it in
// the queue if need be, or the refusal.
func (p *Pool) acquire(ctx context.Context) (int, error) {
	p.mu.Lock()
	now := p.cfg.Now()
	if err := ctx.Err(); err != nil {
		return -1, p.shedLocked(&p.counts.shed.TooLate, errTooLate(err))
	}
	// limit is how long the request may wait: until its deadline less a
	// hash, and no longer than MaxWait.
	limit, byDeadline := p.cfg.MaxWait, false
	if deadline, ok := ctx.Deadline(); ok {
		left := deadline.Sub(now) - p.expected
		if left < 0 {
			return -1, p.shedLocked(&p.counts.shed.TooLate, errTooLate(nil))
		}
		if left < limit {
			limit, byDeadline = left, true
		}
	}
	if len(p.queue) == 0 {
		if slot := p.take(now); slot >= 0 {
			p.counts.admitted++
			p.mu.Unlock()
			p.wait.Record(0)
			return slot, nil
		}
	}
	estimate := p.estimateWait(now, len(p.queue))
	switch {
	case len(p.queue) >= p.cfg.Queue:
		return -1, p.shedLocked(&p.counts.shed.QueueFull, errBusy(estimate))
	case estimate > limit:
		return -1, p.shedLocked(&p.counts.shed.Overloaded, errBusy(estimate))
	}
	w := &waiter{ready: make(chan struct{}, 1), slot: -1}
	p.queue = append(p.queue, w)
	p.mu.Unlock()
	return p.await(ctx, w, now, limit, byDeadline)
}

// await waits for w's slot until limit has passed since queued or ctx
// ends.
func (p *Pool) await(ctx context.Context, w *waiter, queued time.Time, limit time.Duration, byDeadline bool) (int, error) {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	var timedOut bool
	select {
	case <-w.ready:
	case <-ctx.Done():
	case <-timer.C:
		timedOut = true
	}
	p.mu.Lock()
	if w.slot >= 0 {
		// Granted, perhaps just as the wait ended: take it, unless ctx
		// ended, then pass it on.
		if err := ctx.Err(); err != nil {
			p.handOn(w.slot)
			return -1, p.leftLocked(err)
		}
		waited := p.cfg.Now().Sub(queued)
		p.counts.admitted++
		p.counts.waited += waited
		p.mu.Unlock()
		p.wait.Record(waited)
		return w.slot, nil
	}
	p.queue = slices.DeleteFunc(p.queue, func(q *waiter) bool { return q == w })
	if err := ctx.Err(); err != nil && !timedOut {
		return -1, p.leftLocked(err)
	}
	if byDeadline {
		return -1, p.shedLocked(&p.counts.shed.WaitExpired, errTooLate(nil))
	}
	// The estimate was wrong: say how long the queue ahead takes now.
	return -1, p.shedLocked(&p.counts.shed.WaitExpired, errBusy(p.estimateWait(p.cfg.Now(), len(p.queue))))
}

// leftLocked counts and returns the refusal of a request whose ctx ended
// while it waited, and unlocks.
func (p *Pool) leftLocked(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return p.shedLocked(&p.counts.shed.WaitExpired, errTooLate(err))
	}
	return p.shedLocked(&p.counts.shed.Abandoned, &domain.Error{Code: domain.CodeUnavailable, Message: "request cancelled while waiting to hash", Err: err})
}

// shedLocked counts a refusal in count, unlocks and returns err.
func (p *Pool) shedLocked(count *uint64, err error) error {
	*count++
	p.mu.Unlock()
	return err
}

// take claims a free slot for a hash starting at now, or returns -1.
func (p *Pool) take(now time.Time) int {
	for i, s := range p.started {
		if s.IsZero() {
			p.started[i] = now
			return i
		}
	}
	return -1
}

// release ends the hash in slot: it counts the hash's duration in the
// estimate and hands the slot to the longest waiter, if any.
func (p *Pool) release(slot int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.learn(p.cfg.Now().Sub(p.started[slot]))
	p.handOn(slot)
}

// handOn gives slot to the longest waiter, or frees it. The caller holds
// the lock.
func (p *Pool) handOn(slot int) {
	now := p.cfg.Now()
	if len(p.queue) == 0 {
		p.started[slot] = time.Time{}
		return
	}
	w := p.queue[0]
	p.queue[0] = nil
	p.queue = p.queue[1:]
	p.started[slot] = now
	w.slot = slot
	w.ready <- struct{}{}
}

// learn counts a hash that took d in the expected hash time. Hashes far
// shorter than expected (a password over the length cap is refused before
// any hashing) are not counted, so cheap refusals cannot talk the estimate
// down and let in more than can finish.
func (p *Pool) learn(d time.Duration) {
	switch {
	case p.expected == 0:
		p.expected = d
	case d >= p.expected/4:
		p.expected += time.Duration(ewmaWeight * float64(d-p.expected))
	}
}

// estimateWait returns how long a request queued behind ahead others waits
// for a slot, if every hash takes the expected time: the running hashes end
// one by one, and each freed slot serves the queue in order.
func (p *Pool) estimateWait(now time.Time, ahead int) time.Duration {
	frees := make([]time.Duration, len(p.started))
	for i, s := range p.started {
		if !s.IsZero() {
			frees[i] = max(0, s.Add(p.expected).Sub(now))
		}
	}
	slices.Sort(frees)
	return frees[ahead%len(frees)] + time.Duration(ahead/len(frees))*p.expected
}

// errTooLate refuses a request whose deadline leaves no time to hash.
func errTooLate(cause error) error {
	return &domain.Error{Code: domain.CodeDeadlineExceeded, Message: "no time left to hash the password before the deadline", Err: cause}
}

// errBusy refuses a request that would wait too long for a slot: it may
// come back after wait, rounded up to the millisecond the wire carries.
func errBusy(wait time.Duration) error {
	return &domain.Error{Code: domain.CodeRateLimited, Message: "too many password checks at once; retry later",
		RetryAfter: max(wait.Round(time.Millisecond), time.Millisecond)}
}

// ShedCounts count the requests a Pool refused, by reason.
type ShedCounts struct {
	// TooLate: the deadline had passed, or left no time for a hash
	// (CodeDeadlineExceeded).
	TooLate uint64
	// QueueFull: every slot was busy and the queue full (CodeRateLimited).
	QueueFull uint64
	// Overloaded: the estimated wait exceeded what the request may wait
	// (CodeRateLimited).
	Overloaded uint64
	// WaitExpired: the request left the queue when its wait ran out
	// (CodeDeadlineExceeded for a deadline, else CodeRateLimited).
	WaitExpired uint64
	// Abandoned: the request's context was cancelled while it waited.
	Abandoned uint64
}

// PoolStats is a Pool's state and counts, for metrics.
type PoolStats struct {
	Slots    int           // hashes that may run at once
	Busy     int           // hashes running
	Queued   int           // requests waiting for a slot
	Admitted uint64        // requests given a slot, ever
	Skipped  uint64        // HashIfIdle calls that found no free slot
	Shed     ShedCounts    // requests refused, by reason
	Waited   time.Duration // the total time admitted requests waited
	Wait     latency.Snapshot
	Expected time.Duration // the expected time of one hash now
}

// Stats returns the pool's state and counts so far.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	s := PoolStats{
		Slots: len(p.started), Queued: len(p.queue), Admitted: p.counts.admitted, Skipped: p.counts.skipped,
		Shed: p.counts.shed, Waited: p.counts.waited, Expected: p.expected,
	}
	for _, t := range p.started {
		if !t.IsZero() {
			s.Busy++
		}
	}
	p.mu.Unlock()
	s.Wait = p.wait.Snapshot()
	return s
}
