package consumers

import (
	"context"
	"slices"
	"sync"
	"testing"
)

func TestPartitionOffsets(t *testing.T) {
	type fin struct {
		offset int64
		ok     bool
	}
	tests := []struct {
		name   string
		added  []int64
		finish []fin
		want   []int64 // offsets stored, in order
	}{
		{"InOrder", []int64{5, 6, 7}, []fin{{5, true}, {6, true}, {7, true}}, []int64{6, 7, 8}},
		{"OutOfOrderWaitsForGap", []int64{5, 6, 7}, []fin{{7, true}, {6, true}, {5, true}}, []int64{8}},
		{"MiddleFirst", []int64{5, 6, 7}, []fin{{6, true}, {5, true}, {7, true}}, []int64{7, 8}},
		{"SparseOffsets", []int64{10, 20, 30}, []fin{{20, true}, {10, true}, {30, true}}, []int64{21, 31}},
		{"UnknownOffsetIgnored", []int64{5}, []fin{{4, true}, {5, true}}, []int64{6}},
		{"DoneTwiceIgnored", []int64{5, 6}, []fin{{5, true}, {5, true}, {6, true}}, []int64{6, 7}},
		{"AddedTwiceTrackedOnce", []int64{5, 5, 6}, []fin{{5, true}, {6, true}}, []int64{6, 7}},
		{"FailedRecordBlocks", []int64{5, 6, 7}, []fin{{5, true}, {6, false}, {7, true}}, []int64{6}},
		{"FailedFirstStoresNothing", []int64{5, 6}, []fin{{5, false}, {6, true}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPartitionOffsets(context.Background())
			for _, o := range tt.added {
				p.add(o)
			}
			var got []int64
			for _, f := range tt.finish {
				if !p.start() {
					t.Fatal("start = false before stop")
				}
				p.finish(f.offset, f.ok, func(next int64) { got = append(got, next) })
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("stored %v, want %v", got, tt.want)
			}
			if n := p.inFlight(); n != 0 {
				t.Errorf("inFlight = %d after all finished, want 0", n)
			}
		})
	}
}

func TestPartitionOffsetsStoreNeverMovesBack(t *testing.T) {
	const n = 1000
	p := newPartitionOffsets(context.Background())
	for o := range int64(n) {
		p.add(o)
	}
	var (
		mu     sync.Mutex
		stored []int64
		wg     sync.WaitGroup
	)
	for w := range 8 {
		wg.Go(func() {
			for o := int64(w); o < n; o += 8 {
				p.start()
				p.finish(o, true, func(next int64) {
					mu.Lock()
					stored = append(stored, next)
					mu.Unlock()
				})
			}
		})
	}
	wg.Wait()
	if !slices.IsSorted(stored) {
		t.Errorf("stored offsets moved back: %v", stored)
	}
	if len(stored) == 0 || stored[len(stored)-1] != n {
		t.Errorf("last stored offset = %v, want %d", stored, n)
	}
}

func TestPartitionOffsetsStop(t *testing.T) {
	p := newPartitionOffsets(context.Background())
	p.add(1)
	p.add(2)
	p.add(3)
	for i := range 2 { // two records in hand
		if !p.start() {
			t.Fatalf("start %d = false before stop", i)
		}
	}
	drained := p.stop()
	select {
	case <-p.stopping():
	default:
		t.Fatal("stopping not closed after stop")
	}
	if p.start() {
		t.Error("start = true after stop, want the queued record skipped")
	}
	p.finish(2, true, func(int64) { t.Error("stored past unfinished offset 1") })
	select {
	case <-drained:
		t.Fatal("drained with a record still running")
	default:
	}
	var got []int64
	p.finish(1, true, func(next int64) { got = append(got, next) })
	select {
	case <-drained:
	default:
		t.Fatal("not drained after the running records finished")
	}
	if !slices.Equal(got, []int64{3}) {
		t.Errorf("stored %v, want [3]: offset 3 never started", got)
	}
	select {
	case <-p.stop():
	default:
		t.Error("second stop on an idle tracker not drained")
	}
}
