// Package seal encrypts data at rest under the key-encryption key (KEK):
// AES-256-GCM, with a key derived per purpose by HKDF-SHA256 so that signing
// keys and stored replies never share a key, and associated data that binds
// each ciphertext to where it is stored, so a sealed value cannot be moved
// to another row.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// KeySize is the size of the key-encryption key: 32 bytes.
const KeySize = 32

// version is the first byte of every sealed value, so the format can change.
const version = 1

// ErrOpen means a sealed value does not open: another key-encryption key,
// other associated data, or corrupt bytes. It never says which.
var ErrOpen = errors.New("seal: cannot open: wrong key or corrupt data")

// Box seals and opens values for one purpose. It is safe for concurrent use.
type Box struct {
	// aeads are the keys of the purpose: the first seals, all open.
	aeads []cipher.AEAD
}

// NewBox derives the key for purpose ("signing keys", "outcomes") from kek,
// which seals, and from each of older, key-encryption keys that a rotation
// of the KEK is retiring, a key that still opens what they sealed.
func NewBox(kek []byte, purpose string, older ...[]byte) (*Box, error) {
	if purpose == "" {
		return nil, errors.New("seal: a purpose is required")
	}
	b := &Box{}
	for _, k := range append([][]byte{kek}, older...) {
		aead, err := newAEAD(k, purpose)
		if err != nil {
			return nil, err
		}
		b.aeads = append(b.aeads, aead)
	}
	return b, nil
}

func newAEAD(kek []byte, purpose string) (cipher.AEAD, error) {
	if len(kek) != KeySize {
		return nil, fmt.Errorf("seal: key-encryption key must be %d bytes, got %d", KeySize, len(kek))
	}
	key, err := hkdf.Key(sha256.New, kek, nil, "authworker seal v1: "+purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("seal: derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plaintext bound to ad. Layout: version (1 byte) | random
// nonce (12 bytes) | ciphertext and tag.
func (b *Box) Seal(plaintext, ad []byte) []byte {
	aead := b.aeads[0]
	n := aead.NonceSize()
	out := make([]byte, 1+n, 1+n+len(plaintext)+aead.Overhead())
	out[0] = version
	rand.Read(out[1:]) // never fails
	return aead.Seal(out, out[1:1+n], plaintext, ad)
}

// Open decrypts a value sealed with the same purpose and ad, under any of
// the box's key-encryption keys. Any failure is ErrOpen.
func (b *Box) Open(sealed, ad []byte) ([]byte, error) {
	plain, _, err := b.open(sealed, ad)
	return plain, err
}

// OpenFresh is Open, and also reports whether the value was sealed under
// the newest key-encryption key: one that is not needs sealing again
// before its KEK leaves the list.
func (b *Box) OpenFresh(sealed, ad []byte) (plain []byte, fresh bool, err error) {
	plain, i, err := b.open(sealed, ad)
	return plain, i == 0, err
}

func (b *Box) open(sealed, ad []byte) ([]byte, int, error) {
	for i, aead := range b.aeads {
		n := aead.NonceSize()
		if len(sealed) < 1+n+aead.Overhead() || sealed[0] != version {
			return nil, 0, ErrOpen
		}
		if plain, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], ad); err == nil {
			return plain, i, nil
		}
	}
	return nil, 0, ErrOpen
}

// MAC computes keyed digests for one purpose: HMAC-SHA256 under a key
// derived from the KEK, so that a stored or published digest of a secret
// (a request, an e-mail address) cannot be checked against guesses by
// anyone without the KEK. It is safe for concurrent use.
type MAC struct {
	key []byte
}

// NewMAC derives the key for purpose ("requests", "throttle") from kek.
func NewMAC(kek []byte, purpose string) (*MAC, error) {
	if len(kek) != KeySize {
		return nil, fmt.Errorf("seal: key-encryption key must be %d bytes, got %d", KeySize, len(kek))
	}
	if purpose == "" {
		return nil, errors.New("seal: a purpose is required")
	}
	key, err := hkdf.Key(sha256.New, kek, nil, "authworker mac v1: "+purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("seal: derive key: %w", err)
	}
	return &MAC{key: key}, nil
}

// Sum returns the digest of parts. Each part is length-prefixed, so that
// ("ab", "c") and ("a", "bc") differ.
func (m *MAC) Sum(parts ...[]byte) []byte {
	h := hmac.New(sha256.New, m.key)
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return h.Sum(nil)
}
