package domain

import (
	"context"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// UserID identifies a user. It is a UUID in text form and becomes the sub
// claim of access tokens.
type UserID string

// Email is a syntactically valid, normalised e-mail address: the key users
// log in with. Two spellings that differ only in letter case are one address.
type Email string

// Limits on an e-mail address, from RFC 5321.
const (
	maxEmailLen      = 254
	maxEmailLocalLen = 64
)

// ParseEmail validates and normalises s. It returns a CodeInvalid error for
// field "email" when s is not a plain address such as "ada@example.com".
func ParseEmail(s string) (Email, error) {
	if !utf8.ValidString(s) {
		return "", Invalid("email", "email is not a valid address")
	}
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", Invalid("email", "email is required")
	}
	if len(s) > maxEmailLen {
		return "", Invalid("email", "email is not a valid address")
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return "", Invalid("email", "email is not a valid address")
	}
	local, domainPart, _ := strings.Cut(s, "@")
	if len(local) > maxEmailLocalLen || !strings.Contains(domainPart, ".") {
		return "", Invalid("email", "email is not a valid address")
	}
	return Email(s), nil
}

// String returns the address.
func (e Email) String() string { return string(e) }

// UserStatus says whether a user may log in.
type UserStatus string

// User statuses.
const (
	UserActive   UserStatus = "active"
	UserDisabled UserStatus = "disabled"
	// UserErased is the status of an erased account's tombstone, which
	// no lookup returns.
	UserErased UserStatus = "erased"
)

// User is an account. Its fields are unexported so that every change goes
// through a method that keeps it valid.
type User struct {
	id           UserID
	email        Email
	passwordHash string
	status       UserStatus
	createdAt    time.Time
	updatedAt    time.Time
	// passwordChangedAt is when the password was last set by its owner
	// (registration, change, reset); sessions opened before it end.
	passwordChangedAt time.Time
	// emailVerifiedAt is when the owner proved the address; zero if never.
	emailVerifiedAt time.Time
}

// NewUser returns a new active user. passwordHash is the encoded hash of the
// password (a PHC string), never the password itself.
func NewUser(id UserID, email Email, passwordHash string, now time.Time) (*User, error) {
	if id == "" {
		return nil, Errorf(CodeInternal, "new user: empty id")
	}
	if email == "" {
		return nil, Invalid("email", "email is required")
	}
	if passwordHash == "" {
		return nil, Errorf(CodeInternal, "new user: empty password hash")
	}
	return &User{
		id:                id,
		email:             email,
		passwordHash:      passwordHash,
		status:            UserActive,
		createdAt:         now,
		updatedAt:         now,
		passwordChangedAt: now,
	}, nil
}

// UserSnapshot is the stored form of a User, for storage adapters only.
type UserSnapshot struct {
	ID                UserID
	Email             Email
	PasswordHash      string
	Status            UserStatus
	CreatedAt         time.Time
	UpdatedAt         time.Time
	PasswordChangedAt time.Time
	EmailVerifiedAt   time.Time // zero: not verified
}

// RestoreUser rebuilds a User from its stored form.
func RestoreUser(s UserSnapshot) *User {
	return &User{
		id:                s.ID,
		email:             s.Email,
		passwordHash:      s.PasswordHash,
		status:            s.Status,
		createdAt:         s.CreatedAt,
		updatedAt:         s.UpdatedAt,
		passwordChangedAt: s.PasswordChangedAt,
		emailVerifiedAt:   s.EmailVerifiedAt,
	}
}

// Snapshot returns the stored form of u.
func (u *User) Snapshot() UserSnapshot {
	return UserSnapshot{
		ID:                u.id,
		Email:             u.email,
		PasswordHash:      u.passwordHash,
		Status:            u.status,
		CreatedAt:         u.createdAt,
		UpdatedAt:         u.updatedAt,
		PasswordChangedAt: u.passwordChangedAt,
		EmailVerifiedAt:   u.emailVerifiedAt,
	}
}

