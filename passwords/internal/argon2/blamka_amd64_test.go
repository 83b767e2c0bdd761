//go:build amd64 && gc && !purego

package argon2

import (
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/cpu"
)

// TestAVX2Selected: on a CPU with AVX2 the AVX2 block function is the
// one in use, so that the package's other tests exercise it.
func TestAVX2Selected(t *testing.T) {
	if useAVX2 != cpu.X86.HasAVX2 {
		t.Fatalf("useAVX2 = %v on a CPU whose HasAVX2 = %v", useAVX2, cpu.X86.HasAVX2)
	}
	if !cpu.X86.HasAVX2 {
		t.Skip("no AVX2 on this CPU: the AVX2 block function is not tested")
	}
}

func randomBlock(r *rand.Rand, b *block) {
	for i := range b {
		b[i] = r.Uint64()
	}
}

// TestProcessBlockAVX2: the AVX2 block function gives the generic one's
// blocks byte for byte, with and without xor, for random blocks, blocks
// of extreme words and an output that is also an input (as processBlocks
// makes the address blocks).
func TestProcessBlockAVX2(t *testing.T) {
	if !cpu.X86.HasAVX2 {
		t.Skip("no AVX2 on this CPU")
	}
	r := rand.New(rand.NewPCG(3, 4))
	var in1, in2, old, got, want block
	for i := range 20000 {
		randomBlock(r, &in1)
		randomBlock(r, &in2)
		randomBlock(r, &old)
		switch i % 100 {
		case 0:
			in1, in2 = block{}, block{}
		case 1:
			for j := range in1 {
				in1[j], in2[j] = ^uint64(0), 0
			}
		case 2:
			for j := range in1 {
				in1[j], in2[j] = 0xffffffff, 1<<63|0xffffffff
			}
		}
		for _, xor := range []bool{false, true} {
			got, want = old, old
			processBlockAVX2(&got, &in1, &in2, xor)
			processBlockGeneric(&want, &in1, &in2, xor)
			checkBlock(t, i, xor, "", &got, &want)

			// out is in1, then in2.
			got, want = in1, in1
			processBlockAVX2(&got, &got, &in2, xor)
			processBlockGeneric(&want, &want, &in2, xor)
			checkBlock(t, i, xor, " into its first input", &got, &want)
			got, want = in2, in2
			processBlockAVX2(&got, &in1, &got, xor)
			processBlockGeneric(&want, &in1, &want, xor)
			checkBlock(t, i, xor, " into its second input", &got, &want)
		}
	}
}

// checkBlock fails t at the first word where got and want differ.
func checkBlock(t *testing.T, i int, xor bool, into string, got, want *block) {
	t.Helper()
	for j := range got {
		if got[j] != want[j] {
			t.Fatalf("block %d (xor %v): AVX2%s differs from generic at word %d: %#x, want %#x", i, xor, into, j, got[j], want[j])
		}
	}
}

// TestBlockFunctions runs the known-answer and x/crypto comparisons with
// each block function this CPU has: AVX2, SSE4 and the generic fallback
// of processBlockSSE.
func TestBlockFunctions(t *testing.T) {
	paths := []struct {
		name       string
		avx2, sse4 bool
		have       bool
	}{
		{"AVX2", true, true, cpu.X86.HasAVX2 && cpu.X86.HasSSE41},
		{"SSE4", false, true, cpu.X86.HasSSE41},
		{"SSE2", false, false, true},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			if !p.have {
				t.Skipf("no %s on this CPU", p.name)
			}
			// The selection is package state: these subtests, and every
			// test of the package, must not run in parallel with this.
			defer func(avx2, sse4 bool) { useAVX2, useSSE4 = avx2, sse4 }(useAVX2, useSSE4)
			useAVX2, useSSE4 = p.avx2, p.sse4

			var m Memory
			checkRFC9106(t, &m)
			checkSameAsXCrypto(t, &m, rand.New(rand.NewPCG(5, 6)), 40, 1024)
		})
	}
}

// BenchmarkProcessBlock: one block of the second pass (xor), with each
// block function this CPU has.
func BenchmarkProcessBlock(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	var out, in1, in2 block
	randomBlock(r, &out)
	randomBlock(r, &in1)
	randomBlock(r, &in2)
	b.Run("AVX2", func(b *testing.B) {
		if !cpu.X86.HasAVX2 {
			b.Skip("no AVX2 on this CPU")
		}
		b.SetBytes(int64(len(in1) * 8))
		for b.Loop() {
			processBlockAVX2(&out, &in1, &in2, true)
		}
	})
	b.Run("SSE4", func(b *testing.B) {
		if !cpu.X86.HasSSE41 {
			b.Skip("no SSE4.1 on this CPU")
		}
		defer func(sse4 bool) { useSSE4 = sse4 }(useSSE4)
		useSSE4 = true
		b.SetBytes(int64(len(in1) * 8))
		for b.Loop() {
			processBlockSSE(&out, &in1, &in2, true)
		}
	})
}
