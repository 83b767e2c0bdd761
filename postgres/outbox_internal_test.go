package postgres

import (
	"bytes"
	"errors"
	"testing"

	"github.com/authworker/authworker/domain"
)

func TestHeadersRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		headers []domain.MessageHeader
	}{
		{"None", nil},
		{"One", []domain.MessageHeader{{Key: "type", Value: []byte("login-code")}}},
		{"EmptyValue", []domain.MessageHeader{{Key: "type", Value: nil}}},
		{"DuplicatesInOrder", []domain.MessageHeader{{Key: "b", Value: []byte{0}}, {Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte{0xff}}}},
		{"Long", []domain.MessageHeader{{Key: "k", Value: bytes.Repeat([]byte("v"), 300)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeHeaders(tt.headers)
			if b == nil {
				t.Fatal("encodeHeaders returned nil, which pgx stores as NULL")
			}
			got, err := decodeHeaders(b)
			if err != nil {
				t.Fatalf("decodeHeaders: %v", err)
			}
			if len(got) != len(tt.headers) {
				t.Fatalf("decoded %d headers, want %d", len(got), len(tt.headers))
			}
			for i := range got {
				if got[i].Key != tt.headers[i].Key || !bytes.Equal(got[i].Value, tt.headers[i].Value) {
					t.Errorf("header %d = %q=%q, want %q=%q", i, got[i].Key, got[i].Value, tt.headers[i].Key, tt.headers[i].Value)
				}
			}
		})
	}
}

func TestDecodeCorruptHeaders(t *testing.T) {
	good := encodeHeaders([]domain.MessageHeader{{Key: "type", Value: []byte("x")}})
	tests := []struct {
		name string
		b    []byte
	}{
		{"KeyWithoutValue", good[:5]},
		{"Truncated", good[:len(good)-1]},
		{"LengthPastEnd", []byte{0x7f, 'a'}},
		{"BadVarint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeHeaders(tt.b); !errors.Is(err, errBadHeaders) {
				t.Errorf("decodeHeaders(%x) = %v, want errBadHeaders", tt.b, err)
			}
		})
	}
}

// TestOutboxShardSpreadsKeys: the shard is stable for a key and user ids
// fall into every shard, so relays share the work.
func TestOutboxShardSpreadsKeys(t *testing.T) {
	seen := map[int16]int{}
	for i := range 1000 {
		key := []byte{byte(i), byte(i >> 8), 'u', 's', 'e', 'r'}
		s := outboxShard(key)
		if s < 0 || s >= OutboxShards {
			t.Fatalf("outboxShard(%q) = %d, want 0 to %d", key, s, OutboxShards-1)
		}
		if again := outboxShard(bytes.Clone(key)); again != s {
			t.Fatalf("outboxShard(%q) = %d, then %d", key, s, again)
		}
		seen[s]++
	}
	if len(seen) != OutboxShards {
		t.Errorf("1000 keys fell into %d shards, want all %d", len(seen), OutboxShards)
	}
}
