// Package passwords hashes, verifies and vets passwords.
//
// New hashes are argon2id in the standard PHC string form, byte for byte as
// the reference implementation, libsodium, argon2-cffi and passlib write them,
// so hashes move between those systems in both directions (another system
// verifying one of ours must be given the NFKC form). Imported bcrypt and
// PBKDF2 (passlib format) hashes verify too, always asking for a rehash, so
// users migrate to argon2id on their next successful login.
//
// Every password is NFKC-normalised before it is hashed, so that the
// full-width, ligature and composed or decomposed spellings of one password
// are the same password. A hard cap on its length in bytes applies before any
// hashing or normalisation, so a huge input costs nothing.
//
// The Policy decides which passwords may be set, following NIST SP 800-63B:
// minimum and maximum lengths counted in code points, no composition rules,
// and a blocklist in the broad sense NIST gives it: lists of common passwords
// and passphrases, repetitions, the account's own e-mail address, and a
// zxcvbn estimate of guessability that finds sequences, keyboard walks,
// dictionary words and the service's name.
//
// Nothing in this package logs, and no error it returns quotes a password or a
// hash.
package passwords

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"golang.org/x/text/unicode/norm"

	"github.com/authworker/authworker/domain"
)

// Defaults of HasherConfig. The argon2id costs are the OWASP minimum
// (Password Storage Cheat Sheet): 19 MiB, 2 passes, 1 lane.
const (
	DefaultMemoryKiB   = 19456
	DefaultTime        = 2
	DefaultParallelism = 1
	DefaultSaltLen     = 16
	DefaultKeyLen      = 32
	DefaultMaxBytes    = 1024
)

// Bounds on the argon2 parameters this package accepts, both in its
// configuration and in a stored hash. They keep a corrupt or planted hash from
// costing more than a bounded amount of memory and time: 256 MiB is the most
// a widely used preset asks for (libsodium's MODERATE), and the product of
// memory and passes caps the work at what 256 MiB times 4 passes costs.
const (
	maxArgonMemoryKiB   = 256 * 1024
	maxArgonTime        = 16
	maxArgonParallelism = 16
	maxArgonWork        = 4 * maxArgonMemoryKiB // memory KiB × passes
	minArgonSaltLen     = 8                     // the reference implementation's minimum
	maxArgonSaltLen     = 64
	minArgonKeyLen      = 16 // argon2-cffi's default; anything shorter is not worth verifying
	maxArgonKeyLen      = 64

	minMaxBytes = 256  // room for 64 characters of 4 bytes, NIST's minimum maximum
	maxMaxBytes = 4096 // beyond this a cap no longer bounds the work
)

// OWASP minimum costs. Below them a configuration is refused unless
// AllowWeak is set.
const (
	owaspMemoryKiB = 19456
	owaspTime      = 2
	owaspSaltLen   = 16
)

// maxEncodedLen bounds a stored hash before anything else is read from it.
// The longest one accepted (argon2 with a 64-byte salt and key, or PBKDF2-SHA512
// with a 64-byte salt) is under 200 characters.
const maxEncodedLen = 256

// ErrMalformedHash is the cause of the error Verify returns for a stored hash
// that cannot be read: wrong syntax, bad encoding, or parameters out of
// bounds. Check it with errors.Is.
var ErrMalformedHash = errors.New("malformed password hash")

// ErrUnsupportedHash is the cause of the error Verify returns for a stored hash
// of a scheme or version this package does not verify. Check it with
// errors.Is.
var ErrUnsupportedHash = errors.New("unsupported password hash scheme")

// HasherConfig configures a Hasher. Zero fields take the defaults.
type HasherConfig struct {
	// MemoryKiB, Time and Parallelism are the argon2id costs m, t and p of new
	// hashes. A stored hash made with other costs verifies and asks for a
	// rehash.
	MemoryKiB   uint32
	Time        uint32
	Parallelism uint8

	// SaltLen and KeyLen are the lengths in bytes of the salt and of the
	// derived key in new hashes.
	SaltLen uint32
	KeyLen  uint32

	// MaxBytes is the hard cap on the length of a password in bytes, checked
	// before any normalisation or hashing. Keep it equal to the Policy's.
	MaxBytes int

	// AllowWeak permits costs below the OWASP minimum. Only tests set it.
	AllowWeak bool

	// Rand is the source of salts. It must be safe for concurrent use.
	// The default is crypto/rand.Reader.
	Rand io.Reader
}

