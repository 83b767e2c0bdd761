//go:build !linux

package argon2

// mapBlocks is Linux's only: elsewhere the blocks are a slice of the Go
// heap.
func mapBlocks(int) ([]block, []byte, bool) { return nil, nil, false }

func unmapBlocks([]byte) {}
