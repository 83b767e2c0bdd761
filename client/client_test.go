package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/client"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/producers"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/testenv"
)

// responder stands in for the worker: it answers every Login with a
// LoginResult naming the e-mail address, and every Register with an error,
// following the reply headers.
func responder(t *testing.T, bootstrap, requests string, answerCorrelation func([]byte) []byte) {
	t.Helper()
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := producers.NewProducer(producers.Config{BootstrapServers: bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	replies := producers.NewReplies(p)
	routing := schemas.ReplyRouting{AllowedTopics: []string{"*"}}.WithDefaults()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": testenv.Name(t, "responder"), "auto.offset.reset": "earliest",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(requests, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; c.Close(); p.Close() })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			msg, err := c.ReadMessage(100 * time.Millisecond)
			if err != nil {
				continue
			}
			req, err := codec.DecodeRequest(ctx, msg.Value)
			if err != nil {
				t.Errorf("responder: %v", err)
				continue
			}
			route, err := routing.Route(msg.Key, func(yield func(string, []byte) bool) {
				for _, h := range msg.Headers {
					if !yield(h.Key, h.Value) {
						return
					}
				}
			})
			if err != nil {
				t.Errorf("responder: %v", err)
				continue
			}
			if answerCorrelation != nil {
				route.CorrelationID = answerCorrelation(route.CorrelationID)
			}
			resp := &schemas.Response{RequestID: req.RequestID, Status: schemas.StatusConflict, Result: &schemas.Error{Message: "email already registered"}}
			code := domain.CodeConflict
			if login, ok := req.Operation.(*schemas.Login); ok {
				resp = &schemas.Response{RequestID: req.RequestID, Status: schemas.StatusOK, Result: &schemas.LoginResult{
					UserID: login.Email, AccessTokenExpiresAt: time.Now(), RefreshTokenExpiresAt: time.Now(),
				}}
				code = ""
			}
			value, err := codec.EncodeResponse(resp)
			if err != nil {
				t.Errorf("responder: %v", err)
				continue
			}
			if err := replies.Send(ctx, route, code, value); err != nil && ctx.Err() == nil {
				t.Errorf("responder: %v", err)
			}
		}
	}()
}

func topics(t *testing.T, bootstrap string, names ...string) {
	t.Helper()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var specs []producers.Topic
	for _, n := range names {
		specs = append(specs, producers.Topic{Name: n, Partitions: 3})
	}
	if err := producers.EnsureTopics(ctx, admin, specs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
		if err != nil {
			return
		}
		defer admin.Close()
		admin.DeleteTopics(context.Background(), names)
	})
}

func newClient(t *testing.T, bootstrap, req, resp string, partition *int32, timeout time.Duration) *client.Client {
	t.Helper()
	c, err := client.New(context.Background(), client.Config{
		BootstrapServers: bootstrap, ClientID: "test", RequestTopic: req, ReplyTopic: resp,
		ReplyPartition: partition, Timeout: timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestConcurrentRequestsGetTheirOwnReplies(t *testing.T) {
	bootstrap := testenv.KafkaBootstrap(t)
	req, resp := testenv.Name(t, "req"), testenv.Name(t, "resp")
	topics(t, bootstrap, req, resp)
	responder(t, bootstrap, req, nil)
	c := newClient(t, bootstrap, req, resp, nil, 30*time.Second)

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			email := fmt.Sprintf("user%d@example.com", i)
			res, err := c.Login(context.Background(), email, "pw")
			if err != nil {
				t.Errorf("login %s: %v", email, err)
				return
			}
			if res.UserID != email {
				t.Errorf("login %s got the reply for %s", email, res.UserID)
			}
		})
	}
	wg.Wait()
}

func TestErrorReplyIsDomainError(t *testing.T) {
	bootstrap := testenv.KafkaBootstrap(t)
	req, resp := testenv.Name(t, "req"), testenv.Name(t, "resp")
	topics(t, bootstrap, req, resp)
	responder(t, bootstrap, req, nil)
	partition := int32(1)
	c := newClient(t, bootstrap, req, resp, &partition, 30*time.Second)

	_, err := c.Register(context.Background(), "ada@example.com", "pw")
	if domain.ErrorCode(err) != domain.CodeConflict || domain.ErrorMessage(err) != "email already registered" {
		t.Errorf("Register error = %v, want the conflict reply", err)
	}
}

func TestNoReplyTimesOut(t *testing.T) {
	bootstrap := testenv.KafkaBootstrap(t)
	req, resp := testenv.Name(t, "req"), testenv.Name(t, "resp")
	topics(t, bootstrap, req, resp)
	// Replies arrive, but never with the request's correlation id.
	responder(t, bootstrap, req, func([]byte) []byte { return []byte("someone else") })
	c := newClient(t, bootstrap, req, resp, nil, time.Second)

	_, err := c.Login(context.Background(), "ada@example.com", "pw")
	if domain.ErrorCode(err) != domain.CodeDeadlineExceeded {
		t.Errorf("Login error = %v, want deadline_exceeded", err)
	}
}

func TestMissingReplyTopic(t *testing.T) {
	bootstrap := testenv.KafkaBootstrap(t)
	_, err := client.New(context.Background(), client.Config{
		BootstrapServers: bootstrap, ClientID: "test", ReplyTopic: testenv.Name(t, "missing"), Timeout: 5 * time.Second,
	})
	if err == nil {
		t.Error("New with a missing reply topic succeeded, want error")
	}
}