// ID returns the user's id.
func (u *User) ID() UserID { return u.id }

// Email returns the user's e-mail address.
func (u *User) Email() Email { return u.email }

// PasswordHash returns the encoded password hash.
func (u *User) PasswordHash() string { return u.passwordHash }

// Status returns the user's status.
func (u *User) Status() UserStatus { return u.status }

// CanLogIn reports whether the user may open sessions.
func (u *User) CanLogIn() bool { return u.status == UserActive }

// EmailVerified reports whether the owner proved the address.
func (u *User) EmailVerified() bool { return !u.emailVerifiedAt.IsZero() }

// PasswordChangedAt returns when the owner last set the password.
func (u *User) PasswordChangedAt() time.Time { return u.passwordChangedAt }

// SetPasswordHash replaces the password hash with another hash of the same
// password, e.g. after a rehash with stronger parameters.
func (u *User) SetPasswordHash(hash string, now time.Time) error {
	if hash == "" {
		return Errorf(CodeInternal, "set password hash: empty hash")
	}
	u.passwordHash = hash
	u.updatedAt = now
	return nil
}

// ChangePassword sets a new password, by its hash: sessions opened before
// now can no longer be refreshed.
func (u *User) ChangePassword(hash string, now time.Time) error {
	if err := u.SetPasswordHash(hash, now); err != nil {
		return err
	}
	u.passwordChangedAt = now
	return nil
}

// VerifyEmail records that the owner proved the address.
func (u *User) VerifyEmail(now time.Time) (changed bool) {
	if !u.emailVerifiedAt.IsZero() {
		return false
	}
	u.emailVerifiedAt = now
	u.updatedAt = now
	return true
}

// Disable stops the user from logging in.
func (u *User) Disable(now time.Time) {
	u.status = UserDisabled
	u.updatedAt = now
}

// Enable lets a disabled user log in again.
func (u *User) Enable(now time.Time) {
	u.status = UserActive
	u.updatedAt = now
}

// CanRefresh reports whether a session of the user that last proved the
// password at authenticatedAt may still be refreshed: the account is active
// and its password has not changed since.
func (u *User) CanRefresh(authenticatedAt time.Time) bool {
	return u.CanLogIn() && !u.passwordChangedAt.After(authenticatedAt)
}

// UserRepository stores users. PostgreSQL is the source of truth.
type UserRepository interface {
	// CreateUser stores a new user. It returns CodeConflict with the
	// message "email already registered" when the e-mail address is taken,
	// CodeConflict when the ID is, and CodeUnavailable when the store is
	// down.
	CreateUser(ctx context.Context, u *User) error

	// UserByEmail returns the user with the address. It returns
	// CodeNotFound when there is none and CodeUnavailable when the store is
	// down.
	UserByEmail(ctx context.Context, email Email) (*User, error)

	// UserByID returns the user with the id, as UserByEmail does. A
	// deleted user is not found.
	UserByID(ctx context.Context, id UserID) (*User, error)

	// EraseUser deletes the user's personal data and frees its e-mail
	// address: what is left is a tombstone with its id, its creation and
	// erasure times, for the audit trail, which no lookup finds. Its
	// sessions stay, revoked by the caller beforehand, so that their
	// revocation still counts. It returns CodeNotFound when there is no
	// such user (or it is erased already) and CodeUnavailable when the
	// store is down.
	EraseUser(ctx context.Context, id UserID, now time.Time) error

	// UpdateUser loads the user, locked against concurrent updates, passes it
	// to update, and saves it if update returns nil, all in one transaction:
	//
	//	err := users.UpdateUser(ctx, id, func(u *domain.User) error {
	//		return u.SetPasswordHash(newHash, now)
	//	})
	//
	// It returns CodeNotFound when there is no such user, update's error as
	// is, and CodeUnavailable when the store is down.
	UpdateUser(ctx context.Context, id UserID, update func(*User) error) error
}
