package domain_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
)

func validOutboxMessage() domain.OutboxMessage {
	return domain.OutboxMessage{
		Topic:     "auth.notifications",
		Key:       []byte("0c4b9a0e-6a4f-4f7e-9b1e-2a7d3c1f5e60"),
		Value:     []byte("your code is 123456"),
		Headers:   []domain.MessageHeader{{Key: "type", Value: []byte("login-code")}},
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func TestOutboxMessageValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(m *domain.OutboxMessage)
		valid  bool
	}{
		{"OK", func(*domain.OutboxMessage) {}, true},
		{"NoValue", func(m *domain.OutboxMessage) { m.Value = nil }, true},
		{"NoHeaders", func(m *domain.OutboxMessage) { m.Headers = nil }, true},
		{"HeaderWithoutValue", func(m *domain.OutboxMessage) { m.Headers[0].Value = nil }, true},
		{"LongestTopic", func(m *domain.OutboxMessage) { m.Topic = strings.Repeat("a", 249) }, true},
		{"NoTopic", func(m *domain.OutboxMessage) { m.Topic = "" }, false},
		{"TopicTooLong", func(m *domain.OutboxMessage) { m.Topic = strings.Repeat("a", 250) }, false},
		{"TopicWithSpace", func(m *domain.OutboxMessage) { m.Topic = "auth events" }, false},
		{"TopicWithWildcard", func(m *domain.OutboxMessage) { m.Topic = "auth.*" }, false},
		{"NoKey", func(m *domain.OutboxMessage) { m.Key = nil }, false},
		{"NoCreatedAt", func(m *domain.OutboxMessage) { m.CreatedAt = time.Time{} }, false},
		{"HeaderWithoutKey", func(m *domain.OutboxMessage) { m.Headers[0].Key = "" }, false},
		{"HeaderKeyNotText", func(m *domain.OutboxMessage) { m.Headers[0].Key = "ty\xffpe" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validOutboxMessage()
			tt.change(&m)
			err := m.Validate()
			if tt.valid && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if !tt.valid && domain.ErrorCode(err) != domain.CodeInternal {
				t.Fatalf("Validate() = %v, want internal: a bad message is a bug in the use case", err)
			}
		})
	}
}

// TestOutboxMessageHidesValue: values carry one-time codes, so printing a
// message, as a log line or a failed test might, never shows its value.
func TestOutboxMessageHidesValue(t *testing.T) {
	m := validOutboxMessage()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		got := fmt.Sprintf(verb, m)
		if strings.Contains(got, "123456") {
			t.Errorf("Sprintf(%q) = %q, which shows the value", verb, got)
		}
		if !strings.Contains(got, "auth.notifications") {
			t.Errorf("Sprintf(%q) = %q, want the topic named", verb, got)
		}
	}
}
