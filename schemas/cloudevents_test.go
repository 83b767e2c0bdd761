package schemas

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/hamba/avro/v2"
)

const sampleTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestEventHeaders(t *testing.T) {
	// 1700000000123 ms after the epoch, given in another zone and with
	// nanoseconds that the wire does not keep.
	at := time.UnixMilli(1700000000123).Add(456789 * time.Nanosecond).In(time.FixedZone("CET", 3600))
	const source = "//authworker/worker-1"
	tests := []struct {
		name        string
		ev          *Event
		traceparent string
		want        []domain.MessageHeader
	}{
		{
			name: "UserWithTrace",
			ev: &Event{EventID: "ev-1", OccurredAt: at, RequestID: ptr("req-1"), UserID: ptr("u-1"), ClientID: ptr("web"),
				Payload: &SessionRevoked{SessionID: "s-1", Reason: RevocationLogout}},
			traceparent: sampleTraceparent,
			want: []domain.MessageHeader{
				{Key: "ce_specversion", Value: []byte("1.0")},
				{Key: "ce_id", Value: []byte("ev-1")},
				{Key: "ce_source", Value: []byte("//authworker/worker-1")},
				{Key: "ce_type", Value: []byte("authworker.SessionRevoked")},
				{Key: "ce_time", Value: []byte("2023-11-14T22:13:20.123Z")},
				{Key: "ce_subject", Value: []byte("u-1")},
				{Key: "content-type", Value: []byte("application/avro")},
				{Key: "traceparent", Value: []byte(sampleTraceparent)},
			},
		},
		{
			name: "NoUserNoTrace",
			ev:   &Event{EventID: "ev-2", OccurredAt: time.UnixMilli(0).UTC(), Payload: &SigningKeyRotated{Kid: "k-2", Algorithm: "EdDSA"}},
			want: []domain.MessageHeader{
				{Key: "ce_specversion", Value: []byte("1.0")},
				{Key: "ce_id", Value: []byte("ev-2")},
				{Key: "ce_source", Value: []byte("//authworker/worker-1")},
				{Key: "ce_type", Value: []byte("authworker.SigningKeyRotated")},
				{Key: "ce_time", Value: []byte("1970-01-01T00:00:00.000Z")},
				{Key: "content-type", Value: []byte("application/avro")},
			},
		},
		{
			name: "InvalidTraceDropped",
			ev: &Event{EventID: "ev-3", OccurredAt: at, UserID: nil,
				Payload: &LoginFailed{Reason: LoginFailureUnknownAccount}},
			traceparent: strings.ToUpper(sampleTraceparent),
			want: []domain.MessageHeader{
				{Key: "ce_specversion", Value: []byte("1.0")},
				{Key: "ce_id", Value: []byte("ev-3")},
				{Key: "ce_source", Value: []byte("//authworker/worker-1")},
				{Key: "ce_type", Value: []byte("authworker.LoginFailed")},
				{Key: "ce_time", Value: []byte("2023-11-14T22:13:20.123Z")},
				{Key: "content-type", Value: []byte("application/avro")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EventHeaders(tt.ev, source, tt.traceparent)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("headers:\ngot  %s\nwant %s", formatHeaders(got), formatHeaders(tt.want))
			}
		})
	}
}

// formatHeaders prints headers one per line, values as text.
func formatHeaders(hs []domain.MessageHeader) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "\n\t%s: %q", h.Key, h.Value)
	}
	return b.String()
}

// TestEventTypeNamesTheAvroRecord decodes an event of every record of the
// payload union and checks its ce_type is the record's Avro name, prefixed.
func TestEventTypeNamesTheAvroRecord(t *testing.T) {
	c := newTestCodec(t, Config{})
	s, err := Parse(EnvelopeEvent)
	if err != nil {
		t.Fatal(err)
	}
	h := Header(s)
	for i, m := range recordUnion(s).Types() {
		record := m.(avro.NamedSchema)
		t.Run(record.Name(), func(t *testing.T) {
			w := avro.NewWriter(nil, 256)
			writeSample(w, s, i, record.Name())
			ev, err := c.DecodeEvent(t.Context(), append(h[:], w.Buffer()...))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := EventType(ev.Payload), "authworker."+record.Name(); got != want {
				t.Errorf("EventType(%T): got %q, want %q", ev.Payload, got, want)
			}
		})
	}
	t.Run("Nil", func(t *testing.T) {
		if got := EventType(nil); got != "" {
			t.Errorf("EventType(nil): got %q, want none", got)
		}
	})
}

func TestValidTraceparent(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"Valid", sampleTraceparent, true},
		{"NotSampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"Empty", "", false},
		{"TooShort", sampleTraceparent[:54], false},
		{"TooLong", sampleTraceparent + "0", false},
		{"FutureVersionFields", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false},
		{"UppercaseHex", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", false},
		{"UppercaseFlags", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A", false},
		{"AllZeroTraceID", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"AllZeroSpanID", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"VersionFF", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"OtherVersion", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"NotHex", "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", false},
		{"WrongSeparator", "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01", false},
		{"ShiftedFields", "00-4bf92f3577b34da6a3ce929d0e0e47360-0f067aa0ba902b7-01", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidTraceparent(tt.in); got != tt.want {
				t.Errorf("ValidTraceparent(%q): got %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
