package seal_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/authworker/authworker/seal"
)

var kek = bytes.Repeat([]byte{7}, seal.KeySize)

func box(t *testing.T, kek []byte, purpose string) *seal.Box {
	t.Helper()
	b, err := seal.NewBox(kek, purpose)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpen(t *testing.T) {
	b := box(t, kek, "outcomes")
	plain := []byte("refresh token and all")
	sealed := b.Seal(plain, []byte("web/r1"))
	if bytes.Contains(sealed, plain) {
		t.Fatal("sealed value holds the plaintext")
	}
	got, err := b.Open(sealed, []byte("web/r1"))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v; want the plaintext", got, err)
	}
	if again := b.Seal(plain, []byte("web/r1")); bytes.Equal(again, sealed) {
		t.Error("two seals of one value are equal, want fresh nonces")
	}
}

func TestOpenRefuses(t *testing.T) {
	b := box(t, kek, "outcomes")
	sealed := b.Seal([]byte("secret"), []byte("web/r1"))
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name   string
		box    *seal.Box
		sealed []byte
		ad     string
	}{
		{"OtherRow", b, sealed, "web/r2"},
		{"OtherPurpose", box(t, kek, "signing keys"), sealed, "web/r1"},
		{"OtherKEK", box(t, bytes.Repeat([]byte{8}, seal.KeySize), "outcomes"), sealed, "web/r1"},
		{"Tampered", b, flipped, "web/r1"},
		{"Truncated", b, sealed[:10], "web/r1"},
		{"UnknownVersion", b, append([]byte{9}, sealed[1:]...), "web/r1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.box.Open(tt.sealed, []byte(tt.ad)); !errors.Is(err, seal.ErrOpen) {
				t.Errorf("Open = %v, want ErrOpen", err)
			}
		})
	}
}

func TestNewBoxRejects(t *testing.T) {
	if _, err := seal.NewBox(kek[:16], "outcomes"); err == nil {
		t.Error("NewBox with a 16-byte KEK succeeded")
	}
	if _, err := seal.NewBox(kek, ""); err == nil {
		t.Error("NewBox without a purpose succeeded")
	}
}

func TestMAC(t *testing.T) {
	m, err := seal.NewMAC(kek, "requests")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := seal.NewMAC(kek, "throttle")
	otherKEK, _ := seal.NewMAC(bytes.Repeat([]byte{8}, seal.KeySize), "requests")
	a := m.Sum([]byte("ab"), []byte("c"))
	tests := []struct {
		name string
		got  []byte
		same bool
	}{
		{"Deterministic", m.Sum([]byte("ab"), []byte("c")), true},
		{"PartsAreFramed", m.Sum([]byte("a"), []byte("bc")), false},
		{"PurposesDiffer", other.Sum([]byte("ab"), []byte("c")), false},
		{"KEKsDiffer", otherKEK.Sum([]byte("ab"), []byte("c")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if bytes.Equal(a, tt.got) != tt.same {
				t.Errorf("equal = %v, want %v", !tt.same, tt.same)
			}
		})
	}
	if len(a) != 32 {
		t.Errorf("digest is %d bytes, want 32", len(a))
	}
	if _, err := seal.NewMAC(kek[:16], "x"); err == nil {
		t.Error("NewMAC with a short KEK succeeded")
	}
}

// TestRotatingKEK: a box with an older key-encryption key seals under the
// newest and opens what either sealed, telling which; a box without the
// older one no longer opens what only it sealed.
func TestRotatingKEK(t *testing.T) {
	oldKEK, newKEK := bytes.Repeat([]byte{1}, seal.KeySize), bytes.Repeat([]byte{2}, seal.KeySize)
	before := box(t, oldKEK, "signing keys")
	during, err := seal.NewBox(newKEK, "signing keys", oldKEK)
	if err != nil {
		t.Fatal(err)
	}
	after := box(t, newKEK, "signing keys")
	ad := []byte("kid")
	sealedOld, sealedNew := before.Seal([]byte("old"), ad), during.Seal([]byte("new"), ad)

	tests := []struct {
		name      string
		box       *seal.Box
		sealed    []byte
		want      string
		wantFresh bool
		wantErr   bool
	}{
		{"DuringOpensOld", during, sealedOld, "old", false, false},
		{"DuringOpensNew", during, sealedNew, "new", true, false},
		{"BeforeRefusesNew", before, sealedNew, "", false, true},
		{"AfterOpensNew", after, sealedNew, "new", true, false},
		{"AfterRefusesOld", after, sealedOld, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fresh, err := tt.box.OpenFresh(tt.sealed, ad)
			if tt.wantErr {
				if !errors.Is(err, seal.ErrOpen) {
					t.Errorf("OpenFresh = %q, %v; want ErrOpen", got, err)
				}
				return
			}
			if err != nil || string(got) != tt.want || fresh != tt.wantFresh {
				t.Errorf("OpenFresh = %q, fresh %v, %v; want %q, fresh %v", got, fresh, err, tt.want, tt.wantFresh)
			}
		})
	}
	if _, err := seal.NewBox(newKEK, "signing keys", []byte("short")); err == nil {
		t.Error("NewBox accepted an older KEK of the wrong size")
	}
}

func TestParseKeys(t *testing.T) {
	a := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, seal.KeySize))
	b := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, seal.KeySize))
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	tests := []struct {
		name    string
		list    string
		want    int    // keys, when no error
		wantErr string // part of the error
	}{
		{"One", a, 1, ""},
		{"NewestFirst", b + "," + a, 2, ""},
		{"SpacesAroundEntries", " " + b + " , " + a + " ", 2, ""},
		{"Empty", "", 0, "is required"},
		{"EmptyEntry", b + ",," + a, 0, "entry 2 of 3 is empty"},
		{"TrailingComma", b + ",", 0, "entry 2 of 2 is empty"},
		{"NotBase64", b + ",not*base64", 0, "entry 2 of 2 is not valid base64"},
		{"Short", short + "," + a, 0, "entry 1 of 2 must decode to 32 bytes, got 16"},
		{"Duplicate", b + "," + a + "," + b, 0, "entry 3 of 3 repeats entry 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := seal.ParseKeys(tt.list)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseKeys error = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), a[:8]) || strings.Contains(err.Error(), b[:8]) {
					t.Errorf("error %q shows a key", err)
				}
				return
			}
			if err != nil || len(keys) != tt.want {
				t.Fatalf("ParseKeys = %d keys, %v; want %d", len(keys), err, tt.want)
			}
			if tt.want == 2 && keys[0][0] != 2 {
				t.Error("the first key listed is not the first returned")
			}
		})
	}
}
