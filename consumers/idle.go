package consumers

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx ends. When ctx is a record's, as the pool
// gives its handler, the record is idle meanwhile: another worker takes the
// records behind it (its key's excepted, which still wait for it), so a
// reply held back until a floor, such as the one that hides whether an
// account exists, does not keep a worker from other callers. Outside a
// pool it is a plain timer.
func Sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	resume := idle(ctx)
	defer resume()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// recordKey is the context key of the pool running the record.
type recordKey struct{}

// recordContext returns the context a record's handler gets.
func (p *Pool) recordContext(parent context.Context) context.Context {
	return context.WithValue(parent, recordKey{}, p)
}

// idle tells the pool that the record ctx belongs to waits without work,
// and returns what to call when it goes on. While the record is idle a
// worker of its own stands in for it, and the record does not count
// against the pool's room; when it goes on, the first worker to finish a
// record retires, so that Workers are busy again. It does nothing when
// ctx is no record's, or when maxIdleFactor × the pool's room are idle
// already (then the record keeps its worker, as any other wait would).
func idle(ctx context.Context) (resume func()) {
	p, _ := ctx.Value(recordKey{}).(*Pool)
	if p == nil || p.sched == nil || !p.sched.idle() {
		return func() {}
	}
	p.workers.Go(func() { p.work(p.runCtx, p.sched) })
	return func() {
		p.sched.busy()
		p.retiring.Add(1)
	}
}

// retire reports whether the calling worker is one too many, now that an
// idle record went on, and should stop.
func (p *Pool) retire() bool {
	for {
		n := p.retiring.Load()
		if n <= 0 {
			return false
		}
		if p.retiring.CompareAndSwap(n, n-1) {
			return true
		}
	}
}
