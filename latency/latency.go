// Package latency records durations in a histogram that many goroutines
// write at once without locks, and reads quantiles from snapshots of it.
//
// Buckets are log-linear: eight per power of two, so a quantile is off by at
// most 1/16 of its value (the midpoint of a bucket 1/8 wide), from a
// microsecond to hours. That is the precision latency percentiles need, in
// 4 KiB per histogram.
package latency

import (
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	subBits    = 3 // 2^3 buckets per power of two
	subBuckets = 1 << subBits
	// Durations are counted in microseconds; below subBuckets µs each
	// microsecond has a bucket of its own.
	buckets = (64 - subBits + 1) * subBuckets
)

// Histogram counts durations. The zero value is ready; it must not be
// copied after first use.
type Histogram struct {
	counts [buckets]atomic.Uint64
	// sum is the total of the recorded durations, in nanoseconds: metrics
	// that export a histogram (Prometheus's) carry it beside the counts.
	sum atomic.Uint64
}

// Record counts d; a negative d counts as zero.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucket(d)].Add(1)
	h.sum.Add(uint64(d))
}

// Snapshot returns the counts so far. It is not atomic: durations recorded
// while it is taken may be in some counts and not in others, or in the sum
// but not the counts.
func (h *Histogram) Snapshot() Snapshot {
	var s Snapshot
	for i := range h.counts {
		s.counts[i] = h.counts[i].Load()
	}
	s.sum = h.sum.Load()
	return s
}

// Snapshot is a histogram's counts at one time.
type Snapshot struct {
	counts [buckets]uint64
	sum    uint64
}

// Sub returns the durations counted in s but not in earlier, a snapshot of
// the same histogram taken before s.
func (s Snapshot) Sub(earlier Snapshot) Snapshot {
	var d Snapshot
	for i := range s.counts {
		d.counts[i] = s.counts[i] - earlier.counts[i]
	}
	d.sum = s.sum - earlier.sum
	return d
}

// Sum is the total of the durations in s.
func (s Snapshot) Sum() time.Duration {
	return time.Duration(s.sum)
}

// CountUnder returns how many durations in s are shorter than d, counting
// only the buckets that end at or before d. It is exact when d is a bucket
// bound (Bound(d) == d); otherwise the durations of the bucket that holds d
// are left out, even those shorter than d.
func (s Snapshot) CountUnder(d time.Duration) uint64 {
	var n uint64
	for _, c := range s.counts[:bucket(d)] {
		n += c
	}
	return n
}

// Bound returns the least bucket bound at or above d: a duration that
// CountUnder counts exactly, at most 1/8 above d (for d of 8 µs or more).
func Bound(d time.Duration) time.Duration {
	i := bucket(d)
	if lo := time.Duration(lower(i)) * time.Microsecond; lo == max(d, 0) || i == buckets-1 {
		return lo
	}
	return time.Duration(lower(i+1)) * time.Microsecond
}

// Count is how many durations s holds.
func (s Snapshot) Count() uint64 {
	var n uint64
	for _, c := range s.counts {
		n += c
	}
	return n
}

// Quantile returns the q-quantile (0 <= q <= 1) of the durations in s, as
// the midpoint of its bucket; 0 when s is empty.
func (s Snapshot) Quantile(q float64) time.Duration {
	n := s.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n-1)) + 1 // 1-based rank of the wanted duration
	var seen uint64
	for i, c := range s.counts {
		seen += c
		if seen >= rank {
			return midpoint(i)
		}
	}
	return midpoint(buckets - 1)
}

// bucket returns the index of d's bucket.
func bucket(d time.Duration) int {
	us := uint64(max(d, 0) / time.Microsecond)
	if us < subBuckets {
		return int(us)
	}
	exp := bits.Len64(us) - 1 - subBits // us is in [2^(exp+subBits), 2^(exp+subBits+1))
	sub := int(us>>uint(exp)) - subBuckets
	return (exp+1)*subBuckets + sub
}

// lower returns the least duration, in microseconds, of bucket i.
func lower(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	exp := i/subBuckets - 1
	return uint64(subBuckets+i%subBuckets) << uint(exp)
}

// midpoint returns the middle of bucket i.
func midpoint(i int) time.Duration {
	lo := lower(i)
	width := uint64(1)
	if i >= subBuckets {
		width = 1 << uint(i/subBuckets-1)
	}
	return time.Duration(lo)*time.Microsecond + time.Duration(width)*time.Microsecond/2
}
