package schemas

import (
	"fmt"
	"reflect"
	"time"

	"github.com/hamba/avro/v2"
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
	// Operation is what to do: *Register or *Login. It is never nil in a
	// decoded request.
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
// by *Register and *Login only.
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

func (*Register) isOperation() {}
func (*Login) isOperation()    {}

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

// Response mirrors authworker.AuthResponse: the reply to one request. Encode
// and decode it with a Codec: hamba cannot decode its union field on its own.
type Response struct {
	// RequestID is the RequestID of the request answered.
	RequestID string `avro:"requestId"`
	// Status is the outcome.
	Status Status `avro:"status"`
	// Result is *Error when Status is not StatusOK, and *RegisterResult or
	// *LoginResult when it is. The codec rejects any other combination.
	Result Result `avro:"result"`
}

// Result is a member of the AuthResponse result union. It is implemented by
// *Error, *RegisterResult and *LoginResult only.
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
// successful login.
type LoginResult struct {
	UserID                string    `avro:"userId"`
	SessionID             string    `avro:"sessionId"`
	AccessToken           string    `avro:"accessToken"`
	AccessTokenExpiresAt  time.Time `avro:"accessTokenExpiresAt"`
	RefreshToken          string    `avro:"refreshToken"`
	RefreshTokenExpiresAt time.Time `avro:"refreshTokenExpiresAt"`
}

func (*Error) isResult()          {}
func (*RegisterResult) isResult() {}
func (*LoginResult) isResult()    {}

// String describes r without its tokens, so that a logged response is safe.
func (r LoginResult) String() string {
	return fmt.Sprintf("LoginResult{UserID:%q SessionID:%q AccessToken:REDACTED AccessTokenExpiresAt:%s RefreshToken:REDACTED RefreshTokenExpiresAt:%s}",
		r.UserID, r.SessionID, r.AccessTokenExpiresAt.Format(time.RFC3339Nano), r.RefreshTokenExpiresAt.Format(time.RFC3339Nano))
}

// GoString is String, for %#v.
func (r LoginResult) GoString() string { return r.String() }

// Status mirrors the authworker.Status enum. Its value is the Avro symbol, so
// it prints as itself; Code and StatusFromCode map it to and from the
// product's lowercase error codes.
type Status string

// The Status symbols, in schema order.
const (
	StatusUnknown          Status = "UNKNOWN"
	StatusOK               Status = "OK"
	StatusInvalid          Status = "INVALID"
	StatusUnauthorized     Status = "UNAUTHORIZED"
	StatusConflict         Status = "CONFLICT"
	StatusNotFound         Status = "NOT_FOUND"
	StatusRateLimited      Status = "RATE_LIMITED"
	StatusUnavailable      Status = "UNAVAILABLE"
	StatusDeadlineExceeded Status = "DEADLINE_EXCEEDED"
	StatusInternal         Status = "INTERNAL"
)

// String returns the Avro symbol.
func (s Status) String() string { return string(s) }

// Code returns the lowercase code for s, such as "not_found", or "" when s is
// not a Status symbol.
func (s Status) Code() string {
	switch s {
	case StatusUnknown:
		return "unknown"
	case StatusOK:
		return "ok"
	case StatusInvalid:
		return "invalid"
	case StatusUnauthorized:
		return "unauthorized"
	case StatusConflict:
		return "conflict"
	case StatusNotFound:
		return "not_found"
	case StatusRateLimited:
		return "rate_limited"
	case StatusUnavailable:
		return "unavailable"
	case StatusDeadlineExceeded:
		return "deadline_exceeded"
	case StatusInternal:
		return "internal"
	default:
		return ""
	}
}

// Valid reports whether s is one of the Status symbols.
func (s Status) Valid() bool { return s.Code() != "" }

// StatusFromCode returns the Status for a lowercase code such as "conflict".
// It reports false for a code that is not one; a reply producer should then
// answer StatusInternal.
func StatusFromCode(code string) (Status, bool) {
	switch code {
	case "unknown":
		return StatusUnknown, true
	case "ok":
		return StatusOK, true
	case "invalid":
		return StatusInvalid, true
	case "unauthorized":
		return StatusUnauthorized, true
	case "conflict":
		return StatusConflict, true
	case "not_found":
		return StatusNotFound, true
	case "rate_limited":
		return StatusRateLimited, true
	case "unavailable":
		return StatusUnavailable, true
	case "deadline_exceeded":
		return StatusDeadlineExceeded, true
	case "internal":
		return StatusInternal, true
	default:
		return "", false
	}
}

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
	// Payload is *UserRegistered, *LoginSucceeded or *LoginFailed. It is
	// never nil in a decoded event.
	Payload Payload `avro:"payload"`
}

// Payload is a member of the AuthEvent payload union. It is implemented by
// *UserRegistered, *LoginSucceeded and *LoginFailed only.
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
// the account exists; never echo that distinction to end users.
type LoginFailed struct {
	Reason LoginFailureReason `avro:"reason"`
}

func (*UserRegistered) isPayload() {}
func (*LoginSucceeded) isPayload() {}
func (*LoginFailed) isPayload()    {}

// LoginFailureReason mirrors the authworker.LoginFailureReason enum; its value
// is the Avro symbol.
type LoginFailureReason string

