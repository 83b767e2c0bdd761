package domain

import (
	"context"
	"time"
)

// NotificationKind says what a notification tells its user.
type NotificationKind string

// The kinds of notification.
const (
	// NotifyPasswordReset carries a code that lets the owner set a new
	// password.
	NotifyPasswordReset NotificationKind = "PASSWORD_RESET"
	// NotifyEmailVerification carries a code that proves the address.
	NotifyEmailVerification NotificationKind = "EMAIL_VERIFICATION"
	// NotifyRegistrationAttempt tells the owner someone tried to register
	// their address (registration itself does not reveal it).
	NotifyRegistrationAttempt NotificationKind = "REGISTRATION_ATTEMPT"
	// NotifyPasswordChanged tells the owner their password changed.
	NotifyPasswordChanged NotificationKind = "PASSWORD_CHANGED"
)

// Notification is a message for a user's address, handed to a mailer.
type Notification struct {
	ID         string // unique; the mailer deduplicates on it
	Kind       NotificationKind
	UserID     UserID
	Email      Email
	ClientID   string // the service the request came through
	Code       string // for a password reset or an address verification
	ExpiresAt  time.Time
	OccurredAt time.Time
}

// Notifier publishes notifications once the unit of work that decided them
// commits, and never if it rolls back.
type Notifier interface {
	// Notify records n in the transaction ctx carries. It returns
	// CodeUnavailable when the store is down.
	Notify(ctx context.Context, n Notification) error
}
