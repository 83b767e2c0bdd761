package domain_test

import (
	"bytes"
	"encoding/base64"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
)

func TestNewRefreshToken(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name        string
		sessionTTL  time.Duration
		idle        time.Duration
		wantExpires time.Time
	}{
		{"IdleExpiry", 30 * 24 * time.Hour, 24 * time.Hour, now.Add(24 * time.Hour)},
		{"CappedBySession", time.Hour, 24 * time.Hour, now.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := domain.NewSession("s1", "u1", domain.Client{ID: "web"}, now, tt.sessionTTL)
			if err != nil {
				t.Fatal(err)
			}
			random := bytes.NewReader(bytes.Repeat([]byte{7}, domain.RefreshTokenBytes))
			secret, tok, err := domain.NewRefreshToken(random, s, now, tt.idle)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := base64.RawURLEncoding.DecodeString(secret)
			if err != nil || len(raw) != domain.RefreshTokenBytes {
				t.Fatalf("secret %q decodes to %d bytes (%v), want %d", secret, len(raw), err, domain.RefreshTokenBytes)
			}
			if !tok.ExpiresAt.Equal(tt.wantExpires) {
				t.Errorf("ExpiresAt = %v, want %v", tok.ExpiresAt, tt.wantExpires)
			}
			if tok.SessionID != "s1" {
				t.Errorf("SessionID = %q, want s1", tok.SessionID)
			}
			if bytes.Contains(tok.Hash, raw) || bytes.Equal(tok.Hash, []byte(secret)) {
				t.Error("stored token holds the secret")
			}
			if !tok.Matches(secret) {
				t.Error("token does not match its own secret")
			}
			if tok.Matches(secret + "x") {
				t.Error("token matches another secret")
			}
		})
	}
}

func TestNewRefreshTokenShortRead(t *testing.T) {
	now := time.Now()
	s, err := domain.NewSession("s1", "u1", domain.Client{}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := domain.NewRefreshToken(bytes.NewReader([]byte{1, 2, 3}), s, now, time.Hour); err == nil {
		t.Error("NewRefreshToken with a short random source succeeded, want error")
	}
}

func TestNewSessionRejectsNonPositiveLifetime(t *testing.T) {
	if _, err := domain.NewSession("s1", "u1", domain.Client{}, time.Now(), 0); err == nil {
		t.Error("NewSession with zero lifetime succeeded, want error")
	}
}

func TestSigningKeyWindows(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k := domain.SigningKey{SignFrom: t0, SignUntil: t0.Add(time.Hour), PublishUntil: t0.Add(2 * time.Hour)}
	open := domain.SigningKey{SignFrom: t0}
	tests := []struct {
		name          string
		key           domain.SigningKey
		at            time.Time
		wantSigns     bool
		wantPublished bool
	}{
		{"PrePublished", k, t0.Add(-time.Minute), false, true},
		{"Signing", k, t0, true, true},
		{"Retired", k, t0.Add(time.Hour), false, true},
		{"Removed", k, t0.Add(2 * time.Hour), false, false},
		{"OpenEnded", open, t0.Add(1000 * time.Hour), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.key.Signs(tt.at); got != tt.wantSigns {
				t.Errorf("Signs = %v, want %v", got, tt.wantSigns)
			}
			if got := tt.key.Published(tt.at); got != tt.wantPublished {
				t.Errorf("Published = %v, want %v", got, tt.wantPublished)
			}
		})
	}
}
