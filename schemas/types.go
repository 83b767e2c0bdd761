package schemas

import (
	"fmt"
	"time"
)

// Request mirrors authworker.AuthRequest: one request to the worker, keyed on
// auth.request by the subject's e-mail address. Encode and decode it with a
// Codec: hamba cannot decode its union field on its own.
type Request struct {
	// RequestID is the caller's idempotency key.
	RequestID string `avro:"requestId"`
	// Deadline is when the caller stops waiting; nil means no deadline.
	Deadline *time.Time `avro:"deadline"`
	// Client says who is asking.
	Client ClientMetadata `avro:"client"`
	// Operation is what to do: one of the records of the operation union
	// (*Register, *Login, *Refresh, ...; Operations lists them). It is never
	// nil in a decoded request.
	Operation Operation `avro:"operation"`
}

// ClientMetadata mirrors authworker.ClientMetadata: the calling service and
// the end user it acts for.
type ClientMetadata struct {
	// ClientID names the calling service.
	ClientID string `avro:"clientId"`
	// IP is the end user's address, if known.
	IP *string `avro:"ip"`
	// UserAgent is the end user's user agent, if known.
	UserAgent *string `avro:"userAgent"`
}

// Operation is a member of the AuthRequest operation union. It is implemented
// by pointers to the operation records of this package only.
type Operation interface {
	isOperation()
}

// Register mirrors authworker.Register: create an account.
type Register struct {
	Email    string `avro:"email"`
	Password string `avro:"password"`
}

// Login mirrors authworker.Login: check credentials and open a session.
type Login struct {
	Email    string `avro:"email"`
	Password string `avro:"password"`
}

// Refresh mirrors authworker.Refresh: rotate a refresh token. Answered with
// a LoginResult.
type Refresh struct {
	RefreshToken string `avro:"refreshToken"`
}

// Logout mirrors authworker.Logout: end the one session that either token
// names. Answered with Done.
type Logout struct {
	RefreshToken *string `avro:"refreshToken"`
	AccessToken  *string `avro:"accessToken"`
}

// LogoutAll mirrors authworker.LogoutAll: end every session of the access
// token's user. Answered with Done.
type LogoutAll struct {
	AccessToken string `avro:"accessToken"`
}

// Introspect mirrors authworker.Introspect: RFC 7662 token introspection.
// Answered with an IntrospectResult.
type Introspect struct {
	Token string `avro:"token"`
	// TokenTypeHint is RFC 7662's token_type_hint: "access_token" or
	// "refresh_token".
	TokenTypeHint *string `avro:"tokenTypeHint"`
}

// ChangePassword mirrors authworker.ChangePassword. Answered with Done.
type ChangePassword struct {
	AccessToken     string `avro:"accessToken"`
	CurrentPassword string `avro:"currentPassword"`
	NewPassword     string `avro:"newPassword"`
}

// RequestPasswordReset mirrors authworker.RequestPasswordReset: mail a reset
// code if the address has an account. Always answered with Done.
type RequestPasswordReset struct {
	Email string `avro:"email"`
}

// ResetPassword mirrors authworker.ResetPassword: set a new password with a
// mailed code. Answered with Done.
type ResetPassword struct {
	Email       string `avro:"email"`
	Code        string `avro:"code"`
	NewPassword string `avro:"newPassword"`
}

// RequestEmailVerification mirrors authworker.RequestEmailVerification: mail
// a verification code if the address has an account. Always answered with
// Done.
type RequestEmailVerification struct {
	Email string `avro:"email"`
}

// VerifyEmail mirrors authworker.VerifyEmail: mark the address verified with
// a mailed code. Answered with Done.
type VerifyEmail struct {
	Email string `avro:"email"`
	Code  string `avro:"code"`
}

// DisableUser mirrors authworker.DisableUser, an administration operation
// allowed to configured admin clients only. Answered with Done.
type DisableUser struct {
	UserID string `avro:"userId"`
}

// EnableUser mirrors authworker.EnableUser, an administration operation
// allowed to configured admin clients only. Answered with Done.
type EnableUser struct {
	UserID string `avro:"userId"`
}

