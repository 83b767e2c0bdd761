package argon2

import (
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page on the platforms Go
// runs Linux on, and the alignment that lets the kernel use them.
const hugePage = 2 << 20

// madvDontDump is Linux's MADV_DONTDUMP, which package syscall lacks.
const madvDontDump = 16

// mapBlocks maps n blocks of anonymous memory aligned to a huge page, and
// asks the kernel to back them with huge pages: a hash reads its blocks
// in an order no cache predicts, and 2 MiB pages spare it most of the TLB
// misses of 4 KiB ones. It returns the blocks and the whole mapping, to
// unmap when the blocks are dropped; ok is false when the kernel refused
// the mapping.
func mapBlocks(n int) (b []block, region []byte, ok bool) {
	size := n * int(unsafe.Sizeof(block{}))
	region, err := syscall.Mmap(-1, 0, size+hugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, false
	}
	start := (hugePage - int(uintptr(unsafe.Pointer(&region[0]))%hugePage)) % hugePage
	aligned := region[start : start+size]
	// Advice only: without huge pages the blocks work the same.
	_ = syscall.Madvise(aligned, syscall.MADV_HUGEPAGE)
	// The blocks are derived from passwords: keep them out of core dumps.
	_ = syscall.Madvise(region, madvDontDump)
	return unsafe.Slice((*block)(unsafe.Pointer(&aligned[0])), n), region, true
}

func unmapBlocks(region []byte) { _ = syscall.Munmap(region) }
