package consumers

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx ends. When ctx is a record's, as the pool
// gives its handler, the record is idle meanwhile: its worker's turn goes
// to the records behind it (its key's excepted, which still wait for it),
// so a reply held back until a floor, such as the one that hides whether
// an account exists, does not keep a worker from other callers. Outside a
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
// and returns what to call when it goes on.
//
// At most Workers records are worked on at once: each holds one of the
// pool's turns. An idle record gives its turn back, and a worker is
// started if there are not Workers others to take it; the record no
// longer counts against the pool's room either. When it goes on it waits
// for a turn again, and a worker beyond Workers plus the idle records
// stops after its record. So however often records wait, Workers handlers
// work at once, and the workers number Workers plus the idle records.
//
// idle does nothing when ctx is no record's, or when maxIdleFactor × the
// pool's room are idle already (then the record keeps its turn, as any
// other wait would).
func idle(ctx context.Context) (resume func()) {
	p, _ := ctx.Value(recordKey{}).(*Pool)
	if p == nil || p.sched == nil || !p.sched.idle() {
		return func() {}
	}
	p.crew.Lock()
	p.idling++
	start := p.live < p.cfg.Workers+p.idling
	if start {
		p.live++
	}
	p.crew.Unlock()
	if start {
		p.workers.Go(func() { p.work(p.runCtx, p.sched) })
	}
	<-p.turns // give the turn back
	return func() {
		p.turns <- struct{}{} // wait for one
		p.crew.Lock()
		p.idling--
		p.crew.Unlock()
		p.sched.busy()
	}
}

// retire reports whether the calling worker, its record done, is one too
// many and should stop: there are more than Workers plus the idle records.
func (p *Pool) retire() bool {
	p.crew.Lock()
	defer p.crew.Unlock()
	if p.live > p.cfg.Workers+p.idling {
		p.live--
		return true
	}
	return false
}
