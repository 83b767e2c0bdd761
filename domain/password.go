package domain

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
type PasswordHasher interface {
	// Hash returns the encoded hash of password (a PHC string).
	Hash(password string) (string, error)

	// Verify reports whether password matches the encoded hash, in constant
	// time, and whether the hash should be replaced because it was made with
	// other parameters or another algorithm. It returns an error only for an
	// encoded hash it cannot read.
	Verify(password, encoded string) (match, rehash bool, err error)

	// VerifyDummy spends as long as Verify on a real hash and always fails.
	// Login calls it when the user does not exist, so that the reply time
	// does not tell whether an account exists.
	VerifyDummy(password string)
}
