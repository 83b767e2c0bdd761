package schemas

import (
	"errors"
	"time"

	"github.com/authworker/authworker/domain"
)

// Status mirrors the authworker.Status enum. Its value is the Avro symbol, so
// it prints as itself.
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

// statuses is the one table between wire statuses and the product's error
// codes: the worker maps codes to statuses with it, the auth_error header
// carries the code, and the SDK maps statuses back to codes.
var statuses = []struct {
	status Status
	code   domain.Code
}{
	{StatusOK, ""},
	{StatusInvalid, domain.CodeInvalid},
	{StatusUnauthorized, domain.CodeUnauthorized},
	{StatusConflict, domain.CodeConflict},
	{StatusNotFound, domain.CodeNotFound},
	{StatusRateLimited, domain.CodeRateLimited},
	{StatusUnavailable, domain.CodeUnavailable},
	{StatusDeadlineExceeded, domain.CodeDeadlineExceeded},
	{StatusInternal, domain.CodeInternal},
	// UNKNOWN is the enum's default: what a reader gets for a symbol newer
	// than its schema. It is never sent.
	{StatusUnknown, domain.CodeInternal},
}

// String returns the Avro symbol.
func (s Status) String() string { return string(s) }

// Valid reports whether s is one of the Status symbols.
func (s Status) Valid() bool {
	for _, e := range statuses {
		if e.status == s {
			return true
		}
	}
	return false
}

// Code returns the error code s stands for: "" for StatusOK, and
// domain.CodeInternal for UNKNOWN and for anything that is not a Status
// symbol.
func (s Status) Code() domain.Code {
	for _, e := range statuses {
		if e.status == s {
			return e.code
		}
	}
	return domain.CodeInternal
}

// StatusOf returns the Status that carries code: StatusOK for "", and
// StatusInternal for a code the wire does not know, so that a new code can
// never leak as an unknown symbol.
func StatusOf(code domain.Code) Status {
	for _, e := range statuses {
		if e.code == code {
			return e.status
		}
	}
	return StatusInternal
}

// Fixed wire messages of the statuses whose cause is the worker's business:
// which store is down, or what went wrong inside, is for the log only.
var fixedMessages = map[domain.Code]string{
	domain.CodeUnavailable:      "temporarily unavailable",
	domain.CodeDeadlineExceeded: "deadline exceeded",
	domain.CodeInternal:         "internal error",
}

// ErrorResponse returns the reply to a failed request: its status, and only
// the error's caller-safe parts (message, field and retry-after). The cause
// never reaches the wire, and UNAVAILABLE, DEADLINE_EXCEEDED and INTERNAL
// carry fixed messages.
func ErrorResponse(requestID string, err error) *Response {
	message, fixed := fixedMessages[domain.ErrorCode(err)]
	if !fixed {
		message = domain.ErrorMessage(err)
	}
	e := &Error{Message: message}
	if de, ok := errors.AsType[*domain.Error](err); ok {
		if de.Field != "" {
			e.Field = &de.Field
		}
		if de.RetryAfter > 0 {
			ms := de.RetryAfter.Milliseconds()
			e.RetryAfterMs = &ms
		}
	}
	return &Response{RequestID: requestID, Status: StatusOf(domain.ErrorCode(err)), Result: e}
}

// Err returns nil for an OK response and otherwise the *domain.Error it
// carries, so that callers branch with domain.ErrorCode as the worker does.
func (r *Response) Err() error {
	if r.Status == StatusOK {
		return nil
	}
	e := &domain.Error{Code: r.Status.Code()}
	if res, ok := r.Result.(*Error); ok {
		e.Message = res.Message
		if res.Field != nil {
			e.Field = *res.Field
		}
		if res.RetryAfterMs != nil {
			e.RetryAfter = time.Duration(*res.RetryAfterMs) * time.Millisecond
		}
	}
	return e
}
