package domain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/authworker/authworker/domain"
)

func TestErrorCodeAndMessage(t *testing.T) {
	cause := errors.New("dial tcp 127.0.0.1:5432: connection refused")
	tests := []struct {
		name        string
		err         error
		wantCode    domain.Code
		wantMessage string
	}{
		{"Nil", nil, "", ""},
		{"DomainError", domain.Errorf(domain.CodeConflict, "email already registered"), domain.CodeConflict, "email already registered"},
		{"Wrapped", fmt.Errorf("create user: %w", domain.Errorf(domain.CodeConflict, "taken")), domain.CodeConflict, "taken"},
		{"Unavailable", domain.Unavailable("user store", cause), domain.CodeUnavailable, "user store unavailable"},
		{"PlainErrorIsInternal", cause, domain.CodeInternal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.ErrorCode(tt.err); got != tt.wantCode {
				t.Errorf("ErrorCode = %q, want %q", got, tt.wantCode)
			}
			if got := domain.ErrorMessage(tt.err); got != tt.wantMessage {
				t.Errorf("ErrorMessage = %q, want %q", got, tt.wantMessage)
			}
		})
	}
}

func TestUnavailableKeepsCause(t *testing.T) {
	cause := errors.New("connection refused")
	err := fmt.Errorf("load user: %w", domain.Unavailable("user store", cause))
	if !errors.Is(err, cause) {
		t.Errorf("errors.Is(err, cause) = false, want true")
	}
}

func TestInvalidNamesField(t *testing.T) {
	e, ok := errors.AsType[*domain.Error](domain.Invalid("password", "password is too short"))
	if !ok {
		t.Fatal("Invalid did not return *domain.Error")
	}
	if e.Code != domain.CodeInvalid || e.Field != "password" {
		t.Errorf("got code %q field %q, want invalid/password", e.Code, e.Field)
	}
}
