package passwords

import "testing"

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
