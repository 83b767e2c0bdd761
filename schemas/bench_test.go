package schemas

import (
	"context"
	"testing"
	"time"
)

func benchRequest() *Request {
	return &Request{
		RequestID: "0b0f7a2e-9a55-4c8e-bb3c-5b2d3f1e8a11",
		Deadline:  ptr(time.UnixMilli(1700000000123).UTC()),
		Client:    ClientMetadata{ClientID: "web-frontend", IP: ptr("203.0.113.7"), UserAgent: ptr("Mozilla/5.0 (X11; Linux x86_64)")},
		Operation: &Login{Email: "ada.lovelace@example.com", Password: "plum kayak violet thunder"},
	}
}

func BenchmarkEncodeRequest(b *testing.B) {
	c := newTestCodec(b, Config{})
	req := benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.EncodeRequest(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRequest(b *testing.B) {
	c := newTestCodec(b, Config{})
	data, err := c.EncodeRequest(benchRequest())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.DecodeRequest(ctx, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeResponse(b *testing.B) {
	c := newTestCodec(b, Config{})
	data, err := c.EncodeResponse(&Response{
		RequestID: "0b0f7a2e-9a55-4c8e-bb3c-5b2d3f1e8a11",
		Status:    StatusOK,
		Result: &LoginResult{
			UserID:               "6f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b",
			SessionID:            "1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809",
			AccessToken:          "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiI2ZjFjIiwiY2xpZW50X2lkIjoid2ViIn0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU",
			AccessTokenExpiresAt: time.UnixMilli(1700000900000).UTC(),
			RefreshToken:         "rt_7d2c4e1f9a8b6c5d4e3f2a1b0c9d8e7f",
			// 30 days later.
			RefreshTokenExpiresAt: time.UnixMilli(1702592000000).UTC(),
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.DecodeResponse(ctx, data); err != nil {
			b.Fatal(err)
		}
	}
}
