package argon2

import "runtime"

// blocks is the block memory of a Memory: on Linux mapped outside the Go
// heap (blocks_linux.go), elsewhere a slice of it. Outside the heap, the
// m KiB a hash keeps neither count towards the garbage collector's goal
// (which would let the rest of the heap grow by as much again before a
// collection) nor are they scanned; they go back to the kernel when the
// blocks are no longer reachable.
type blocks struct {
	b []block
	// free returns a mapping to the kernel at once; nil for the heap's.
	free func()
}

// newBlocks returns n blocks.
func newBlocks(n int) *blocks {
	if b, region, ok := mapBlocks(n); ok {
		bs := &blocks{b: b}
		cleanup := runtime.AddCleanup(bs, unmapBlocks, region)
		bs.free = func() {
			cleanup.Stop()
			unmapBlocks(region)
		}
		return bs
	}
	return &blocks{b: make([]block, n)}
}
