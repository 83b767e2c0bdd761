package argon2

import (
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
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

// TestBlocksAdvice: the kernel was told to back the blocks with huge pages
// (VmFlags hg) and to leave them out of core dumps (dd): they are derived
// from passwords.
func TestBlocksAdvice(t *testing.T) {
	var m Memory
	m.IDKey([]byte("p"), []byte("saltsalt"), 1, 4096, 1, 32)
	addr := uint64(uintptr(unsafe.Pointer(&m.mem.b[0])))
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	inside := false
	for _, line := range strings.Split(string(smaps), "\n") {
		if lo, hi, ok := strings.Cut(strings.Fields(line + " x")[0], "-"); ok {
			l, err1 := strconv.ParseUint(lo, 16, 64)
			h, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil { // a mapping's first line
				inside = l <= addr && addr < h
				continue
			}
		}
		if inside && strings.HasPrefix(line, "VmFlags:") {
			flags := strings.Fields(strings.TrimPrefix(line, "VmFlags:"))
			if !slices.Contains(flags, "dd") {
				t.Errorf("VmFlags of the blocks' mapping = %v, want dd", flags)
			}
			if thp, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled"); err == nil &&
				!strings.Contains(string(thp), "[never]") && !slices.Contains(flags, "hg") {
				t.Errorf("VmFlags of the blocks' mapping = %v, want hg (transparent huge pages: %s)", flags, strings.TrimSpace(string(thp)))
			}
			runtime.KeepAlive(&m)
			return
		}
	}
	t.Fatalf("no mapping in /proc/self/smaps holds the blocks at %#x", addr)
}
