package consumers

import "testing"

func TestPartitionOffsets(t *testing.T) {
	tests := []struct {
		name  string
		added []int64
		done  []int64
		want  []int64 // offset to store after each done, -1 for none
	}{
		{"InOrder", []int64{5, 6, 7}, []int64{5, 6, 7}, []int64{6, 7, 8}},
		{"OutOfOrderWaitsForGap", []int64{5, 6, 7}, []int64{7, 6, 5}, []int64{-1, -1, 8}},
		{"MiddleFirst", []int64{5, 6, 7}, []int64{6, 5, 7}, []int64{-1, 7, 8}},
		{"SparseOffsets", []int64{10, 20, 30}, []int64{20, 10, 30}, []int64{-1, 21, 31}},
		{"UnknownOffsetIgnored", []int64{5}, []int64{4, 5}, []int64{-1, 6}},
		{"DoneTwiceIgnored", []int64{5, 6}, []int64{5, 5, 6}, []int64{6, -1, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPartitionOffsets()
			for _, o := range tt.added {
				p.add(o)
			}
			for i, o := range tt.done {
				if got := p.done(o); got != tt.want[i] {
					t.Errorf("done(%d) = %d, want %d", o, got, tt.want[i])
				}
			}
			if n := p.inFlight(); n != 0 {
				t.Errorf("inFlight = %d after all done, want 0", n)
			}
		})
	}
}

func TestPartitionOffsetsDrained(t *testing.T) {
	p := newPartitionOffsets()
	select {
	case <-p.drained():
	default:
		t.Fatal("empty tracker not drained")
	}
	p.add(1)
	p.add(2)
	ch := p.drained()
	p.done(2)
	select {
	case <-ch:
		t.Fatal("drained with offset 1 in flight")
	default:
	}
	p.done(1)
	select {
	case <-ch:
	default:
		t.Fatal("not drained after all done")
	}
}