// UnlockUser mirrors authworker.UnlockUser, an administration operation
// allowed to configured admin clients only. Answered with Done.
type UnlockUser struct {
	UserID string `avro:"userId"`
}

// DeleteUser mirrors authworker.DeleteUser, an administration operation
// allowed to configured admin clients only. Answered with Done.
type DeleteUser struct {
	UserID string `avro:"userId"`
}

func (*Register) isOperation()                 {}
func (*Login) isOperation()                    {}
func (*Refresh) isOperation()                  {}
func (*Logout) isOperation()                   {}
func (*LogoutAll) isOperation()                {}
func (*Introspect) isOperation()               {}
func (*ChangePassword) isOperation()           {}
func (*RequestPasswordReset) isOperation()     {}
func (*ResetPassword) isOperation()            {}
func (*RequestEmailVerification) isOperation() {}
func (*VerifyEmail) isOperation()              {}
func (*DisableUser) isOperation()              {}
func (*EnableUser) isOperation()               {}
func (*UnlockUser) isOperation()               {}
func (*DeleteUser) isOperation()               {}

// String describes r without its password, so that a logged request is safe.
func (r Register) String() string {
	return fmt.Sprintf("Register{Email:%q Password:REDACTED}", r.Email)
}

// GoString is String, for %#v.
func (r Register) GoString() string { return r.String() }

// String describes l without its password, so that a logged request is safe.
func (l Login) String() string { return fmt.Sprintf("Login{Email:%q Password:REDACTED}", l.Email) }

// GoString is String, for %#v.
func (l Login) GoString() string { return l.String() }

// String describes r without its token, so that a logged request is safe.
func (r Refresh) String() string { return "Refresh{RefreshToken:REDACTED}" }

// GoString is String, for %#v.
func (r Refresh) GoString() string { return r.String() }

// String tells which token names the session, never the token.
func (l Logout) String() string {
	return fmt.Sprintf("Logout{RefreshToken:%s AccessToken:%s}", redactedOrNil(l.RefreshToken), redactedOrNil(l.AccessToken))
}

// GoString is String, for %#v.
func (l Logout) GoString() string { return l.String() }

// String describes l without its token, so that a logged request is safe.
func (l LogoutAll) String() string { return "LogoutAll{AccessToken:REDACTED}" }

// GoString is String, for %#v.
func (l LogoutAll) GoString() string { return l.String() }

// String describes i without its token, so that a logged request is safe.
func (i Introspect) String() string {
	return fmt.Sprintf("Introspect{Token:REDACTED TokenTypeHint:%s}", quotedOrNil(i.TokenTypeHint))
}

// GoString is String, for %#v.
func (i Introspect) GoString() string { return i.String() }

// String describes c without its token and passwords, so that a logged
// request is safe.
func (c ChangePassword) String() string {
	return "ChangePassword{AccessToken:REDACTED CurrentPassword:REDACTED NewPassword:REDACTED}"
}

// GoString is String, for %#v.
func (c ChangePassword) GoString() string { return c.String() }

// String describes r without its code and password, so that a logged
// request is safe.
func (r ResetPassword) String() string {
	return fmt.Sprintf("ResetPassword{Email:%q Code:REDACTED NewPassword:REDACTED}", r.Email)
}

// GoString is String, for %#v.
func (r ResetPassword) GoString() string { return r.String() }

// String describes v without its code, so that a logged request is safe.
func (v VerifyEmail) String() string {
	return fmt.Sprintf("VerifyEmail{Email:%q Code:REDACTED}", v.Email)
}

// GoString is String, for %#v.
func (v VerifyEmail) GoString() string { return v.String() }

// Response mirrors authworker.AuthResponse: the reply to one request. Encode
// and decode it with a Codec: hamba cannot decode its union field on its own.
type Response struct {
	// RequestID is the RequestID of the request answered.
	RequestID string `avro:"requestId"`
	// Status is the outcome.
	Status Status `avro:"status"`
	// Result is *Error when Status is not StatusOK, and any other record of
	// the result union (*RegisterResult, *LoginResult, *IntrospectResult or
	// *Done) when it is. The codec rejects any other combination.
	Result Result `avro:"result"`
}

