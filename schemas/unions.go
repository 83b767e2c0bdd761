package schemas

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/hamba/avro/v2"
)

// member is one record of an envelope union: its Avro full name and its Go
// type, as a zero value.
type member struct {
	name   string
	record any
}

// The records of each envelope union. A record added to a union in a schema
// gets its Go type in types.go and a line here; nothing else changes.
var (
	operationMembers = []member{
		{"authworker.Register", Register{}},
		{"authworker.Login", Login{}},
		{"authworker.Refresh", Refresh{}},
		{"authworker.Logout", Logout{}},
		{"authworker.LogoutAll", LogoutAll{}},
		{"authworker.Introspect", Introspect{}},
		{"authworker.ChangePassword", ChangePassword{}},
		{"authworker.RequestPasswordReset", RequestPasswordReset{}},
		{"authworker.ResetPassword", ResetPassword{}},
		{"authworker.RequestEmailVerification", RequestEmailVerification{}},
		{"authworker.VerifyEmail", VerifyEmail{}},
		{"authworker.DisableUser", DisableUser{}},
		{"authworker.EnableUser", EnableUser{}},
		{"authworker.UnlockUser", UnlockUser{}},
		{"authworker.DeleteUser", DeleteUser{}},
	}
	resultMembers = []member{
		{"authworker.Error", Error{}},
		{"authworker.RegisterResult", RegisterResult{}},
		{"authworker.LoginResult", LoginResult{}},
		{"authworker.IntrospectResult", IntrospectResult{}},
		{"authworker.Done", Done{}},
	}
	payloadMembers = []member{
		{"authworker.UserRegistered", UserRegistered{}},
		{"authworker.LoginSucceeded", LoginSucceeded{}},
		{"authworker.LoginFailed", LoginFailed{}},
		{"authworker.AccountLocked", AccountLocked{}},
		{"authworker.AccountUnlocked", AccountUnlocked{}},
		{"authworker.SessionRefreshed", SessionRefreshed{}},
		{"authworker.SessionRevoked", SessionRevoked{}},
		{"authworker.RefreshTokenReuseDetected", RefreshTokenReuseDetected{}},
		{"authworker.PasswordChanged", PasswordChanged{}},
		{"authworker.PasswordResetRequested", PasswordResetRequested{}},
		{"authworker.PasswordReset", PasswordReset{}},
		{"authworker.EmailVerificationRequested", EmailVerificationRequested{}},
		{"authworker.EmailVerified", EmailVerified{}},
		{"authworker.AccountDisabled", AccountDisabled{}},
		{"authworker.AccountEnabled", AccountEnabled{}},
		{"authworker.AccountDeleted", AccountDeleted{}},
		{"authworker.SigningKeyRotated", SigningKeyRotated{}},
	}
)

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
// when the struct's first word is not a pointer. to turns the decoded value
// into the pointer the public types hold.
func registerUnionTypes(api avro.API) {
	for _, m := range unionMembers() {
		api.Register(m.name, reflect.New(reflect.TypeOf(m.record)).Interface())
		api.Register(m.name, m.record)
	}
}

// unionMembers returns the records of every envelope union.
func unionMembers() []member {
	return slices.Concat(operationMembers, resultMembers, payloadMembers)
}

// to returns a pointer to the decoded union record v as a T (Operation,
// Result or Payload), or false if v is not a record of that union.
func to[T any](v any) (T, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Struct {
		var zero T
		return zero, false
	}
	p := reflect.New(rv.Type())
	p.Elem().Set(rv)
	t, ok := p.Interface().(T)
	return t, ok
}

// checker is a union record with rules beyond its Avro type, such as an
// enum field that must hold a known symbol.
type checker interface {
	check() string
}

// checkMember reports why v, a union member or a record with rules of its
// own, named what, cannot be sent, or "" when it can.
func checkMember(what string, v any) string {
	if v == nil {
		return what + " is nil"
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return fmt.Sprintf("%s is a nil %T", what, v)
	}
	if c, ok := v.(checker); ok {
		return c.check()
	}
	return ""
}

// checkResponse reports why a status and result do not belong together, or
// "" when they do: the schema promises an Error result for anything but OK.
func checkResponse(status Status, result Result) string {
	if !status.Valid() {
		return fmt.Sprintf("status %q is not a Status symbol", string(status))
	}
	if why := checkMember("result", result); why != "" {
		return why
	}
	_, isError := result.(*Error)
	switch {
	case isError && status == StatusOK:
		return "status OK with an Error result"
	case !isError && status != StatusOK:
		return "status " + string(status) + " without an Error result"
	}
	return ""
}

func (n *Notification) check() string {
	if !n.Kind.Valid() {
		return fmt.Sprintf("notification kind %q is not a NotificationKind symbol", string(n.Kind))
	}
	return ""
}

func (r *IntrospectResult) check() string {
	if !r.Active && (r.TokenType != nil || r.Sub != nil || r.Sid != nil || r.ClientID != nil || r.Iss != nil ||
		r.Aud != nil || r.Exp != nil || r.Iat != nil || r.Jti != nil || r.EmailVerified != nil) {
		return "an inactive token's introspection result carries claims"
	}
	return ""
}

func (p *LoginFailed) check() string {
	if !p.Reason.Valid() {
		return fmt.Sprintf("login failure reason %q is not a LoginFailureReason symbol", string(p.Reason))
	}
	return ""
}

func (p *AccountLocked) check() string {
	if !p.Scope.Valid() {
		return fmt.Sprintf("lock scope %q is not a LockScope symbol", string(p.Scope))
	}
	return ""
}

func (p *SessionRevoked) check() string {
	if !p.Reason.Valid() {
		return fmt.Sprintf("revocation reason %q is not a RevocationReason symbol", string(p.Reason))
	}
	return ""
}

// Operations returns an empty record of every operation the request schema
// carries, in schema order, so that code keyed on operations can be checked
// against the schema.
func Operations() []Operation {
	ops := make([]Operation, 0, len(operationMembers))
	for _, m := range operationMembers {
		op, _ := to[Operation](m.record)
		ops = append(ops, op)
	}
	return ops
}

// Payloads returns an empty record of every payload the event schema
// carries, in schema order, so that code keyed on event types (EventType of
// each) can be derived from, or checked against, the schema.
func Payloads() []Payload {
	ps := make([]Payload, 0, len(payloadMembers))
	for _, m := range payloadMembers {
		p, _ := to[Payload](m.record)
		ps = append(ps, p)
	}
	return ps
}
