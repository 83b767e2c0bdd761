package domain

import "context"

// PasswordContext is what a PasswordPolicy knows of the account a password
// is for: the words a guesser who knows the account tries first. It grows a
// field when an account gains another such word, without touching callers.
type PasswordContext struct {
	// Email is the account's address, or "" when there is none.
	Email Email
}

// PasswordPolicy decides which passwords may be set.
type PasswordPolicy interface {
	// Check returns a CodeInvalid error for field "password" when password
	// may not be set: too short, too long, too common, too easy to guess, or
	// built from the account's own details in c. The message says which rule
	// failed and never repeats the password.
	Check(password string, c PasswordContext) error
}

// PasswordHasher hashes and verifies passwords. Implementations normalise
// the password the same way in both directions.
//
// Hashing is costly and bounded: every method may refuse, without hashing,
// a password that cannot be hashed before ctx's deadline, with
// CodeRateLimited (RetryAfter says when to come back) or
// CodeDeadlineExceeded, and with CodeUnavailable when ctx is cancelled
// while it waits. Verify and VerifyDummy are refused by one rule that does
// not depend on the account, so a refusal tells nothing about it.
type PasswordHasher interface {
	// Hash returns the encoded hash of password (a PHC string). Besides
	// the refusals above, it returns CodeInvalid for field "password" when
	// the password is longer than the hasher takes.
	Hash(ctx context.Context, password string) (string, error)

	// Verify reports whether password matches the encoded hash, in constant
	// time, and whether the hash should be replaced because it was made with
	// other parameters or another algorithm. Besides the refusals above, it
	// returns a CodeInternal error for an encoded hash it cannot read.
	Verify(ctx context.Context, password, encoded string) (match, rehash bool, err error)

	// VerifyDummy spends as long as Verify on a real hash and always fails.
	// Login calls it when the user does not exist, so that the reply time
	// does not tell whether an account exists. It returns only the refusals
	// above.
	VerifyDummy(ctx context.Context, password string) error

	// HashIfIdle hashes password only when that needs no waiting, and
	// reports whether it did; it never refuses. It is for work that may be
	// skipped, such as replacing an outdated hash at login. Its error is
	// Hash's CodeInvalid or CodeInternal.
	HashIfIdle(ctx context.Context, password string) (hash string, ok bool, err error)
}
