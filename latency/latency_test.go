package latency_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/latency"
)

// TestQuantilesWithinOneSixteenth: against the exact quantiles of random
// durations spread over six orders of magnitude, every quantile read from
// the histogram is within 1/16 of the true value (or a microsecond).
func TestQuantilesWithinOneSixteenth(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h latency.Histogram
	ds := make([]time.Duration, 100000)
	for i := range ds {
		ds[i] = time.Duration(float64(time.Microsecond) * math.Pow(10, rng.Float64()*6))
		h.Record(ds[i])
	}
	slices.Sort(ds)
	s := h.Snapshot()
	if s.Count() != uint64(len(ds)) {
		t.Fatalf("count %d, want %d", s.Count(), len(ds))
	}
	for _, q := range []float64{0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1} {
		want := ds[int(q*float64(len(ds)-1))]
		got := s.Quantile(q)
		if diff := (got - want).Abs(); diff > want/16+time.Microsecond {
			t.Errorf("q%v = %v, want %v ±1/16", q, got, want)
		}
	}
}

func TestEdges(t *testing.T) {
	tests := []struct {
		name string
		ds   []time.Duration
		q    float64
		want time.Duration
	}{
		{"Empty", nil, 0.5, 0},
		{"Negative counts as zero", []time.Duration{-time.Second}, 0.5, 500 * time.Nanosecond},
		{"Sub-microsecond", []time.Duration{3 * time.Microsecond}, 1, 3500 * time.Nanosecond},
		{"Hours", []time.Duration{3 * time.Hour}, 1, 3 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h latency.Histogram
			for _, d := range tt.ds {
				h.Record(d)
			}
			got := h.Snapshot().Quantile(tt.q)
			if diff := (got - tt.want).Abs(); diff > tt.want/16 {
				t.Errorf("quantile %v = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

// TestSubIsolatesAPhase: the difference of two snapshots holds only what
// was recorded between them.
func TestSubIsolatesAPhase(t *testing.T) {
	var h latency.Histogram
	for range 1000 {
		h.Record(time.Second)
	}
	before := h.Snapshot()
	for range 10 {
		h.Record(time.Millisecond)
	}
	phase := h.Snapshot().Sub(before)
	if phase.Count() != 10 {
		t.Fatalf("count %d, want 10", phase.Count())
	}
	if got := phase.Quantile(0.99); got > time.Millisecond*17/16 || got < time.Millisecond*15/16 {
		t.Errorf("p99 of the phase %v, want about 1ms", got)
	}
}

func TestConcurrentRecords(t *testing.T) {
	var h latency.Histogram
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 10000 {
				h.Record(time.Duration(i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	if n := h.Snapshot().Count(); n != 80000 {
		t.Errorf("count %d, want 80000", n)
	}
}

// TestSumAndCountUnder: what an exporter of the histogram reads, the total
// and the counts below bucket bounds, is exact at the bounds Bound gives.
func TestSumAndCountUnder(t *testing.T) {
	var h latency.Histogram
	ds := []time.Duration{-time.Second, 500 * time.Nanosecond, 900 * time.Microsecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Second}
	for _, d := range ds {
		h.Record(d)
	}
	s := h.Snapshot()
	if got, want := s.Sum(), 500*time.Nanosecond+900*time.Microsecond+time.Millisecond+3*time.Millisecond+2*time.Second; got != want {
		t.Errorf("sum %v, want %v (a negative duration counts as zero)", got, want)
	}
	tests := []struct {
		name  string
		under time.Duration
		want  uint64
	}{
		{"Zero", 0, 0},
		{"OneMicrosecond", time.Microsecond, 2},
		{"BoundAboveOneMillisecond", latency.Bound(time.Millisecond), 4},
		{"BoundAboveTwoSeconds", latency.Bound(2 * time.Second), 6},
		{"InsideABucketLeavesItOut", 3050 * time.Microsecond, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.CountUnder(tt.under); got != tt.want {
				t.Errorf("CountUnder(%v) = %d, want %d", tt.under, got, tt.want)
			}
		})
	}
	if got := s.Sub(s).Sum(); got != 0 {
		t.Errorf("sum of an empty difference %v, want 0", got)
	}
}

func TestBound(t *testing.T) {
	tests := []struct {
		d, want time.Duration
	}{
		{0, 0},
		{-time.Second, 0},
		{3 * time.Microsecond, 3 * time.Microsecond},
		{1500 * time.Nanosecond, 2 * time.Microsecond},
		{1024 * time.Microsecond, 1024 * time.Microsecond},
		{time.Millisecond, 1024 * time.Microsecond},
		{5 * time.Millisecond, 5120 * time.Microsecond},
		{time.Second, 1048576 * time.Microsecond},
	}
	for _, tt := range tests {
		got := latency.Bound(tt.d)
		if got != tt.want {
			t.Errorf("Bound(%v) = %v, want %v", tt.d, got, tt.want)
		}
		if got < tt.d || (tt.d >= 8*time.Microsecond && got > tt.d+tt.d/8) {
			t.Errorf("Bound(%v) = %v, want at most 1/8 above it", tt.d, got)
		}
		if again := latency.Bound(got); again != got {
			t.Errorf("Bound(Bound(%v)) = %v, want %v: a bound is its own bound", tt.d, again, got)
		}
	}
}
