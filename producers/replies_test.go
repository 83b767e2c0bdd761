package producers

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func partitionHeader(p uint32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, p)
	return b
}

func TestRouteFor(t *testing.T) {
	r, err := NewReplies(nil, ReplyConfig{AllowedTopics: []string{"auth.response", "auth.response.*"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		headers []kafka.Header
		want    Route
		wantErr error
	}{
		{"DefaultTopic", nil, Route{Topic: "auth.response", Partition: kafka.PartitionAny, Key: []byte("k")}, nil},
		{"ReplyTopicAndCorrelation", []kafka.Header{
			{Key: HeaderReplyTopic, Value: []byte("auth.response.billing")},
			{Key: HeaderCorrelationID, Value: []byte{0, 1, 2, 0xff}},
		}, Route{Topic: "auth.response.billing", Partition: kafka.PartitionAny, CorrelationID: []byte{0, 1, 2, 0xff}, Key: []byte("k")}, nil},
		{"ReplyPartition", []kafka.Header{{Key: HeaderReplyPartition, Value: partitionHeader(7)}},
			Route{Topic: "auth.response", Partition: 7, Key: []byte("k")}, nil},
		{"TopicNotAllowed", []kafka.Header{{Key: HeaderReplyTopic, Value: []byte("orders")}}, Route{}, ErrReplyTopicNotAllowed},
		{"PatternDoesNotCrossDots", []kafka.Header{{Key: HeaderReplyTopic, Value: []byte("auth.responses")}}, Route{}, ErrReplyTopicNotAllowed},
		{"ShortPartition", []kafka.Header{{Key: HeaderReplyPartition, Value: []byte{0, 7}}}, Route{}, ErrBadReplyHeaders},
		{"NegativePartition", []kafka.Header{{Key: HeaderReplyPartition, Value: partitionHeader(0xffffffff)}}, Route{}, ErrBadReplyHeaders},
		{"TwoReplyTopics", []kafka.Header{
			{Key: HeaderReplyTopic, Value: []byte("auth.response")},
			{Key: HeaderReplyTopic, Value: []byte("orders")},
		}, Route{}, ErrBadReplyHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.RouteFor(&kafka.Message{Key: []byte("k"), Headers: tt.headers})
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

func TestReplyConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  ReplyConfig
	}{
		{"DefaultNotAllowed", ReplyConfig{DefaultTopic: "auth.response", AllowedTopics: []string{"other"}}},
		{"BadPattern", ReplyConfig{AllowedTopics: []string{"auth.response", "["}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewReplies(nil, tt.cfg); err == nil {
				t.Error("NewReplies succeeded, want a config error")
			}
		})
	}
}
