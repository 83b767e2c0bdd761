package schemas

import (
	"errors"
	"fmt"
	"testing"
)

type hdr struct {
	key   string
	value []byte
}

func headerSeq(hs []hdr) func(func(string, []byte) bool) {
	return func(yield func(string, []byte) bool) {
		for _, h := range hs {
			if !yield(h.key, h.value) {
				return
			}
		}
	}
}

func TestRoute(t *testing.T) {
	r := ReplyRouting{AllowedTopics: []string{"auth.response", "auth.response.*"}}.WithDefaults()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		headers []hdr
		want    Route
		wantErr error
	}{
		{"DefaultTopic", nil, Route{Topic: "auth.response", Partition: PartitionAny, Key: []byte("k")}, nil},
		{"ReplyTopicAndCorrelation", []hdr{
			{HeaderReplyTopic, []byte("auth.response.billing")},
			{HeaderCorrelationID, []byte{0, 1, 2, 0xff}},
		}, Route{Topic: "auth.response.billing", Partition: PartitionAny, CorrelationID: []byte{0, 1, 2, 0xff}, Key: []byte("k")}, nil},
		{"ReplyPartition", []hdr{{HeaderReplyPartition, PartitionHeader(7)}},
			Route{Topic: "auth.response", Partition: 7, Key: []byte("k")}, nil},
		{"OtherHeadersIgnored", []hdr{{"traceparent", []byte("00-abc")}, {"traceparent", []byte("00-def")}},
			Route{Topic: "auth.response", Partition: PartitionAny, Key: []byte("k")}, nil},
		{"TopicNotAllowed", []hdr{{HeaderReplyTopic, []byte("orders")}}, Route{}, ErrReplyTopicNotAllowed},
		{"PatternDoesNotCrossDots", []hdr{{HeaderReplyTopic, []byte("auth.responses")}}, Route{}, ErrReplyTopicNotAllowed},
		{"ShortPartition", []hdr{{HeaderReplyPartition, []byte{0, 7}}}, Route{}, ErrBadReplyHeaders},
		{"NegativePartition", []hdr{{HeaderReplyPartition, PartitionHeader(-1)}}, Route{}, ErrBadReplyHeaders},
		{"TwoReplyTopics", []hdr{
			{HeaderReplyTopic, []byte("auth.response")},
			{HeaderReplyTopic, []byte("orders")},
		}, Route{}, ErrBadReplyHeaders},
		{"TwoCorrelationIDs", []hdr{
			{HeaderCorrelationID, []byte{1}},
			{HeaderCorrelationID, []byte{2}},
		}, Route{}, ErrBadReplyHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Route([]byte("k"), headerSeq(tt.headers))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			if got.Topic != tt.want.Topic || got.Partition != tt.want.Partition ||
				string(got.CorrelationID) != string(tt.want.CorrelationID) || string(got.Key) != string(tt.want.Key) {
				t.Errorf("route = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReplyRoutingValidate(t *testing.T) {
	tests := []struct {
		name string
		r    ReplyRouting
	}{
		{"DefaultNotAllowed", ReplyRouting{DefaultTopic: "auth.response", AllowedTopics: []string{"other"}}},
		{"BadPattern", ReplyRouting{AllowedTopics: []string{"auth.response", "["}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.r.WithDefaults().Validate(); err == nil {
				t.Error("Validate succeeded, want a config error")
			}
		})
	}
}

func TestDeadLetterReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{ErrReplyTopicNotAllowed, DeadLetterReplyTopicNotAllowed},
		{ErrBadReplyHeaders, DeadLetterBadReplyHeaders},
		{fmt.Errorf("send reply: %w: unknown partition", ErrReplyUndeliverable), DeadLetterReplyUndeliverable},
	}
	for _, tt := range tests {
		if got := DeadLetterReason(tt.err); got != tt.want {
			t.Errorf("DeadLetterReason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
