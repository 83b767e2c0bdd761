package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
)

func TestParseEmail(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  domain.Email
		valid bool
	}{
		{"OK", "ada@example.com", "ada@example.com", true},
		{"LowerCased", "Ada.Lovelace@Example.COM", "ada.lovelace@example.com", true},
		{"Trimmed", "  ada@example.com\t", "ada@example.com", true},
		{"PlusTag", "ada+auth@example.com", "ada+auth@example.com", true},
		{"Empty", "", "", false},
		{"NoAt", "ada.example.com", "", false},
		{"NoDomainDot", "ada@localhost", "", false},
		{"DisplayName", "Ada <ada@example.com>", "", false},
		{"TwoAddresses", "ada@example.com, bob@example.com", "", false},
		{"LocalPartTooLong", strings.Repeat("a", 65) + "@example.com", "", false},
		{"TooLong", "a@" + strings.Repeat("b", 250) + ".com", "", false},
		{"InvalidUTF8", "ad\xffa@example.com", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.ParseEmail(tt.in)
			if !tt.valid {
				if domain.ErrorCode(err) != domain.CodeInvalid {
					t.Fatalf("ParseEmail(%q) error = %v, want invalid", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseEmail(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseEmail(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNewUser(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	u, err := domain.NewUser("u1", "ada@example.com", "$argon2id$...", now)
	if err != nil {
		t.Fatal(err)
	}
	if !u.CanLogIn() {
		t.Error("new user cannot log in, want active")
	}
	if got, want := u.Snapshot(), (domain.UserSnapshot{
		ID: "u1", Email: "ada@example.com", PasswordHash: "$argon2id$...",
		Status: domain.UserActive, CreatedAt: now, UpdatedAt: now, PasswordChangedAt: now,
	}); got != want {
		t.Errorf("Snapshot = %+v, want %+v", got, want)
	}
	if _, err := domain.NewUser("u1", "ada@example.com", "", now); err == nil {
		t.Error("NewUser with empty hash succeeded, want error")
	}
}

func TestUserChanges(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	u, err := domain.NewUser("u1", "ada@example.com", "old", t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.SetPasswordHash("new", t1); err != nil {
		t.Fatal(err)
	}
	u.Disable(t1)
	restored := domain.RestoreUser(u.Snapshot())
	if restored.PasswordHash() != "new" || restored.CanLogIn() || restored.Snapshot().UpdatedAt != t1 {
		t.Errorf("after changes got %+v, want hash new, disabled, updated at %v", restored.Snapshot(), t1)
	}
	if err := u.SetPasswordHash("", t1); err == nil {
		t.Error("SetPasswordHash(\"\") succeeded, want error")
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"01a2237d-f7bb-7b32-8e99-b0eb96087082", true},
		{"01A2237D-F7BB-7B32-8E99-B0EB96087082", false}, // upper case does not round-trip
		{"01a2237df7bb7b328e99b0eb96087082", false},
		{"01a2237d-f7bb-7b32-8e99-b0eb9608708", false},
		{"01a2237d-f7bb-7b32-8e99_b0eb96087082", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := domain.ValidID(tt.id); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestRequestKeyValidate(t *testing.T) {
	// The limit counts bytes: 127 two-byte characters and one ASCII byte is
	// the longest key; 128 two-byte characters are too long.
	longest := strings.Repeat("é", domain.MaxRequestKeyLen/2) + "x"
	tests := []struct {
		name      string
		key       domain.RequestKey
		wantField string
	}{
		{"OK", domain.RequestKey{ClientID: "web", RequestID: "r1"}, ""},
		{"LongestOK", domain.RequestKey{ClientID: longest, RequestID: longest}, ""},
		{"LongestASCII", domain.RequestKey{ClientID: strings.Repeat("c", 255), RequestID: strings.Repeat("r", 255)}, ""},
		{"NoClient", domain.RequestKey{RequestID: "r1"}, "client.clientId"},
		{"NoRequest", domain.RequestKey{ClientID: "web"}, "requestId"},
		{"TooLong", domain.RequestKey{ClientID: "web", RequestID: strings.Repeat("r", 256)}, "requestId"},
		{"TooManyBytes", domain.RequestKey{ClientID: "web", RequestID: strings.Repeat("é", 128)}, "requestId"},
		{"ClientTooManyBytes", domain.RequestKey{ClientID: strings.Repeat("é", 128), RequestID: "r1"}, "client.clientId"},
		{"NUL", domain.RequestKey{ClientID: "w\x00b", RequestID: "r1"}, "client.clientId"},
		{"NotUTF8", domain.RequestKey{ClientID: "web", RequestID: "r\xff"}, "requestId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.key.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			e, ok := errors.AsType[*domain.Error](err)
			if !ok || e.Code != domain.CodeInvalid || e.Field != tt.wantField {
				t.Errorf("Validate = %v, want invalid %s", err, tt.wantField)
			}
		})
	}
}

func TestUserLifecycle(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	u, err := domain.NewUser("u1", "ada@example.com", "h1", t0)
	if err != nil {
		t.Fatal(err)
	}
	sessionStart := t0.Add(time.Hour)
	if !u.CanRefresh(sessionStart) {
		t.Error("a session opened after registration cannot refresh")
	}
	if err := u.SetPasswordHash("h1-rehashed", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !u.CanRefresh(sessionStart) {
		t.Error("a rehash (same password) ended the session")
	}
	if err := u.ChangePassword("h2", t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if u.CanRefresh(sessionStart) {
		t.Error("a session opened before the password changed can still refresh")
	}
	if !u.CanRefresh(t0.Add(4 * time.Hour)) {
		t.Error("a session opened after the change cannot refresh")
	}
	u.Disable(t0)
	if u.CanRefresh(t0.Add(4*time.Hour)) || u.CanLogIn() {
		t.Error("a disabled user can refresh or log in")
	}
	u.Enable(t0)
	if !u.CanLogIn() {
		t.Error("an enabled user cannot log in")
	}
	if u.EmailVerified() {
		t.Error("a new user's address is verified")
	}
	if !u.VerifyEmail(t0.Add(5 * time.Hour)) {
		t.Error("first verification reported no change")
	}
	if u.VerifyEmail(t0.Add(6 * time.Hour)) {
		t.Error("second verification reported a change")
	}
	if !u.EmailVerified() || !u.Snapshot().EmailVerifiedAt.Equal(t0.Add(5*time.Hour)) {
		t.Errorf("verified at %v, want the first verification", u.Snapshot().EmailVerifiedAt)
	}
}
