package consumers

import (
	"strings"
	"testing"
)

func TestConfigValidateGroupProtocol(t *testing.T) {
	tests := []struct {
		name     string
		kafka    map[string]string
		instance string
		want     string // in the error; "" for none
	}{
		{"StaticMember", nil, "worker-1.example_host-8080", ""},
		{"StaticMemberUnderKIP848", map[string]string{"group.protocol": "consumer"}, "worker-1", ""},
		{"InstanceIDWithColon", nil, "worker-1:8080", "instance id"},
		{"InstanceIDTooLong", nil, strings.Repeat("w", 250), "instance id"},
		{"InstanceIDAsKafkaSetting", map[string]string{"group.instance.id": "worker-1"}, "", "group.instance.id is the pool's instance id"},
		{"ClassicByDefault", nil, "", ""},
		{"ClassicCooperative", map[string]string{"partition.assignment.strategy": "cooperative-sticky"}, "", ""},
		{"ClassicEager", map[string]string{"partition.assignment.strategy": "range"}, "", "partition.assignment.strategy must be cooperative-sticky"},
		{"ClassicSessionTimeout", map[string]string{"session.timeout.ms": "6000"}, "", ""},
		{"Consumer", map[string]string{"group.protocol": "consumer"}, "", ""},
		{"ConsumerRemoteAssignor", map[string]string{"group.protocol": "consumer", "group.remote.assignor": "uniform"}, "", ""},
		{"ConsumerSessionTimeout", map[string]string{"group.protocol": "consumer", "session.timeout.ms": "6000"}, "", "session.timeout.ms cannot be set with group.protocol=consumer"},
		{"ConsumerHeartbeat", map[string]string{"group.protocol": "consumer", "heartbeat.interval.ms": "1000"}, "", "heartbeat.interval.ms cannot be set"},
		{"ConsumerAssignmentStrategy", map[string]string{"group.protocol": "consumer", "partition.assignment.strategy": "cooperative-sticky"}, "", "partition.assignment.strategy cannot be set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{BootstrapServers: "127.0.0.1:9092", Topics: []string{"auth.request"}, Kafka: tt.kafka, InstanceID: tt.instance}
			cfg.setDefaults()
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error with %q", err, tt.want)
			}
		})
	}
}