func (c *HasherConfig) setDefaults() {
	if c.MemoryKiB == 0 {
		c.MemoryKiB = DefaultMemoryKiB
	}
	if c.Time == 0 {
		c.Time = DefaultTime
	}
	if c.Parallelism == 0 {
		c.Parallelism = DefaultParallelism
	}
	if c.SaltLen == 0 {
		c.SaltLen = DefaultSaltLen
	}
	if c.KeyLen == 0 {
		c.KeyLen = DefaultKeyLen
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
}

// Validate reports whether c is usable: within the bounds every stored hash
// must respect, and at or above the OWASP minimum unless AllowWeak is set.
// NewHasher fills in the defaults before it calls Validate.
func (c HasherConfig) Validate() error {
	p := argonParams{memory: c.MemoryKiB, time: c.Time, threads: c.Parallelism}
	if err := p.check(); err != nil {
		return fmt.Errorf("passwords: hasher config: %w", err)
	}
	if c.SaltLen < minArgonSaltLen || c.SaltLen > maxArgonSaltLen {
		return fmt.Errorf("passwords: hasher config: salt length %d outside %d..%d", c.SaltLen, minArgonSaltLen, maxArgonSaltLen)
	}
	if c.KeyLen < minArgonKeyLen || c.KeyLen > maxArgonKeyLen {
		return fmt.Errorf("passwords: hasher config: key length %d outside %d..%d", c.KeyLen, minArgonKeyLen, maxArgonKeyLen)
	}
	if c.MaxBytes < minMaxBytes || c.MaxBytes > maxMaxBytes {
		return fmt.Errorf("passwords: hasher config: max bytes %d outside %d..%d", c.MaxBytes, minMaxBytes, maxMaxBytes)
	}
	if c.Rand == nil {
		return errors.New("passwords: hasher config: no source of randomness")
	}
	if !c.AllowWeak && (c.MemoryKiB < owaspMemoryKiB || c.Time < owaspTime || c.SaltLen < owaspSaltLen) {
		return fmt.Errorf("passwords: hasher config: m=%d t=%d salt=%d is below the OWASP minimum m=%d t=%d salt=%d (set AllowWeak only in tests)",
			c.MemoryKiB, c.Time, c.SaltLen, owaspMemoryKiB, owaspTime, owaspSaltLen)
	}
	return nil
}

// Hasher hashes passwords with argon2id and verifies argon2id, argon2i,
// bcrypt and PBKDF2 hashes. It is safe for concurrent use. Each hash or
// verification holds MemoryKiB of memory while it runs, so it runs inside a
// Pool, which bounds how many run at once and is the domain.PasswordHasher.
type Hasher struct {
	cfg    HasherConfig
	params argonParams
	// dummy is a well-formed argon2id hash with the configured parameters
	// whose key is random bytes, so no password matches it.
	dummy string
	// computed counts the keys derived, for Computed.
	computed atomic.Uint64
}

// NewHasher returns a Hasher built from cfg.
func NewHasher(cfg HasherConfig) (*Hasher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Hasher{
		cfg:    cfg,
		params: argonParams{memory: cfg.MemoryKiB, time: cfg.Time, threads: cfg.Parallelism},
	}
	keepMemoryUpTo(cfg.MemoryKiB)
	salt := make([]byte, cfg.SaltLen)
	key := make([]byte, cfg.KeyLen)
	if _, err := io.ReadFull(cfg.Rand, salt); err != nil {
		return nil, fmt.Errorf("passwords: dummy hash salt: %w", err)
	}
	if _, err := io.ReadFull(cfg.Rand, key); err != nil {
		return nil, fmt.Errorf("passwords: dummy hash key: %w", err)
	}
	h.dummy = encodeArgon2(argon2id, h.params, salt, key)
	return h, nil
}

// Hash returns the argon2id PHC string of the NFKC form of password.
// It returns a CodeInvalid error for field "password" when password is longer
// than MaxBytes, and a CodeInternal error when no salt can be read.
func (h *Hasher) Hash(password string) (string, error) {
	if len(password) > h.cfg.MaxBytes {
		return "", domain.Invalid("password", "password must be at most %d bytes long", h.cfg.MaxBytes)
	}
	salt := make([]byte, h.cfg.SaltLen)
	if _, err := io.ReadFull(h.cfg.Rand, salt); err != nil {
		return "", &domain.Error{Code: domain.CodeInternal, Message: "password hashing failed", Err: fmt.Errorf("read salt: %w", err)}
	}
	p := h.params
	h.computed.Add(1)
	key := idKey([]byte(normalize(password)), salt, p, h.cfg.KeyLen)
	return encodeArgon2(argon2id, p, salt, key), nil
}

// Verify reports whether password matches the stored hash encoded, comparing
// in constant time, and on a match whether the hash should be replaced: when
// it is not argon2id, or was made with other costs or lengths than the
// configured ones. A password longer than MaxBytes never matches and is not
// hashed. Verify returns an error, of code CodeInternal with cause
// ErrMalformedHash or ErrUnsupportedHash, only when encoded cannot be read;
// the hash is read before the password is looked at, and an unreadable one
// still costs a dummy verification, so that it takes as long as a wrong
// password.
func (h *Hasher) Verify(password, encoded string) (match, rehash bool, err error) {
	stored, err := parseHash(encoded)
	if err != nil {
		h.VerifyDummy(password)
		return false, false, &domain.Error{Code: domain.CodeInternal, Message: "stored password hash is unreadable", Err: err}
	}
	if len(password) > h.cfg.MaxBytes {
		return false, false, nil
	}
	h.computed.Add(1)
	ok, err := stored.matches(password)
	if err != nil {
		return false, false, &domain.Error{Code: domain.CodeInternal, Message: "password verification failed", Err: err}
	}
	if !ok {
		return false, false, nil
	}
	return true, stored.outdated(h.params, h.cfg.SaltLen, h.cfg.KeyLen), nil
}

// VerifyDummy runs the same work as Verify of password against an argon2id
// hash with the configured parameters, and discards the result. A password
// longer than MaxBytes costs nothing here, as in Verify.
func (h *Hasher) VerifyDummy(password string) {
	_, _, _ = h.Verify(password, h.dummy)
}

// Computed returns how many password hashes h has computed since it was
// made: new hashes, verifications and dummy verifications alike. It is the
// observable proof that a request cost no hashing, for tests and metrics.
func (h *Hasher) Computed() uint64 {
	return h.computed.Load()
}

// normalize returns the NFKC form of password. Invalid UTF-8 passes through
// byte for byte, so such a password still hashes the same way every time.
func normalize(password string) string {
	return norm.NFKC.String(password)
}

// storedHash is a stored hash that has been read and bounds-checked.
type storedHash interface {
	// matches reports whether password derives the stored key.
	matches(password string) (bool, error)
	// outdated reports whether a matching hash should be replaced by one made
	// with the given argon2id parameters and lengths.
	outdated(p argonParams, saltLen, keyLen uint32) bool
}

// parseHash reads encoded by its scheme prefix.
func parseHash(encoded string) (storedHash, error) {
	if len(encoded) > maxEncodedLen {
		return nil, fmt.Errorf("%w: longer than %d characters", ErrMalformedHash, maxEncodedLen)
	}
	switch scheme := schemeOf(encoded); scheme {
	case "argon2id", "argon2i":
		return parseArgon2(encoded)
	case "2a", "2b", "2y":
		return parseBcrypt(encoded)
	case "pbkdf2", "pbkdf2-sha256", "pbkdf2-sha512":
		return parsePBKDF2(encoded)
	case "":
		return nil, fmt.Errorf("%w: no scheme identifier", ErrMalformedHash)
	case "argon2d", "2", "2x", "1", "5", "6", "scrypt", "pbkdf2-sha1":
		// Known identifiers are named; anything else is not quoted, since a
		// column meant for hashes may hold a password by mistake.
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedHash, scheme)
	default:
		return nil, fmt.Errorf("%w: unknown scheme identifier", ErrUnsupportedHash)
	}
}

