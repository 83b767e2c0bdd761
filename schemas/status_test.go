package schemas

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/authworker/authworker/domain"
)

// TestStatusTable checks that every symbol of the schema's Status enum has
// one code, and that the mapping goes both ways.
func TestStatusTable(t *testing.T) {
	want := map[Status]domain.Code{
		StatusOK: "", StatusInvalid: domain.CodeInvalid, StatusUnauthorized: domain.CodeUnauthorized,
		StatusConflict: domain.CodeConflict, StatusNotFound: domain.CodeNotFound,
		StatusRateLimited: domain.CodeRateLimited, StatusUnavailable: domain.CodeUnavailable,
		StatusDeadlineExceeded: domain.CodeDeadlineExceeded, StatusInternal: domain.CodeInternal,
		StatusUnknown: domain.CodeInternal,
	}
	resp, err := Parse(EnvelopeResponse)
	if err != nil {
		t.Fatal(err)
	}
	symbols := resp.(*avro.RecordSchema).Fields()[1].Type().(*avro.EnumSchema).Symbols()
	if got, want := len(symbols), len(want); got != want {
		t.Fatalf("schema has %d symbols, test covers %d", got, want)
	}
	for _, sym := range symbols {
		t.Run(sym, func(t *testing.T) {
			s := Status(sym)
			if !s.Valid() {
				t.Fatalf("Status(%q) is not valid", sym)
			}
			code, ok := want[s]
			if !ok {
				t.Fatalf("no code expected for %s", s)
			}
			if got := s.Code(); got != code {
				t.Errorf("Code() = %q, want %q", got, code)
			}
			if s != StatusUnknown {
				if got := StatusOf(code); got != s {
					t.Errorf("StatusOf(%q) = %s, want %s", code, got, s)
				}
			}
			if got := fmt.Sprint(s); got != sym {
				t.Errorf("printed %q, want %q", got, sym)
			}
		})
	}
	t.Run("UnknownCodeIsInternal", func(t *testing.T) {
		if got := StatusOf("teapot"); got != StatusInternal {
			t.Errorf("StatusOf(teapot) = %s, want INTERNAL", got)
		}
	})
	t.Run("UnknownSymbol", func(t *testing.T) {
		if Status("TEAPOT").Valid() {
			t.Error("TEAPOT is valid")
		}
		if got := Status("TEAPOT").Code(); got != domain.CodeInternal {
			t.Errorf("Code of TEAPOT = %q, want internal", got)
		}
	})
}

// TestErrorResponseRoundTrip checks that what the worker puts on the wire
// for an error is what the SDK gives back, and nothing more.
func TestErrorResponseRoundTrip(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.7:5432: connection refused")
	tests := []struct {
		name string
		err  error
		want *domain.Error
	}{
		{"Invalid", domain.Invalid("email", "email is not a valid address"),
			&domain.Error{Code: domain.CodeInvalid, Field: "email", Message: "email is not a valid address"}},
		{"RateLimited", &domain.Error{Code: domain.CodeRateLimited, Message: "slow down", RetryAfter: 1500 * time.Millisecond},
			&domain.Error{Code: domain.CodeRateLimited, Message: "slow down", RetryAfter: 1500 * time.Millisecond}},
		{"CauseStaysHome", fmt.Errorf("load user: %w", domain.Unavailable("user store", cause)),
			&domain.Error{Code: domain.CodeUnavailable, Message: "temporarily unavailable"}},
		{"InternalMessageFixed", &domain.Error{Code: domain.CodeInternal, Message: "user store error", Err: cause},
			&domain.Error{Code: domain.CodeInternal, Message: "internal error"}},
		{"DeadlineMessageFixed", &domain.Error{Code: domain.CodeDeadlineExceeded, Message: "deadline passed while waiting for the throttle store"},
			&domain.Error{Code: domain.CodeDeadlineExceeded, Message: "deadline exceeded"}},
		{"PlainErrorIsInternal", cause, &domain.Error{Code: domain.CodeInternal, Message: "internal error"}},
	}
	c, err := NewCodec(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := c.EncodeResponse(ErrorResponse("r-1", tt.err))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.DecodeResponse(t.Context(), b)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := errors.AsType[*domain.Error](resp.Err())
			if !ok {
				t.Fatalf("Err() = %v, want a *domain.Error", resp.Err())
			}
			if *got != *tt.want {
				t.Errorf("Err() = %+v, want %+v", *got, *tt.want)
			}
		})
	}
	t.Run("OKHasNoError", func(t *testing.T) {
		if err := (&Response{Status: StatusOK, Result: &RegisterResult{UserID: "u"}}).Err(); err != nil {
			t.Errorf("Err() = %v, want nil", err)
		}
	})
}
