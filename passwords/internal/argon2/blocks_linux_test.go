package argon2

import (
	"runtime"
	"testing"
	"unsafe"
)

// TestBlocksOutsideTheHeap: on Linux a Memory's blocks are not in the Go
// heap, so they do not raise the garbage collector's goal, and they are
// aligned for huge pages.
func TestBlocksOutsideTheHeap(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var m Memory
	m.IDKey([]byte("p"), []byte("saltsalt"), 1, 19456, 1, 32)
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 1<<20 {
		t.Errorf("the Go heap grew by %d KiB for a 19 MiB hash, want under 1 MiB", grown>>10)
	}
	if addr := uintptr(unsafe.Pointer(&m.mem.b[0])); addr%hugePage != 0 {
		t.Errorf("blocks at %#x, want them aligned to %d bytes", addr, hugePage)
	}
	runtime.KeepAlive(&m)
}