// Result is a member of the AuthResponse result union. It is implemented by
// *Error, *RegisterResult, *LoginResult, *IntrospectResult and *Done only.
type Result interface {
	isResult()
}

// Error mirrors authworker.Error: why a request failed, safe to show to an
// operator.
type Error struct {
	Message string `avro:"message"`
	// Field is the request field at fault, for StatusInvalid.
	Field *string `avro:"field"`
	// RetryAfterMs is, for StatusRateLimited and StatusUnavailable, how many
	// milliseconds to wait before a retry may succeed.
	RetryAfterMs *int64 `avro:"retryAfterMs"`
}

// RegisterResult mirrors authworker.RegisterResult.
type RegisterResult struct {
	UserID string `avro:"userId"`
}

// LoginResult mirrors authworker.LoginResult: the session and tokens of a
// successful Login or Refresh.
type LoginResult struct {
	UserID                string    `avro:"userId"`
	SessionID             string    `avro:"sessionId"`
	AccessToken           string    `avro:"accessToken"`
	AccessTokenExpiresAt  time.Time `avro:"accessTokenExpiresAt"`
	RefreshToken          string    `avro:"refreshToken"`
	RefreshTokenExpiresAt time.Time `avro:"refreshTokenExpiresAt"`
}

// IntrospectResult mirrors authworker.IntrospectResult: the answer to
// Introspect, with RFC 7662 semantics. When Active is false every other
// field is nil; the codec refuses anything else, so that an inactive token
// tells nothing of what it held.
type IntrospectResult struct {
	Active bool `avro:"active"`
	// TokenType is "access_token" or "refresh_token".
	TokenType *string `avro:"tokenType"`
	// Sub is the user id.
	Sub *string `avro:"sub"`
	// Sid is the session id.
	Sid *string `avro:"sid"`
	// ClientID is the client the token was issued to.
	ClientID *string `avro:"clientId"`
	Iss      *string `avro:"iss"`
	// Aud is nil for null; an empty audience is an empty slice.
	Aud []string   `avro:"aud"`
	Exp *time.Time `avro:"exp"`
	Iat *time.Time `avro:"iat"`
	Jti *string    `avro:"jti"`
	// EmailVerified tells whether the user has verified their address.
	EmailVerified *bool `avro:"emailVerified"`
}

// Done mirrors authworker.Done: the request was carried out or, for
// RequestPasswordReset and RequestEmailVerification, accepted, with nothing
// to return.
type Done struct{}

func (*Error) isResult()            {}
func (*RegisterResult) isResult()   {}
func (*LoginResult) isResult()      {}
func (*IntrospectResult) isResult() {}
func (*Done) isResult()             {}

// String describes r without its tokens, so that a logged response is safe.
func (r LoginResult) String() string {
	return fmt.Sprintf("LoginResult{UserID:%q SessionID:%q AccessToken:REDACTED AccessTokenExpiresAt:%s RefreshToken:REDACTED RefreshTokenExpiresAt:%s}",
		r.UserID, r.SessionID, r.AccessTokenExpiresAt.Format(time.RFC3339Nano), r.RefreshTokenExpiresAt.Format(time.RFC3339Nano))
}

// GoString is String, for %#v.
func (r LoginResult) GoString() string { return r.String() }

// Event mirrors authworker.AuthEvent: a domain event on auth.events. Events
// never carry passwords, tokens or codes. Encode and decode it with a
// Codec: hamba cannot decode its union field on its own.
type Event struct {
	// EventID is unique per event; consumers deduplicate on it.
	EventID string `avro:"eventId"`
	// OccurredAt has millisecond precision on the wire and decodes as UTC.
	OccurredAt time.Time `avro:"occurredAt"`
	RequestID  *string   `avro:"requestId"`
	UserID     *string   `avro:"userId"`
	ClientID   *string   `avro:"clientId"`
	IP         *string   `avro:"ip"`
	// Payload is one of the records of the payload union (*UserRegistered,
	// *LoginFailed, *SessionRevoked, ...). It is never nil in a decoded
	// event.
	Payload Payload `avro:"payload"`
}

