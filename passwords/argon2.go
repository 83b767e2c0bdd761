package passwords

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"

	fastargon2 "github.com/authworker/authworker/passwords/internal/argon2"
)

// argon2 variants this package verifies. Argon2d is not exposed by
// golang.org/x/crypto and no password system writes it.
const (
	argon2id = "argon2id"
	argon2i  = "argon2i"
)

// phcB64 is the base64 of PHC strings: standard alphabet, no padding, and
// zero trailing bits as every encoder writes them.
var phcB64 = base64.RawStdEncoding.Strict()

// argonParams are the costs of an argon2 hash.
type argonParams struct {
	memory  uint32 // m, KiB
	time    uint32 // t, passes
	threads uint8  // p, lanes
}

// check reports whether p is within the bounds of this package: what the
// reference implementation accepts (m >= 8p), and no more than the maxima
// that keep one verification bounded.
func (p argonParams) check() error {
	switch {
	case p.threads < 1 || p.threads > maxArgonParallelism:
		return fmt.Errorf("argon2 parallelism %d outside 1..%d", p.threads, maxArgonParallelism)
	case p.time < 1 || p.time > maxArgonTime:
		return fmt.Errorf("argon2 time %d outside 1..%d", p.time, maxArgonTime)
	case p.memory < 8*uint32(p.threads) || p.memory > maxArgonMemoryKiB:
		return fmt.Errorf("argon2 memory %d KiB outside %d..%d", p.memory, 8*uint32(p.threads), maxArgonMemoryKiB)
	case uint64(p.memory)*uint64(p.time) > maxArgonWork:
		return fmt.Errorf("argon2 memory × time %d exceeds %d", uint64(p.memory)*uint64(p.time), maxArgonWork)
	}
	return nil
}

// argon2Hash is a stored argon2id or argon2i hash.
type argon2Hash struct {
	variant string
	params  argonParams
	salt    []byte
	key     []byte
}

// encodeArgon2 writes the PHC string exactly as the reference implementation
// does: $argon2id$v=19$m=<m>,t=<t>,p=<p>$<salt>$<key>.
func encodeArgon2(variant string, p argonParams, salt, key []byte) string {
	var b strings.Builder
	b.Grow(64 + phcB64.EncodedLen(len(salt)) + phcB64.EncodedLen(len(key)))
	b.WriteString("$")
	b.WriteString(variant)
	b.WriteString("$v=19$m=")
	b.WriteString(strconv.FormatUint(uint64(p.memory), 10))
	b.WriteString(",t=")
	b.WriteString(strconv.FormatUint(uint64(p.time), 10))
	b.WriteString(",p=")
	b.WriteString(strconv.FormatUint(uint64(p.threads), 10))
	b.WriteString("$")
	b.WriteString(phcB64.EncodeToString(salt))
	b.WriteString("$")
	b.WriteString(phcB64.EncodeToString(key))
	return b.String()
}

// parseArgon2 reads a PHC string of version 19 strictly: the fields in the
// reference order, canonical decimals, no optional keyid or data parameters,
// and every value bounded before anything is allocated for it.
func parseArgon2(encoded string) (*argon2Hash, error) {
	// "", variant, "v=19", "m=..,t=..,p=..", salt, key
	f := strings.Split(encoded, "$")
	if len(f) == 5 && strings.HasPrefix(f[2], "m=") {
		return nil, fmt.Errorf("%w: argon2: version 16 (no v= field)", ErrUnsupportedHash)
	}
	if len(f) != 6 || f[0] != "" {
		return nil, fmt.Errorf("%w: argon2: want 5 fields", ErrMalformedHash)
	}
	h := &argon2Hash{variant: f[1]}
	if f[2] != "v=19" {
		return nil, fmt.Errorf("%w: argon2: only version 19 is verified", ErrUnsupportedHash)
	}
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return nil, fmt.Errorf("%w: argon2: want parameters m, t and p only", ErrMalformedHash)
	}
	var vals [3]uint64
	for i, name := range [3]string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(params[i], name)
		if !ok {
			return nil, fmt.Errorf("%w: argon2: want parameters m, t and p in that order", ErrMalformedHash)
		}
		n, ok := parseDecimal(v)
		if !ok {
			return nil, fmt.Errorf("%w: argon2: parameter %s is not a canonical decimal", ErrMalformedHash, name[:1])
		}
		vals[i] = n
	}
	if vals[0] > maxArgonMemoryKiB || vals[1] > maxArgonTime || vals[2] > maxArgonParallelism {
		return nil, fmt.Errorf("%w: argon2: parameters out of bounds", ErrMalformedHash)
	}
	h.params = argonParams{memory: uint32(vals[0]), time: uint32(vals[1]), threads: uint8(vals[2])}
	if err := h.params.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
	var err error
	if h.salt, err = decodeB64(f[4], phcB64, '+', minArgonSaltLen, maxArgonSaltLen); err != nil {
		return nil, fmt.Errorf("argon2 salt: %w", err)
	}
	if h.key, err = decodeB64(f[5], phcB64, '+', minArgonKeyLen, maxArgonKeyLen); err != nil {
		return nil, fmt.Errorf("argon2 key: %w", err)
	}
	return h, nil
}

func (h *argon2Hash) matches(password string) (bool, error) {
	pw := []byte(normalize(password))
	p := h.params
	var got []byte
	if h.variant == argon2id {
		got = idKey(pw, h.salt, p, uint32(len(h.key)))
	} else {
		got = argon2.Key(pw, h.salt, p.time, p.memory, p.threads, uint32(len(h.key)))
	}
	return constantTimeEqual(got, h.key), nil
}

func (h *argon2Hash) outdated(p argonParams, saltLen, keyLen uint32) bool {
	return h.variant != argon2id || h.params != p ||
		len(h.salt) != int(saltLen) || len(h.key) != int(keyLen)
}

// memories keeps the block memory of argon2id hashes from one hash to the
// next: as many as hashes ever ran at once, which the Pool bounds to its
// slots. A hash then neither allocates, zeroes nor faults in its
// MemoryKiB. Not a sync.Pool: that keeps an unstealable one per P and
// drops the rest at each collection, so that two hash slots held up to
// five memories.
var memories struct {
	sync.Mutex
	free []*fastargon2.Memory
	// keepKiB is the largest memory cost of new hashes (NewHasher's): a
	// memory grown beyond it, to verify a stored hash of a higher cost,
	// is freed after that verification instead of kept.
	keepKiB uint32
}

// keepMemoryUpTo lets memories of kib be kept.
func keepMemoryUpTo(kib uint32) {
	memories.Lock()
	defer memories.Unlock()
	memories.keepKiB = max(memories.keepKiB, kib)
}

func getMemory() *fastargon2.Memory {
	memories.Lock()
	defer memories.Unlock()
	if n := len(memories.free); n > 0 {
		m := memories.free[n-1]
		memories.free = memories.free[:n-1]
		return m
	}
	return new(fastargon2.Memory)
}

func putMemory(m *fastargon2.Memory) {
	memories.Lock()
	defer memories.Unlock()
	if m.Blocks() > int(memories.keepKiB) {
		m.Free()
		return
	}
	memories.free = append(memories.free, m)
}

// idKey is argon2.IDKey computed in a kept memory.
func idKey(password, salt []byte, p argonParams, keyLen uint32) []byte {
	m := getMemory()
	defer putMemory(m)
	return m.IDKey(password, salt, p.time, p.memory, p.threads, keyLen)
}
