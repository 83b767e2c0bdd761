package domain

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"time"
)

// CodePurpose says what a one-time code proves.
type CodePurpose string

// The purposes of one-time codes.
const (
	CodePasswordReset     CodePurpose = "password_reset"
	CodeEmailVerification CodePurpose = "email_verification"
)

// CodeBytes is the entropy of a one-time code: 128 bits, so that it cannot
// be guessed within its few attempts, nor found from its stored digest.
const CodeBytes = 16

// MaxCodeAttempts is how many wrong codes a user may present for one code
// before it is void.
const MaxCodeAttempts = 5

// OneTimeCode is the stored half of a code sent to a user's address: only
// its SHA-256 is kept.
type OneTimeCode struct {
	UserID    UserID
	Purpose   CodePurpose
	Hash      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	Attempts  int // wrong codes presented so far
}

// NewOneTimeCode draws a code for user and purpose that lives ttl. It
// returns the code, which goes to the user once and is never stored, and
// the stored half.
func NewOneTimeCode(random io.Reader, user UserID, purpose CodePurpose, now time.Time, ttl time.Duration) (string, OneTimeCode, error) {
	var b [CodeBytes]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", OneTimeCode{}, fmt.Errorf("draw one-time code: %w", err)
	}
	code := base64.RawURLEncoding.EncodeToString(b[:])
	return code, OneTimeCode{
		UserID: user, Purpose: purpose, Hash: HashCode(code), CreatedAt: now, ExpiresAt: now.Add(ttl),
	}, nil
}

// HashCode returns the stored form of a code.
func HashCode(code string) []byte {
	sum := sha256.Sum256([]byte(code))
	return sum[:]
}

// Matches reports, in constant time, whether code is this code and it is
// still valid at now.
func (c OneTimeCode) Matches(code string, now time.Time) bool {
	return subtle.ConstantTimeCompare(c.Hash, HashCode(code)) == 1 && now.Before(c.ExpiresAt) && c.Attempts < MaxCodeAttempts
}

// CodeRepository stores one-time codes, at most one per user and purpose.
type CodeRepository interface {
	// SaveCode stores c, replacing the user's earlier code for the same
	// purpose. It returns CodeNotFound when the user does not exist or is
	// erased, and CodeUnavailable when the store is down.
	SaveCode(ctx context.Context, c OneTimeCode) error

	// Code returns the user's code for the purpose: CodeNotFound when
	// there is none, CodeUnavailable when the store is down.
	Code(ctx context.Context, user UserID, purpose CodePurpose) (OneTimeCode, error)

	// ConsumeCode deletes the user's code for the purpose if its hash is
	// hash, it is unexpired at now and has attempts left, in one
	// conditional step, and reports whether it did: of concurrent uses,
	// one succeeds. It returns CodeUnavailable when the store is down.
	ConsumeCode(ctx context.Context, user UserID, purpose CodePurpose, hash []byte, now time.Time) (bool, error)

	// CountFailedAttempt counts a wrong code presented for the user's code
	// for the purpose; a code with MaxCodeAttempts wrong attempts is void.
	// A missing code is not an error. It returns CodeUnavailable when the
	// store is down.
	CountFailedAttempt(ctx context.Context, user UserID, purpose CodePurpose) error
}