// Payload is a member of the AuthEvent payload union. It is implemented by
// pointers to the payload records of this package only.
type Payload interface {
	isPayload()
}

// UserRegistered mirrors authworker.UserRegistered.
type UserRegistered struct {
	Email string `avro:"email"`
}

// LoginSucceeded mirrors authworker.LoginSucceeded.
type LoginSucceeded struct {
	SessionID string `avro:"sessionId"`
}

// LoginFailed mirrors authworker.LoginFailed. Event.UserID is set only when
// the account exists (it is nil for LoginFailureUnknownAccount); never echo
// that distinction, nor LoginFailureEmailNotVerified, which tells that the
// password was right, to end users.
type LoginFailed struct {
	Reason LoginFailureReason `avro:"reason"`
}

// AccountLocked mirrors authworker.AccountLocked: failed logins locked the
// account, for the sources Scope says.
type AccountLocked struct {
	Scope LockScope `avro:"scope"`
}

// AccountUnlocked mirrors authworker.AccountUnlocked: an operator, or a
// completed password reset, cleared the account's locks.
type AccountUnlocked struct{}

// SessionRefreshed mirrors authworker.SessionRefreshed: a refresh token was
// spent and the session's tokens rotated.
type SessionRefreshed struct {
	SessionID string `avro:"sessionId"`
}

// SessionRevoked mirrors authworker.SessionRevoked: a session ended before
// it expired. Each revoked session gets an event of its own.
type SessionRevoked struct {
	SessionID string           `avro:"sessionId"`
	Reason    RevocationReason `avro:"reason"`
}

// RefreshTokenReuseDetected mirrors authworker.RefreshTokenReuseDetected: a
// spent refresh token was presented again. The session is revoked, and a
// SessionRevoked with RevocationRefreshTokenReuse follows.
type RefreshTokenReuseDetected struct {
	SessionID string `avro:"sessionId"`
}

// PasswordChanged mirrors authworker.PasswordChanged: the user changed their
// password, giving the current one.
type PasswordChanged struct{}

// PasswordResetRequested mirrors authworker.PasswordResetRequested: a reset
// code was mailed to the account's address.
type PasswordResetRequested struct{}

// PasswordReset mirrors authworker.PasswordReset: the password was set anew
// with a mailed code.
type PasswordReset struct{}

// EmailVerificationRequested mirrors authworker.EmailVerificationRequested:
// a verification code was mailed to the account's address.
type EmailVerificationRequested struct{}

// EmailVerified mirrors authworker.EmailVerified: the account's address was
// verified with a mailed code.
type EmailVerified struct{}

// AccountDisabled mirrors authworker.AccountDisabled: an operator disabled
// the account.
type AccountDisabled struct{}

// AccountEnabled mirrors authworker.AccountEnabled: an operator enabled the
// account again.
type AccountEnabled struct{}

// AccountDeleted mirrors authworker.AccountDeleted: the account's personal
// data was erased. Downstream stores must erase what they hold for
// Event.UserID; no later event names the erased data.
type AccountDeleted struct{}

// SigningKeyRotated mirrors authworker.SigningKeyRotated: a new signing key
// joined the JWKS. Event.UserID is nil. Verifiers may refresh their JWKS
// early, so that they hold the key before the first token it signs.
type SigningKeyRotated struct {
	// Kid is the key's id, the kid of its JWK and of the tokens it signs.
	Kid string `avro:"kid"`
	// Algorithm is the JWS alg it signs with, such as "EdDSA".
	Algorithm string `avro:"algorithm"`
	// SignsFrom is when it starts signing. It has millisecond precision on
	// the wire and decodes as UTC.
	SignsFrom time.Time `avro:"signsFrom"`
}

