package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/producers"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/seal"
	"github.com/authworker/authworker/testenv"
)

// TestDLQOpensSealedDeadLetters: the worker seals dead letters (a request
// holds a password); an operator with the key-encryption key reads them,
// passwords still hidden unless -raw asks.
func TestDLQOpensSealedDeadLetters(t *testing.T) {
	bootstrap := testenv.KafkaBootstrap(t)
	dlqTopic := testenv.Name(t, "dlq")
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := producers.EnsureTopics(context.Background(), admin, []producers.Topic{{Name: dlqTopic, Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.DeleteTopics(context.Background(), []string{dlqTopic}) })

	kek := bytes.Repeat([]byte{5}, seal.KeySize)
	box, err := seal.NewBox(kek, "dead letters")
	if err != nil {
		t.Fatal(err)
	}
	p, err := producers.NewProducer(producers.Config{BootstrapServers: bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const secret = "a password nobody may read"
	value, err := codec.EncodeRequest(&schemas.Request{RequestID: "r-7", Client: schemas.ClientMetadata{ClientID: "web"},
		Operation: &schemas.Login{Email: "ada@example.com", Password: secret}})
	if err != nil {
		t.Fatal(err)
	}
	origin := "auth.request"
	dead := producers.NewDeadLetters(p, dlqTopic, box)
	if err := dead.Send(context.Background(), &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &origin, Partition: 2, Offset: 41},
		Key:            []byte("ada@example.com"), Value: value,
	}, schemas.DeadLetterReplyTopicNotAllowed, "reply topic not allowed"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		kek       []byte
		args      []string
		wantError bool
		wantRaw   bool
	}{
		{"Opened", kek, nil, false, false},
		{"Raw", kek, []string{"-raw"}, false, true},
		{"OtherKEK", bytes.Repeat([]byte{6}, seal.KeySize), nil, true, false},
		{"OlderInTheList", nil, nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list := base64.StdEncoding.EncodeToString(tt.kek)
			if tt.kek == nil { // a newer KEK in front: the dead letter still opens
				list = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{6}, seal.KeySize)) + "," + base64.StdEncoding.EncodeToString(kek)
			}
			t.Setenv("AUTH_KEY_ENCRYPTION_KEY", list)
			var out bytes.Buffer
			args := append([]string{"-bootstrap", bootstrap, "dlq", "-topic", dlqTopic}, tt.args...)
			if err := run(context.Background(), args, nil, &out); err != nil {
				t.Fatal(err)
			}
			var d deadLetter
			if err := json.Unmarshal(out.Bytes(), &d); err != nil {
				t.Fatalf("output %q: %v", out.String(), err)
			}
			if d.Reason != schemas.DeadLetterReplyTopicNotAllowed || d.OriginalTopic != origin || d.OriginalPartition != 2 || d.OriginalOffset != 41 {
				t.Errorf("origin and reason %+v, want auth.request/2/41 reply_topic_not_allowed", d)
			}
			if tt.wantError {
				if d.Error == "" || d.Request != nil || d.Key != "" {
					t.Errorf("with another KEK: %+v, want an error and nothing opened", d)
				}
				return
			}
			if d.Key != "ada@example.com" || d.Request == nil || d.Request.RequestID != "r-7" {
				t.Errorf("opened %+v, want the request r-7 keyed by its e-mail", d)
			}
			if strings.Contains(out.String(), secret) {
				t.Error("the password is printed")
			}
			if tt.wantRaw != (d.Value != "") {
				t.Errorf("value printed = %v, want %v", d.Value != "", tt.wantRaw)
			}
		})
	}
}
