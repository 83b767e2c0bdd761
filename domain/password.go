package domain

// PasswordPolicy decides which passwords may be set.
type PasswordPolicy interface {
	// Check returns a CodeInvalid error for field "password" when password
	// may not be set: too short, too long, or too common. The message says
	// which rule failed and never repeats the password.
	Check(password string) error
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
