package passwords

import (
	"context"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/trustelem/zxcvbn"
	xargon2 "golang.org/x/crypto/argon2"
)

func TestDummyHashIsWellFormed(t *testing.T) {
	h, err := NewHasher(HasherConfig{MemoryKiB: 64, Time: 1, AllowWeak: true})
	if err != nil {
		t.Fatalf("NewHasher: %v", err)
	}
	stored, err := parseHash(h.dummy)
	if err != nil {
		t.Fatalf("dummy hash unreadable: %v", err)
	}
	a, ok := stored.(*argon2Hash)
	if !ok {
		t.Fatalf("got %T, want *argon2Hash", stored)
	}
	if a.variant != argon2id || a.params != h.params || len(a.salt) != DefaultSaltLen || len(a.key) != DefaultKeyLen {
		t.Errorf("got %s %+v salt %d key %d, want argon2id with the configured parameters", a.variant, a.params, len(a.salt), len(a.key))
	}
	if a.outdated(h.params, DefaultSaltLen, DefaultKeyLen) {
		t.Error("dummy hash would ask for a rehash: its work differs from a real one")
	}
}

func TestRepeated(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"aaaaaaaa", true},
		{"abababab", true},
		{"abcabcab", true},
		{"abcdabcdabcd", true},
		{"abcdeabcdeabcde", true},
		{"passwordpassword", true},
		{"passwordpasswordpass", true},
		{"парольпарольпароль", true},
		{"passwordpasswordx", false},
		{"passwordpasswor", false}, // one unit and a cut-short one
		{"aaaaaaab", false},
		{"baaaaaaa", false},
		{"a", false},
		{"", false},
	} {
		if got := repeated([]rune(tt.s)); got != tt.want {
			t.Errorf("repeated(%q): got %v, want %v", tt.s, got, tt.want)
		}
	}
}

// TestSequenceGuesses: on ASCII text, where zxcvbn's own total is right,
// recomputing it from the match sequence gives the same number; on text with
// multi-byte characters, where zxcvbn's total can be 0, it gives the
// estimate of the sequence zxcvbn found.
func TestSequenceGuesses(t *testing.T) {
	for _, pw := range []string{
		"correcthorsebatterystaple", "Password123456!", "poiuytrewqlkjhgf", "g7#Vq2!mZ9xL@4pR",
		"passwordpassword", "Jan 1st 1990 birthday", "authworker2024!!", "P@ssw0rd12345678",
	} {
		r := zxcvbn.PasswordStrength(pw, []string{"authworker"})
		if got := sequenceGuesses(r.Sequence); math.Abs(got-r.Guesses) > 1e-9*r.Guesses {
			t.Errorf("%q: got %g guesses, want zxcvbn's %g", pw, got, r.Guesses)
		}
	}
	const cyrillic = "пароль-из-кириллицы"
	r := zxcvbn.PasswordStrength(cyrillic, nil)
	if got := math.Log10(sequenceGuesses(r.Sequence)); got < 15 {
		t.Errorf("%q: got 10^%.1f guesses (zxcvbn's total: %g), want at least 10^15 for 19 letters without a pattern", cyrillic, got, r.Guesses)
	}
}

func TestContextWords(t *testing.T) {
	got := contextWords("authworker", "ada.lovelace+news@mail.example.com")
	want := []string{"authworker", "ada.lovelace+news@mail.example.com", "ada.lovelace+news",
		"ada", "lovelace", "news", "mail", "example", "com"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if got := contextWords("authworker", ""); len(got) != 1 || got[0] != "authworker" {
		t.Errorf("without an address: got %q, want the service name only", got)
	}
}

// TestPoolKeepsOneMemoryPerSlot: through a Pool, however many callers
// hash and however often the collector runs, the argon2id memories kept
// are as many as the slots: the bound on hashing memory the README gives.
func TestPoolKeepsOneMemoryPerSlot(t *testing.T) {
	dropMemories()
	h, err := NewHasher(HasherConfig{MemoryKiB: 1024, Time: 1, AllowWeak: true})
	if err != nil {
		t.Fatal(err)
	}
	const slots = 2
	p, err := NewPool(h, PoolConfig{Slots: slots, Queue: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 5 {
				if _, err := p.Hash(context.Background(), "a long enough passphrase"); err != nil {
					t.Error(err)
				}
				if i%4 == 0 {
					runtime.GC()
				}
			}
		})
	}
	wg.Wait()
	memories.Lock()
	kept := len(memories.free)
	memories.Unlock()
	if kept < 1 || kept > slots {
		t.Errorf("%d memories kept after 80 hashes on %d slots, want 1 to %d", kept, slots, slots)
	}
}

// TestHostileHashNeverSizesTheMemory: a stored argon2 hash whose
// parameters ask for more memory than the worker's is refused before it
// is computed: no kept memory grows past the configured cost (the dummy
// verification that equalises the time uses the configured one).
func TestHostileHashNeverSizesTheMemory(t *testing.T) {
	const kib = 256
	dropMemories()
	h, err := NewHasher(HasherConfig{MemoryKiB: kib, Time: 1, AllowWeak: true})
	if err != nil {
		t.Fatal(err)
	}
	key := "$" + strings.Repeat("A", 43)
	for _, params := range []string{"m=4194304,t=1,p=1", "m=262144,t=16,p=1", "m=65536,t=1,p=255"} {
		h.Verify("password", "$argon2id$v=19$"+params+"$c29tZXNhbHRzb21lc2FsdA"+key)
	}
	memories.Lock()
	defer memories.Unlock()
	for _, m := range memories.free {
		if m.Blocks() > kib {
			t.Errorf("a kept memory holds %d KiB, want at most the configured %d", m.Blocks(), kib)
		}
	}
}

// dropMemories forgets the memories earlier tests kept.
func dropMemories() {
	memories.Lock()
	defer memories.Unlock()
	memories.free = nil
	memories.keepKiB = 0
}

// TestLargerMemoryIsNotKept: verifying a stored hash of a higher memory
// cost than the worker's (an imported one) grows a memory for that
// verification only: it is freed after, so that the memory kept stays
// within hash slots × the configured cost.
func TestLargerMemoryIsNotKept(t *testing.T) {
	const kib, storedKiB = 256, 1024
	salt := []byte("0123456789abcdef")
	stored := encodeArgon2(argon2id, argonParams{memory: storedKiB, time: 1, threads: 1}, salt,
		xargon2.IDKey([]byte("imported passphrase"), salt, 1, storedKiB, 1, 32))
	dropMemories()
	h, err := NewHasher(HasherConfig{MemoryKiB: kib, Time: 1, AllowWeak: true})
	if err != nil {
		t.Fatal(err)
	}
	if match, _, err := h.Verify("imported passphrase", stored); !match || err != nil {
		t.Fatalf("Verify = %v, %v; want a match", match, err)
	}
	memories.Lock()
	defer memories.Unlock()
	for _, m := range memories.free {
		if m.Blocks() > kib {
			t.Errorf("a %d KiB memory is kept after verifying a %d KiB hash, want none over the configured %d", m.Blocks(), storedKiB, kib)
		}
	}
}
