package passwords

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Imported hashes were made by other systems, which hashed the password's
// bytes as typed, without normalising. They are tried with those bytes first
// and, only when that fails and the NFKC form differs, with the NFKC form
// (a system that normalised as this package does). A match always asks for a
// rehash, which moves the user to argon2id.

// Bounds on imported hashes. bcrypt cost 16 takes seconds; PBKDF2 with
// 5,000,000 rounds takes about as long with SHA-256 and is four times OWASP's
// 1,300,000 for SHA-1 (the slowest recommendation). Anything costlier in a
// stored hash is corrupt or planted.
const (
	maxBcryptCost    = 16
	maxPBKDF2Rounds  = 5_000_000
	maxPBKDF2SaltLen = 64 // passlib writes 16
)

// bcryptMaxBytes is the number of password bytes bcrypt uses. Every bcrypt
// implementation that wrote the hashes being imported ignored what follows, so
// verification does too: a password longer than 72 bytes matches when its
// first 72 bytes do, exactly as it did on the old system. Refusing it instead
// would lock out every user whose passphrase was that long (72 bytes is only
// 24 characters of some scripts), and the rehash on success replaces the hash
// with an argon2id one over the whole password at once.
const bcryptMaxBytes = 72

// bcryptHash is a stored bcrypt hash ($2a$, $2b$ or $2y$, which differ only in
// the bugs of the implementations that wrote them; golang.org/x/crypto/bcrypt
// computes all three the correct way).
type bcryptHash struct {
	encoded []byte
}

// bcryptAlphabet is bcrypt's own base64 alphabet.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// parseBcrypt reads $2?$NN$ followed by 22 characters of salt and 31 of hash.
func parseBcrypt(encoded string) (*bcryptHash, error) {
	if len(encoded) != 60 || encoded[3] != '$' || encoded[6] != '$' {
		return nil, fmt.Errorf("%w: bcrypt: want $2?$NN$ and 53 characters", ErrMalformedHash)
	}
	cost, ok := parseDecimal(strings.TrimPrefix(encoded[4:6], "0"))
	if !ok || cost < uint64(bcrypt.MinCost) || cost > maxBcryptCost {
		return nil, fmt.Errorf("%w: bcrypt: cost outside %d..%d", ErrMalformedHash, bcrypt.MinCost, maxBcryptCost)
	}
	for i := 7; i < len(encoded); i++ {
		if strings.IndexByte(bcryptAlphabet, encoded[i]) < 0 {
			return nil, fmt.Errorf("%w: bcrypt: character outside its alphabet", ErrMalformedHash)
		}
	}
	return &bcryptHash{encoded: []byte(encoded)}, nil
}

func (h *bcryptHash) matches(password string) (bool, error) {
	return tryLegacy(password, func(pw string) (bool, error) {
		if len(pw) > bcryptMaxBytes {
			pw = pw[:bcryptMaxBytes]
		}
		err := bcrypt.CompareHashAndPassword(h.encoded, []byte(pw))
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, nil
		default:
			return false, fmt.Errorf("bcrypt: %w", err)
		}
	})
}

func (*bcryptHash) outdated(argonParams, uint32, uint32) bool { return true }

// pbkdf2Hash is a stored PBKDF2 hash in passlib's format:
//
//	$pbkdf2$<rounds>$<salt>$<checksum>         HMAC-SHA1, 20-byte checksum
//	$pbkdf2-sha256$<rounds>$<salt>$<checksum>  HMAC-SHA256, 32 bytes
//	$pbkdf2-sha512$<rounds>$<salt>$<checksum>  HMAC-SHA512, 64 bytes
//
// where rounds is a canonical decimal and salt and checksum are passlib's
// "adapted base64": the standard alphabet with '.' for '+', no padding. The
// password is hashed as its UTF-8 bytes, as passlib does.
type pbkdf2Hash struct {
	newHash  func() hash.Hash
	rounds   int
	salt     []byte
	checksum []byte
}

// ab64 is passlib's adapted base64 once '.' is mapped back to '+'.
var ab64 = base64.RawStdEncoding.Strict()

func parsePBKDF2(encoded string) (*pbkdf2Hash, error) {
	// "", ident, rounds, salt, checksum
	f := strings.Split(encoded, "$")
	if len(f) != 5 || f[0] != "" {
		return nil, fmt.Errorf("%w: pbkdf2: want 4 fields", ErrMalformedHash)
	}
	h := &pbkdf2Hash{}
	var size int
	switch f[1] {
	case "pbkdf2":
		h.newHash, size = sha1.New, sha1.Size
	case "pbkdf2-sha256":
		h.newHash, size = sha256.New, sha256.Size
	case "pbkdf2-sha512":
		h.newHash, size = sha512.New, sha512.Size
	}
	rounds, ok := parseDecimal(f[2])
	if !ok || rounds < 1 || rounds > maxPBKDF2Rounds {
		return nil, fmt.Errorf("%w: pbkdf2: rounds not a canonical decimal in 1..%d", ErrMalformedHash, maxPBKDF2Rounds)
	}
	h.rounds = int(rounds)
	var err error
	if h.salt, err = decodeB64(f[3], ab64, '.', 0, maxPBKDF2SaltLen); err != nil {
		return nil, fmt.Errorf("pbkdf2 salt: %w", err)
	}
	if h.checksum, err = decodeB64(f[4], ab64, '.', size, size); err != nil {
		return nil, fmt.Errorf("pbkdf2 checksum: %w", err)
	}
	return h, nil
}

func (h *pbkdf2Hash) matches(password string) (bool, error) {
	return tryLegacy(password, func(pw string) (bool, error) {
		got, err := pbkdf2.Key(h.newHash, pw, h.salt, h.rounds, len(h.checksum))
		if err != nil {
			return false, fmt.Errorf("pbkdf2: %w", err)
		}
		return constantTimeEqual(got, h.checksum), nil
	})
}

func (*pbkdf2Hash) outdated(argonParams, uint32, uint32) bool { return true }

// tryLegacy runs try on password as given and, if that does not match and
// its NFKC form differs, on the NFKC form. The second try depends only on the
// submitted password, never on the account, so its cost tells nothing.
func tryLegacy(password string, try func(string) (bool, error)) (bool, error) {
	ok, err := try(password)
	if ok || err != nil {
		return ok, err
	}
	if n := normalize(password); n != password {
		return try(n)
	}
	return false, nil
}