// The LoginFailureReason symbols, in schema order.
const (
	LoginFailureUnknown        LoginFailureReason = "UNKNOWN"
	LoginFailureBadCredentials LoginFailureReason = "BAD_CREDENTIALS"
	LoginFailureLocked         LoginFailureReason = "LOCKED"
	LoginFailureDisabled       LoginFailureReason = "DISABLED"
)

// String returns the Avro symbol.
func (r LoginFailureReason) String() string { return string(r) }

// Valid reports whether r is one of the LoginFailureReason symbols.
func (r LoginFailureReason) Valid() bool {
	switch r {
	case LoginFailureUnknown, LoginFailureBadCredentials, LoginFailureLocked, LoginFailureDisabled:
		return true
	default:
		return false
	}
}

// The wire types differ from the public ones only in their union fields:
// hamba decodes a union into an empty interface but not into a non-empty one
// such as Operation ("unsupported for Avro union"), so the codec decodes into
// these and converts the member with toOperation, toResult or toPayload.
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

// registerUnionTypes registers the Go type of every record in the envelope
// unions with api.
//
// Each record is registered twice under its name: the pointer type first, so
// that encoding finds the name of the *Login held in a union field, then the
// value type, which hamba keeps as the type to decode that name into (the
// last registration of a name wins). Decoding into a pointer type is unsafe
// in hamba: it decodes through a scratch allocation of the record's own size
// that it then uses as a pointer slot, which overwrites memory for a record
// smaller than a pointer (a record with no fields writes into the runtime's
// shared zero-size object) and hides the record from the garbage collector
// when the struct's first word is not a pointer. The to* functions turn the
// decoded value into the pointer the public types hold.
func registerUnionTypes(api avro.API) {
	types := map[string]any{
		"authworker.Register":       Register{},
		"authworker.Login":          Login{},
		"authworker.Error":          Error{},
		"authworker.RegisterResult": RegisterResult{},
		"authworker.LoginResult":    LoginResult{},
		"authworker.UserRegistered": UserRegistered{},
		"authworker.LoginSucceeded": LoginSucceeded{},
		"authworker.LoginFailed":    LoginFailed{},
	}
	for name, v := range types {
		api.Register(name, reflect.New(reflect.TypeOf(v)).Interface())
		api.Register(name, v)
	}
}

// toOperation returns a pointer to the decoded operation record v, or nil if
// v is not one.
func toOperation(v any) Operation {
	switch v := v.(type) {
	case Register:
		return &v
	case Login:
		return &v
	default:
		return nil
	}
}

// toResult returns a pointer to the decoded result record v, or nil if v is
// not one.
func toResult(v any) Result {
	switch v := v.(type) {
	case Error:
		return &v
	case RegisterResult:
		return &v
	case LoginResult:
		return &v
	default:
		return nil
	}
}

// toPayload returns a pointer to the decoded payload record v, or nil if v is
// not one.
func toPayload(v any) Payload {
	switch v := v.(type) {
	case UserRegistered:
		return &v
	case LoginSucceeded:
		return &v
	case LoginFailed:
		return &v
	default:
		return nil
	}
}

// checkOperation reports why op cannot be sent, or "" when it can.
func checkOperation(op Operation) string {
	switch op := op.(type) {
	case nil:
		return "operation is nil"
	case *Register:
		if op == nil {
			return "operation is a nil *Register"
		}
	case *Login:
		if op == nil {
			return "operation is a nil *Login"
		}
	default:
		return fmt.Sprintf("operation has unknown type %T", op)
	}
	return ""
}

// checkResponse reports why a status and result do not belong together, or
// "" when they do: the schema promises an Error result for anything but OK.
func checkResponse(status Status, result Result) string {
	if !status.Valid() {
		return fmt.Sprintf("status %q is not a Status symbol", string(status))
	}
	switch r := result.(type) {
	case nil:
		return "result is nil"
	case *Error:
		if r == nil {
			return "result is a nil *Error"
		}
		if status == StatusOK {
			return "status OK with an Error result"
		}
	case *RegisterResult:
		if r == nil {
			return "result is a nil *RegisterResult"
		}
		if status != StatusOK {
			return "status " + string(status) + " without an Error result"
		}
	case *LoginResult:
		if r == nil {
			return "result is a nil *LoginResult"
		}
		if status != StatusOK {
			return "status " + string(status) + " without an Error result"
		}
	default:
		return fmt.Sprintf("result has unknown type %T", r)
	}
	return ""
}

// checkPayload reports why p cannot be sent, or "" when it can.
func checkPayload(p Payload) string {
	switch p := p.(type) {
	case nil:
		return "payload is nil"
	case *UserRegistered:
		if p == nil {
			return "payload is a nil *UserRegistered"
		}
	case *LoginSucceeded:
		if p == nil {
			return "payload is a nil *LoginSucceeded"
		}
	case *LoginFailed:
		if p == nil {
			return "payload is a nil *LoginFailed"
		}
		if !p.Reason.Valid() {
			return fmt.Sprintf("login failure reason %q is not a LoginFailureReason symbol", string(p.Reason))
		}
	default:
		return fmt.Sprintf("payload has unknown type %T", p)
	}
	return ""
}
