package schemas

import (
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
)

// TestGoavroSingleObjectEncoding: a request written by goavro's own
// single-object encoder, whose fingerprint differs from the specification's
// for schemas with logical types (goavro issue #174), is read as the same
// schema.
func TestGoavroSingleObjectEncoding(t *testing.T) {
	src, err := Source(EnvelopeRequest)
	if err != nil {
		t.Fatal(err)
	}
	g, err := goavro.NewCodec(string(src))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.UnixMilli(1_800_000_000_000).UTC()
	value, err := g.SingleFromNative(nil, map[string]any{
		"requestId": "r-goavro",
		"deadline":  goavro.Union("long.timestamp-millis", deadline),
		"client":    map[string]any{"clientId": "go-service", "ip": goavro.Union("string", "192.0.2.1"), "userAgent": nil},
		"operation": goavro.Union("authworker.Login", map[string]any{"email": "ada@example.com", "password": "plum kayak violet thunder"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(EnvelopeRequest)
	if err != nil {
		t.Fatal(err)
	}
	if spec := Header(s); string(value[:HeaderSize]) == string(spec[:]) {
		t.Fatal("goavro wrote the specification's fingerprint; this test no longer covers the alias")
	}
	c, err := NewCodec(Config{})
	if err != nil {
		t.Fatal(err)
	}
	req, err := c.DecodeRequest(t.Context(), value)
	if err != nil {
		t.Fatalf("decode goavro's request: %v", err)
	}
	login, ok := req.Operation.(*Login)
	if req.RequestID != "r-goavro" || !ok || login.Email != "ada@example.com" || req.Deadline == nil || !req.Deadline.Equal(deadline) ||
		req.Client.IP == nil || *req.Client.IP != "192.0.2.1" {
		t.Errorf("decoded %+v %+v, want goavro's request", req, req.Operation)
	}
}
