package schemas

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
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
		{RequestID: "r-3", Client: ClientMetadata{ClientID: "web"}, Operation: &Logout{RefreshToken: ptr("rt")}},
		{RequestID: "r-4", Client: ClientMetadata{ClientID: "web"}, Operation: &Introspect{Token: "t", TokenTypeHint: ptr("access_token")}},
	}
	for _, req := range seeds {
		b, err := c.EncodeRequest(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(confluentFrame(1, b[HeaderSize:]))
	}
	f.Add(confluentFrame(2, olderRequestData(f)))
	fuzzDecode(f, EnvelopeRequest,
		func(b []byte) (*Request, error) { return c.DecodeRequest(context.Background(), b) },
		c.EncodeRequest,
		func(r *Request) bool { return r.Operation != nil })
}

// FuzzDecodeResponse is FuzzDecodeRequest for responses.
func FuzzDecodeResponse(f *testing.F) {
	c := newTestCodec(f, Config{})
	at := time.UnixMilli(1700000000123).UTC()
	seeds := []*Response{
		{RequestID: "r-1", Status: StatusOK, Result: &Done{}},
		{RequestID: "r-2", Status: StatusOK, Result: &IntrospectResult{}},
		{RequestID: "r-3", Status: StatusOK, Result: &IntrospectResult{Active: true, Sub: ptr("u-1"), Aud: []string{"a", "b"}, Exp: &at, EmailVerified: ptr(true)}},
		{RequestID: "r-4", Status: StatusOK, Result: &LoginResult{UserID: "u-1", AccessTokenExpiresAt: at, RefreshTokenExpiresAt: at}},
		{RequestID: "r-5", Status: StatusRateLimited, Result: &Error{Message: "m", RetryAfterMs: ptr(int64(5))}},
	}
	for _, r := range seeds {
		b, err := c.EncodeResponse(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	fuzzDecode(f, EnvelopeResponse,
		func(b []byte) (*Response, error) { return c.DecodeResponse(context.Background(), b) },
		c.EncodeResponse,
		func(r *Response) bool { return r.Result != nil })
}

// FuzzDecodeNotification is FuzzDecodeRequest for notifications.
func FuzzDecodeNotification(f *testing.F) {
	c := newTestCodec(f, Config{})
	seeds := []*Notification{
		{NotificationID: "n-1", OccurredAt: time.UnixMilli(1700000000123).UTC(), UserID: "u-1", Email: "ada@example.com", Kind: NotificationRegistrationAttempt},
		{
			NotificationID: "n-2", OccurredAt: time.UnixMilli(1700000000123).UTC(), UserID: "u-1", Email: "ada@example.com",
			ClientID: ptr("web"), Kind: NotificationPasswordReset, Code: ptr("123456"), ExpiresAt: ptr(time.UnixMilli(1700000900000).UTC()),
		},
	}
	for _, n := range seeds {
		b, err := c.EncodeNotification(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	fuzzDecode(f, EnvelopeNotification,
		func(b []byte) (*Notification, error) { return c.DecodeNotification(context.Background(), b) },
		c.EncodeNotification,
		func(*Notification) bool { return true })
}

// FuzzDecodeEvent is FuzzDecodeRequest for events, seeded with an event of
// every payload record.
func FuzzDecodeEvent(f *testing.F) {
	c := newTestCodec(f, Config{})
	for i, m := range payloadMembers {
		ev := &Event{
			EventID: fmt.Sprintf("e-%d", i), OccurredAt: time.UnixMilli(1700000000123).UTC(),
			UserID: ptr("u-1"), IP: ptr("192.0.2.1"), Payload: sampleRecord(f, m.name).(Payload),
		}
		b, err := c.EncodeEvent(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	fuzzDecode(f, EnvelopeEvent,
		func(b []byte) (*Event, error) { return c.DecodeEvent(context.Background(), b) },
		c.EncodeEvent,
		func(ev *Event) bool { return ev.Payload != nil })
}

// fuzzDecode adds the seeds every envelope shares (Java's encoding of env,
// when the reference has one, and broken framings) and fuzzes decode: no
// input may panic it, every failure wraps a sentinel error, and whatever
// decodes is whole (complete reports whether it is) and re-encodes to the
// same value.
func fuzzDecode[T any](f *testing.F, env Envelope, decode func([]byte) (T, error), encode func(T) ([]byte, error), complete func(T) bool) {
	f.Helper()
	if ref, ok := javaReference(f)["soe."+env.String()]; ok {
		java, err := hex.DecodeString(ref)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(java)
	}
	f.Add([]byte{})
	f.Add([]byte{0xc3, 0x01})

	sentinels := []error{ErrFraming, ErrUnknownSchema, ErrIncompatibleSchema, ErrMalformed, ErrNoRegistry, ErrRegistryUnavailable}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decode(data)
		if err != nil {
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		if !complete(v) {
			t.Fatalf("decoded an incomplete %s: %+v", env, v)
		}
		b, err := encode(v)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := decode(b)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		if !reflect.DeepEqual(again, v) {
			t.Fatalf("round trip: got %+v, want %+v", again, v)
		}
	})
}