func (*UserRegistered) isPayload()             {}
func (*LoginSucceeded) isPayload()             {}
func (*LoginFailed) isPayload()                {}
func (*AccountLocked) isPayload()              {}
func (*AccountUnlocked) isPayload()            {}
func (*SessionRefreshed) isPayload()           {}
func (*SessionRevoked) isPayload()             {}
func (*RefreshTokenReuseDetected) isPayload()  {}
func (*PasswordChanged) isPayload()            {}
func (*PasswordResetRequested) isPayload()     {}
func (*PasswordReset) isPayload()              {}
func (*EmailVerificationRequested) isPayload() {}
func (*EmailVerified) isPayload()              {}
func (*AccountDisabled) isPayload()            {}
func (*AccountEnabled) isPayload()             {}
func (*AccountDeleted) isPayload()             {}
func (*SigningKeyRotated) isPayload()          {}

// LoginFailureReason mirrors the authworker.LoginFailureReason enum; its value
// is the Avro symbol.
type LoginFailureReason string

// The LoginFailureReason symbols, in schema order.
const (
	LoginFailureUnknown        LoginFailureReason = "UNKNOWN"
	LoginFailureBadCredentials LoginFailureReason = "BAD_CREDENTIALS"
	LoginFailureLocked         LoginFailureReason = "LOCKED"
	LoginFailureDisabled       LoginFailureReason = "DISABLED"
	// LoginFailureUnknownAccount: no account has the address given; the
	// event's UserID is nil.
	LoginFailureUnknownAccount LoginFailureReason = "UNKNOWN_ACCOUNT"
	// LoginFailureEmailNotVerified: the password was right, but the address
	// is not verified and the deployment requires it to be.
	LoginFailureEmailNotVerified LoginFailureReason = "EMAIL_NOT_VERIFIED"
)

// String returns the Avro symbol.
func (r LoginFailureReason) String() string { return string(r) }

// Valid reports whether r is one of the LoginFailureReason symbols.
func (r LoginFailureReason) Valid() bool {
	switch r {
	case LoginFailureUnknown, LoginFailureBadCredentials, LoginFailureLocked, LoginFailureDisabled,
		LoginFailureUnknownAccount, LoginFailureEmailNotVerified:
		return true
	default:
		return false
	}
}

// LockScope mirrors the authworker.LockScope enum, which sources a lock
// keeps out; its value is the Avro symbol.
type LockScope string

// The LockScope symbols, in schema order.
const (
	LockScopeUnknown LockScope = "UNKNOWN"
	// LockScopeUnfamiliarSources: sources the account never logged in from
	// are locked out.
	LockScopeUnfamiliarSources LockScope = "UNFAMILIAR_SOURCES"
	// LockScopeSource: one source is locked out.
	LockScopeSource LockScope = "SOURCE"
	// LockScopeAll: the account reached the ceiling of consecutive failures
	// (NIST SP 800-63B: 100) and takes no attempts from any source.
	LockScopeAll LockScope = "ALL"
)

// Valid reports whether s is one of the LockScope symbols.
func (s LockScope) Valid() bool {
	switch s {
	case LockScopeUnknown, LockScopeUnfamiliarSources, LockScopeSource, LockScopeAll:
		return true
	default:
		return false
	}
}

// RevocationReason mirrors the authworker.RevocationReason enum, why a
// session ended; its value is the Avro symbol.
type RevocationReason string

// The RevocationReason symbols, in schema order.
const (
	RevocationUnknown           RevocationReason = "UNKNOWN"
	RevocationLogout            RevocationReason = "LOGOUT"
	RevocationLogoutAll         RevocationReason = "LOGOUT_ALL"
	RevocationRefreshTokenReuse RevocationReason = "REFRESH_TOKEN_REUSE"
	RevocationPasswordChanged   RevocationReason = "PASSWORD_CHANGED"
	RevocationPasswordReset     RevocationReason = "PASSWORD_RESET"
	RevocationAccountDisabled   RevocationReason = "ACCOUNT_DISABLED"
	RevocationAccountDeleted    RevocationReason = "ACCOUNT_DELETED"
)

// Valid reports whether r is one of the RevocationReason symbols.
func (r RevocationReason) Valid() bool {
	switch r {
	case RevocationUnknown, RevocationLogout, RevocationLogoutAll, RevocationRefreshTokenReuse,
		RevocationPasswordChanged, RevocationPasswordReset, RevocationAccountDisabled, RevocationAccountDeleted:
		return true
	default:
		return false
	}
}