// schemeOf returns the identifier between the first two dollar signs, or ""
// when encoded does not start with one.
func schemeOf(encoded string) string {
	if len(encoded) < 2 || encoded[0] != '$' {
		return ""
	}
	for i := 1; i < len(encoded); i++ {
		if encoded[i] == '$' {
			return encoded[1:i]
		}
	}
	return ""
}

// constantTimeEqual reports whether a and b are equal without leaking where
// they differ.
func constantTimeEqual(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}

// decodeB64 decodes s, which must use only the 64 characters of alphabet
// (the standard base64 one, or passlib's with '.' for '+'), without padding,
// with zero trailing bits, and decode to between min and max bytes. The
// length is checked before anything is allocated. Go's decoders skip
// newlines; the alphabet check refuses them.
func decodeB64(s string, enc *base64.Encoding, plus byte, min, max int) ([]byte, error) {
	if n := len(s) * 6 / 8; n < min || n > max {
		return nil, fmt.Errorf("%w: %d encoded bytes, want %d..%d", ErrMalformedHash, n, min, max)
	}
	if len(s)%4 == 1 {
		return nil, fmt.Errorf("%w: truncated base64", ErrMalformedHash)
	}
	buf := []byte(s)
	for i, c := range buf {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '/':
		case c == plus:
			buf[i] = '+'
		default:
			return nil, fmt.Errorf("%w: character outside the base64 alphabet", ErrMalformedHash)
		}
	}
	out := make([]byte, enc.DecodedLen(len(buf)))
	n, err := enc.Decode(out, buf)
	if err != nil {
		return nil, fmt.Errorf("%w: bad base64", ErrMalformedHash)
	}
	return out[:n], nil
}

// parseDecimal parses a canonical unsigned decimal of at most 10 digits: no
// sign, no leading zero, nothing but digits. It never overflows uint64.
func parseDecimal(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}
