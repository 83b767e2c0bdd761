package argon2

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	xargon2 "golang.org/x/crypto/argon2"
)

// TestRFC9106Argon2id: the test vector of RFC 9106 §5.3, with its secret
// and associated data, four lanes.
func TestRFC9106Argon2id(t *testing.T) {
	var m Memory
	checkRFC9106(t, &m)
}

// checkRFC9106 derives RFC 9106's Argon2id test vector with m.
func checkRFC9106(t *testing.T, m *Memory) {
	t.Helper()
	got := m.deriveKey(argon2id,
		bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16), bytes.Repeat([]byte{3}, 8), bytes.Repeat([]byte{4}, 12),
		3, 32, 4, 32)
	want, _ := hex.DecodeString("0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659")
	if !bytes.Equal(got, want) {
		t.Errorf("RFC 9106 tag %x, want %x", got, want)
	}
}

// TestSameAsXCrypto: one Memory, reused across hashes of every shape, in
// an order that shrinks and grows it, gives x/crypto's keys byte for byte.
func TestSameAsXCrypto(t *testing.T) {
	var m Memory
	checkSameAsXCrypto(t, &m, rand.New(rand.NewPCG(1, 2)), 200, 2048)
}

// checkSameAsXCrypto derives n keys of random shapes (memory up to
// 8 + maxMemory KiB) with m and with x/crypto, and compares them.
func checkSameAsXCrypto(t *testing.T, m *Memory, r *rand.Rand, n int, maxMemory uint32) {
	t.Helper()
	for i := range n {
		password := make([]byte, r.IntN(64))
		salt := make([]byte, 8+r.IntN(24))
		for j := range password {
			password[j] = byte(r.Uint32())
		}
		for j := range salt {
			salt[j] = byte(r.Uint32())
		}
		time := 1 + r.Uint32N(3)
		memory := 8 + r.Uint32N(maxMemory)
		threads := uint8(1 + r.IntN(4))
		keyLen := 16 + r.Uint32N(48)
		got := m.IDKey(password, salt, time, memory, threads, keyLen)
		want := xargon2.IDKey(password, salt, time, memory, threads, keyLen)
		if !bytes.Equal(got, want) {
			t.Fatalf("hash %d (t=%d m=%d p=%d len=%d): %x, want %x", i, time, memory, threads, keyLen, got, want)
		}
	}
}

// TestMemoryKeptAndGrown: the memory is allocated once for the largest
// cost seen, and reused.
func TestMemoryKeptAndGrown(t *testing.T) {
	var m Memory
	m.IDKey([]byte("p"), []byte("saltsalt"), 1, 64, 1, 32)
	if m.Blocks() != 64 {
		t.Fatalf("%d blocks after a 64 KiB hash, want 64", m.Blocks())
	}
	first := &m.mem.b[0]
	m.IDKey([]byte("p"), []byte("saltsalt"), 1, 32, 1, 32)
	if m.Blocks() != 64 || &m.mem.b[0] != first {
		t.Error("a smaller hash reallocated the memory")
	}
	m.IDKey([]byte("p"), []byte("saltsalt"), 1, 128, 1, 32)
	if m.Blocks() != 128 {
		t.Errorf("%d blocks after a 128 KiB hash, want 128", m.Blocks())
	}
}

// BenchmarkIDKey compares a reused Memory with x/crypto, which allocates
// and zeroes the memory every time, at the OWASP minimum the worker uses.
func BenchmarkIDKey(b *testing.B) {
	password, salt := []byte("correct horse battery staple"), []byte("0123456789abcdef")
	b.Run("Reused", func(b *testing.B) {
		var m Memory
		for b.Loop() {
			m.IDKey(password, salt, 2, 19456, 1, 32)
		}
	})
	b.Run("XCrypto", func(b *testing.B) {
		for b.Loop() {
			xargon2.IDKey(password, salt, 2, 19456, 1, 32)
		}
	})
}

// TestFreeThenReuse: a freed Memory holds nothing, and hashes correctly
// again in new blocks.
func TestFreeThenReuse(t *testing.T) {
	password, salt := []byte("p"), []byte("saltsalt")
	var m Memory
	m.IDKey(password, salt, 1, 64, 1, 32)
	m.Free()
	if m.Blocks() != 0 {
		t.Fatalf("%d blocks after Free, want 0", m.Blocks())
	}
	m.Free() // twice is harmless
	if got, want := m.IDKey(password, salt, 1, 128, 1, 32), xargon2.IDKey(password, salt, 1, 128, 1, 32); !bytes.Equal(got, want) {
		t.Errorf("key after Free %x, want x/crypto's %x", got, want)
	}
}
