package passwords

import (
	"math"
	"testing"

	"github.com/trustelem/zxcvbn"
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
