package domain

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an error for the caller. Every reply carries one, and the
// reply producer maps it to the wire status.
type Code string

// Error codes. They are part of the wire contract: never rename one.
const (
	CodeInvalid          Code = "invalid"           // the request is malformed or breaks a rule
	CodeUnauthorized     Code = "unauthorized"      // credentials or token rejected
	CodeConflict         Code = "conflict"          // the state forbids it, e.g. e-mail taken
	CodeNotFound         Code = "not_found"         // the thing asked for does not exist
	CodeRateLimited      Code = "rate_limited"      // too many attempts; retry later
	CodeUnavailable      Code = "unavailable"       // a store is down; retry later
	CodeDeadlineExceeded Code = "deadline_exceeded" // the caller's deadline passed first
	CodeInternal         Code = "internal"          // a bug or an unexpected failure
)

// Error is the one error type of authworker. Message is safe to send to the
// caller: it never holds a secret and never tells whether an account exists.
// Err, the cause, is for logs only.
type Error struct {
	Code       Code
	Message    string
	Field      string        // the request field at fault, for CodeInvalid
	RetryAfter time.Duration // for CodeRateLimited and CodeUnavailable, when known
	Err        error
}

// Errorf returns an Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a CodeInvalid error naming the request field at fault.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Unavailable wraps the failure of a store or broker: the request may succeed
// if retried later. Adapters use it to translate driver errors.
func Unavailable(what string, err error) *Error {
	return &Error{Code: CodeUnavailable, Message: what + " unavailable", Err: err}
}

// Error implements error. It includes the cause, so it is for logs; replies
// use Message.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the code of the first *Error in err's chain,
// CodeInternal for any other error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the caller-safe message of err: the Message of the
// first *Error in its chain, or a generic text for anything else, so that an
// unexpected error never leaks details over the wire.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok && e.Message != "" {
		return e.Message
	}
	return "internal error"
}
