package schemas

import (
	"context"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
	"time"
)

// FuzzDecodeRequest checks that no input panics the decoder, that every
// failure wraps one of the package's sentinel errors, and that whatever
// decodes re-encodes to the same request.
func FuzzDecodeRequest(f *testing.F) {
	current, err := Source(EnvelopeRequest)
	if err != nil {
		f.Fatal(err)
	}
	reg := newFakeRegistry(map[int]string{1: string(current), 2: olderRequestSchema})
	c := newTestCodec(f, Config{Registry: reg})

	seeds := []*Request{
		{RequestID: "r-1", Client: ClientMetadata{ClientID: "web"}, Operation: &Register{Email: "ada@example.com", Password: "pw"}},
		{
			RequestID: "r-2",
			Deadline:  ptr(time.UnixMilli(1700000000123).UTC()),
			Client:    ClientMetadata{ClientID: "web", IP: ptr("192.0.2.1"), UserAgent: ptr("ua")},
			Operation: &Login{Email: "ada@example.com", Password: "pw"},
		},
	}
	for _, req := range seeds {
		b, err := c.EncodeRequest(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(confluentFrame(1, b[HeaderSize:]))
	}
	java, err := hex.DecodeString(javaReference(f)["soe.auth_request"])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(java)
	f.Add(confluentFrame(2, olderRequestData(f)))
	f.Add([]byte{})
	f.Add([]byte{0xc3, 0x01})

	sentinels := []error{ErrFraming, ErrUnknownSchema, ErrIncompatibleSchema, ErrMalformed, ErrNoRegistry, ErrRegistryUnavailable}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := c.DecodeRequest(context.Background(), data)
		if err != nil {
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		if req.Operation == nil {
			t.Fatal("decoded a request without an operation")
		}
		b, err := c.EncodeRequest(req)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := c.DecodeRequest(context.Background(), b)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		if !reflect.DeepEqual(again, req) {
			t.Fatalf("round trip: got %+v, want %+v", again, req)
		}
	})
}