// Notification mirrors authworker.AuthNotification: something to tell a user
// by e-mail, on auth.notifications keyed by user id, for a mailer. It may
// carry a one-time code, so it never goes on auth.events, and String redacts
// the code.
type Notification struct {
	// NotificationID is unique per notification; consumers deduplicate on
	// it.
	NotificationID string `avro:"notificationId"`
	// OccurredAt has millisecond precision on the wire and decodes as UTC.
	OccurredAt time.Time `avro:"occurredAt"`
	UserID     string    `avro:"userId"`
	// Email is the address to write to.
	Email string `avro:"email"`
	// ClientID is the service the request came through, if any.
	ClientID *string          `avro:"clientId"`
	Kind     NotificationKind `avro:"kind"`
	// Code is, for NotificationPasswordReset and
	// NotificationEmailVerification, the one-time code to put in the mail.
	// Never log it.
	Code *string `avro:"code"`
	// ExpiresAt is when Code stops working; nil when there is no code.
	ExpiresAt *time.Time `avro:"expiresAt"`
}

// String describes n without its code, so that a logged notification is
// safe.
func (n Notification) String() string {
	return fmt.Sprintf("Notification{NotificationID:%q OccurredAt:%s UserID:%q Email:%q ClientID:%s Kind:%s Code:%s ExpiresAt:%s}",
		n.NotificationID, n.OccurredAt.Format(time.RFC3339Nano), n.UserID, n.Email, quotedOrNil(n.ClientID), n.Kind,
		redactedOrNil(n.Code), timeOrNil(n.ExpiresAt))
}

// GoString is String, for %#v.
func (n Notification) GoString() string { return n.String() }

// NotificationKind mirrors the authworker.NotificationKind enum; its value is
// the Avro symbol.
type NotificationKind string

// The NotificationKind symbols, in schema order.
const (
	NotificationUnknown             NotificationKind = "UNKNOWN"
	NotificationPasswordReset       NotificationKind = "PASSWORD_RESET"
	NotificationEmailVerification   NotificationKind = "EMAIL_VERIFICATION"
	NotificationRegistrationAttempt NotificationKind = "REGISTRATION_ATTEMPT"
	NotificationPasswordChanged     NotificationKind = "PASSWORD_CHANGED"
)

// String returns the Avro symbol.
func (k NotificationKind) String() string { return string(k) }

// Valid reports whether k is one of the NotificationKind symbols.
func (k NotificationKind) Valid() bool {
	switch k {
	case NotificationUnknown, NotificationPasswordReset, NotificationEmailVerification,
		NotificationRegistrationAttempt, NotificationPasswordChanged:
		return true
	default:
		return false
	}
}

// redactedOrNil prints an optional secret: whether it is set, never what it
// is.
func redactedOrNil(p *string) string {
	if p == nil {
		return "nil"
	}
	return "REDACTED"
}

func quotedOrNil(p *string) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprintf("%q", *p)
}

func timeOrNil(p *time.Time) string {
	if p == nil {
		return "nil"
	}
	return p.Format(time.RFC3339Nano)
}

// The wire types differ from the public ones only in their union fields:
// hamba decodes a union into an empty interface but not into a non-empty one
// such as Operation ("unsupported for Avro union"), so the codec decodes into
// these and converts the member with to.
type wireRequest struct {
	RequestID string         `avro:"requestId"`
	Deadline  *time.Time     `avro:"deadline"`
	Client    ClientMetadata `avro:"client"`
	Operation any            `avro:"operation"`
}

type wireResponse struct {
	RequestID string `avro:"requestId"`
	Status    Status `avro:"status"`
	Result    any    `avro:"result"`
}

type wireEvent struct {
	EventID    string    `avro:"eventId"`
	OccurredAt time.Time `avro:"occurredAt"`
	RequestID  *string   `avro:"requestId"`
	UserID     *string   `avro:"userId"`
	ClientID   *string   `avro:"clientId"`
	IP         *string   `avro:"ip"`
	Payload    any       `avro:"payload"`
}
