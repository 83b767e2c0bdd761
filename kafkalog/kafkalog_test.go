package kafkalog_test

import (
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/kafkalog"
	"github.com/authworker/authworker/testenv"
)

func TestLevel(t *testing.T) {
	tests := []struct {
		name   string
		syslog int
		want   slog.Level
	}{
		{"Emergency", 0, slog.LevelError},
		{"Error", 3, slog.LevelError},
		{"Warning", 4, slog.LevelWarn},
		{"Notice", 5, slog.LevelInfo},
		{"Info", 6, slog.LevelInfo},
		{"Debug", 7, slog.LevelDebug},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := kafkalog.Level(tt.syslog); got != tt.want {
				t.Errorf("Level(%d) = %v, want %v", tt.syslog, got, tt.want)
			}
		})
	}
}

// TestBrokerDownIsLogged: a producer whose only broker refuses connections
// logs librdkafka's lines about it to the logger, as JSON records of the
// kafka client component, and Close returns once the client is closed. No
// broker is needed: the address is one nobody listens on.
func TestBrokerDownIsLogged(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()

	var out testenv.SyncBuffer
	logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	conf := kafka.ConfigMap{"bootstrap.servers": dead}
	fwd := kafkalog.Forward(conf, logger)
	p, err := kafka.NewProducer(&conf)
	if err != nil {
		fwd.Close()
		t.Fatal(err)
	}
	go func() {
		for range p.Events() { // the connection errors also come here
		}
	}()
	for end := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), dead); {
		if time.Now().After(end) {
			p.Close()
			fwd.Close()
			t.Fatalf("no line naming %s within 30 s; logged:\n%s", dead, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.Close()
	fwd.Close()
	fwd.Close()
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var rec struct {
			Level, Msg, Component, Tag string
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if rec.Component != "kafka client" || rec.Tag == "" || rec.Msg == "" {
			t.Errorf("record %q lacks its component, tag or message", line)
		}
	}
}
