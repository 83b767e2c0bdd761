package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/golang-jwt/jwt/v5"

	"github.com/authworker/authworker/app"
	"github.com/authworker/authworker/client"
	"github.com/authworker/authworker/consumers"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/httpapi"
	"github.com/authworker/authworker/passwords"
	"github.com/authworker/authworker/postgres"
	"github.com/authworker/authworker/producers"
	"github.com/authworker/authworker/redis"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/seal"
	"github.com/authworker/authworker/testenv"
	"github.com/authworker/authworker/tokens"
)

// worker is an authworker running in this process against the real
// services, on topics, a consumer group and a database of its own.
type worker struct {
	cfg  Config
	main *Main
	// logs holds what the worker logged at warning level and above.
	logs *testenv.SyncBuffer
	stop func() // stops the worker; safe to call twice
}

func startWorker(t testing.TB, extraEnv ...string) *worker {
	t.Helper()
	adminBinding := "ops=" + testenv.Name(t, "req") + ".ops"
	env := []string{
		"DATABASE_URL=" + testenv.Database(t),
		"REDIS_URL=" + testenv.RedisURL(t),
		"KAFKA_BOOTSTRAP_SERVERS=" + testenv.KafkaBootstrap(t),
		"HTTP_ADDR=127.0.0.1:0",
		"AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"AUTH_ISSUER=https://auth.test",
		"AUTH_AUDIENCE=api",
		"AUTH_REQUEST_TOPIC=" + testenv.Name(t, "req"),
		"AUTH_RESPONSE_TOPIC=" + testenv.Name(t, "resp"),
		"AUTH_DLQ_TOPIC=" + testenv.Name(t, "dlq"),
		"AUTH_NOTIFICATIONS_TOPIC=" + testenv.Name(t, "notify"),
		"AUTH_EVENTS_TOPIC=" + testenv.Name(t, "events"),
		"AUTH_ADMIN_CLIENTS=ops",
		"AUTH_CLIENT_TOPICS=" + adminBinding,
		"AUTH_CONSUMER_GROUP=" + testenv.Name(t, "group"),
		"AUTH_TOPIC_PARTITIONS=3",
		"AUTH_WORKERS=4",
	}
	for _, kv := range extraEnv {
		if topics, ok := strings.CutPrefix(kv, "AUTH_CLIENT_TOPICS="); ok { // a test's own, beside the admin client's
			kv = "AUTH_CLIENT_TOPICS=" + adminBinding + "," + topics
		}
		env = append(env, kv)
	}
	cfg, err := LoadConfig(env)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Replies.AllowedTopics = []string{cfg.Replies.DefaultTopic, cfg.Replies.DefaultTopic + ".*"}
	logs := &testenv.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, logs), &slog.HandlerOptions{Level: slog.LevelWarn}))
	m := NewMain(cfg, logger)
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Open(ctx); err != nil {
		cancel()
		m.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker stopped with %v", err)
		}
		m.Close()
	})
	t.Cleanup(func() {
		stop()
		topics := []string{cfg.Topics.Request, cfg.Replies.DefaultTopic, cfg.Topics.DeadLetter, cfg.Topics.Notifications, cfg.App.EventsTopic}
		for _, topic := range cfg.Topics.ClientBindings {
			topics = append(topics, topic)
		}
		deleteTopics(t, cfg.Kafka.BootstrapServers, topics...)
	})
	return &worker{cfg: cfg, main: m, logs: logs, stop: stop}
}

func (w *worker) client(t testing.TB) *client.Client {
	t.Helper()
	return w.clientAs(t, "web")
}

// clientAs is a client whose requests name clientID, sent to its own
// request topic when it is bound to one.
func (w *worker) clientAs(t testing.TB, clientID string) *client.Client {
	t.Helper()
	return w.clientOn(t, clientID, w.requestTopic(clientID))
}

// clientOn is a client whose requests name clientID, sent to topic.
func (w *worker) clientOn(t testing.TB, clientID, topic string) *client.Client {
	t.Helper()
	c, err := client.New(context.Background(), client.Config{
		BootstrapServers: w.cfg.Kafka.BootstrapServers,
		ClientID:         clientID,
		RequestTopic:     topic,
		ReplyTopic:       w.cfg.Replies.DefaultTopic,
		Timeout:          30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// requestTopic is the topic clientID's requests go to: its own when it is
// bound to one, else the shared one.
func (w *worker) requestTopic(clientID string) string {
	if topic, ok := w.cfg.Topics.ClientBindings[clientID]; ok {
		return topic
	}
	return w.cfg.Topics.Request
}

const password = "plum kayak violet thunder"

func TestRegisterLoginAndVerifyWithJWKS(t *testing.T) {
	w := startWorker(t)
	c := w.client(t)
	ctx := context.Background()
	email := testenv.Unique("ada") + "@example.com"

	reg, err := c.Register(ctx, email, password)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	res, err := c.Login(ctx, email, password, client.WithIP("192.0.2.10"), client.WithUserAgent("test"))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if res.UserID != reg.UserID {
		t.Errorf("login user %q, registered %q", res.UserID, reg.UserID)
	}
	if len(res.RefreshToken) != 43 {
		t.Errorf("refresh token has %d characters, want 43 (256 bits, base64url)", len(res.RefreshToken))
	}

	// Verify the token as any service would: JWKS over HTTP, a standard
	// JWT library, nothing from this repository.
	key := fetchJWK(t, "http://"+w.main.http.Addr()+"/.well-known/jwks.json")
	var claims struct {
		jwt.RegisteredClaims
		SID      string `json:"sid"`
		ClientID string `json:"client_id"`
	}
	tok, err := jwt.ParseWithClaims(res.AccessToken, &claims, func(tok *jwt.Token) (any, error) {
		if tok.Header["kid"] != key.Kid || tok.Header["typ"] != "at+jwt" {
			t.Errorf("token header %v, want kid %q and typ at+jwt", tok.Header, key.Kid)
		}
		return key.public, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer("https://auth.test"), jwt.WithAudience("api"), jwt.WithExpirationRequired())
	if err != nil || !tok.Valid {
		t.Fatalf("access token does not verify with the JWKS: %v", err)
	}
	if claims.Subject != reg.UserID || claims.SID != res.SessionID || claims.ClientID != "web" || claims.ID == "" || claims.IssuedAt == nil {
		t.Errorf("claims = %+v, want sub %s, sid %s, client_id web, jti and iat", claims, reg.UserID, res.SessionID)
	}
}

func TestLoginFailuresGetTypedReplies(t *testing.T) {
	w := startWorker(t)
	c := w.client(t)
	ctx := context.Background()
	email := testenv.Unique("bob") + "@example.com"
	if _, err := c.Register(ctx, email, password); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		do       func() error
		wantCode domain.Code
	}{
		{"WrongPassword", func() error { _, err := c.Login(ctx, email, "not the right password at all"); return err }, domain.CodeUnauthorized},
		{"UnknownUser", func() error { _, err := c.Login(ctx, "nobody-"+email, password); return err }, domain.CodeUnauthorized},
		{"InvalidEmail", func() error { _, err := c.Login(ctx, "not an email", password); return err }, domain.CodeInvalid},
		{"DuplicateRegistrationLooksNew", func() error { _, err := c.Register(ctx, email, password); return err }, ""},
		{"WeakPassword", func() error { _, err := c.Register(ctx, "x"+email, "short"); return err }, domain.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if got := domain.ErrorCode(err); got != tt.wantCode {
				t.Errorf("error = %v, want code %q", err, tt.wantCode)
			}
		})
	}
}

// TestSpringHeaders speaks the wire contract by hand, as a Spring
// ReplyingKafkaTemplate or a client in another language would.
func TestSpringHeaders(t *testing.T) {
	w := startWorker(t)
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, w.cfg.Kafka.BootstrapServers)
	email := testenv.Unique("eve") + "@example.com"

	correlation := []byte{0xde, 0xad, 0x00, 0xbe, 0xef, 0xff, 0x01}
	partition := make([]byte, 4)
	binary.BigEndian.PutUint32(partition, 2)
	value := encodeRequest(t, codec, &schemas.Login{Email: email, Password: "wrong password for nobody"})
	produce(t, p, w.cfg.Topics.Request, email, value,
		kafka.Header{Key: "kafka_replyTopic", Value: []byte(w.cfg.Replies.DefaultTopic)},
		kafka.Header{Key: "kafka_correlationId", Value: correlation},
		kafka.Header{Key: "kafka_replyPartition", Value: partition},
	)

	msg := consumeOne(t, w.cfg.Kafka.BootstrapServers, w.cfg.Replies.DefaultTopic, func(m *kafka.Message) bool { return true })
	if msg.TopicPartition.Partition != 2 {
		t.Errorf("reply on partition %d, want 2 from kafka_replyPartition", msg.TopicPartition.Partition)
	}
	if got := headerValue(msg, "kafka_correlationId"); string(got) != string(correlation) {
		t.Errorf("correlation id %x, want %x byte for byte", got, correlation)
	}
	if got := string(headerValue(msg, "auth_error")); got != "unauthorized" {
		t.Errorf("auth_error header %q, want unauthorized", got)
	}
	resp, err := codec.DecodeResponse(context.Background(), msg.Value)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != schemas.StatusUnauthorized {
		t.Errorf("status %s, want UNAUTHORIZED", resp.Status)
	}
	if e, ok := resp.Result.(*schemas.Error); !ok || e.Message != "invalid email or password" {
		t.Errorf("result %#v, want the generic credentials error", resp.Result)
	}
}

func TestUnanswerableRecordsGoToDeadLetters(t *testing.T) {
	w := startWorker(t)
	c := w.client(t)
	p := newProducer(t, w.cfg.Kafka.BootstrapServers)
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}

	produce(t, p, w.cfg.Topics.Request, "garbage", []byte("this is not avro"),
		kafka.Header{Key: "kafka_replyTopic", Value: []byte(w.cfg.Replies.DefaultTopic)})
	produce(t, p, w.cfg.Topics.Request, "elsewhere", encodeRequest(t, codec, &schemas.Login{Email: "a@example.com", Password: "x"}),
		kafka.Header{Key: "kafka_replyTopic", Value: []byte("attacker.topic")},
		kafka.Header{Key: "kafka_correlationId", Value: []byte("c1")})

	reasons := map[string]*kafka.Message{}
	consumeOne(t, w.cfg.Kafka.BootstrapServers, w.cfg.Topics.DeadLetter, func(m *kafka.Message) bool {
		reasons[string(headerValue(m, "auth_dlq_reason"))] = m
		return len(reasons) == 2
	})
	m := reasons["undecodable"]
	if m == nil || string(headerValue(m, "kafka_dlt-original-topic")) != w.cfg.Topics.Request {
		t.Fatalf("undecodable record not dead-lettered with its origin: %v", m)
	}
	// Dead letters are sealed under the KEK: the request with a password
	// is not on the dead-letter topic in the clear.
	foreign := reasons["reply_topic_not_allowed"]
	if foreign == nil {
		t.Fatal("request with a foreign reply topic not dead-lettered")
	}
	if bytes.Contains(foreign.Value, []byte("a@example.com")) || bytes.Contains(foreign.Key, []byte("elsewhere")) {
		t.Error("a dead letter holds the request in the clear")
	}
	box, err := seal.NewBox(w.cfg.Tokens.KeyEncryptionKey, "dead letters")
	if err != nil {
		t.Fatal(err)
	}
	origin := schemas.DeadLetterAD(w.cfg.Topics.Request, int32(binary.BigEndian.Uint32(headerValue(m, "kafka_dlt-original-partition"))),
		int64(binary.BigEndian.Uint64(headerValue(m, "kafka_dlt-original-offset"))), "value")
	if value, err := box.Open(m.Value, origin); err != nil || string(value) != "this is not avro" {
		t.Errorf("sealed dead letter opens to %q, %v; want the record unchanged", value, err)
	}

	// The consumer moved on: the next request is answered.
	email := testenv.Unique("next") + "@example.com"
	if _, err := c.Register(context.Background(), email, password); err != nil {
		t.Fatalf("request after dead letters: %v", err)
	}
}

// TestUndeliverableRepliesDoNotHoldBackTheKey: a request whose reply can
// never be delivered (a reply partition its topic does not have, an
// allowed reply topic that does not exist) goes to the dead-letter topic
// instead of being retried for ever, which held back every later request
// of its key: one user's requests, by anyone allowed to produce one.
func TestUndeliverableRepliesDoNotHoldBackTheKey(t *testing.T) {
	w := startWorker(t)
	c := w.client(t)
	p := newProducer(t, w.cfg.Kafka.BootstrapServers)
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	email := testenv.Unique("victim") + "@example.com"
	login := encodeRequest(t, codec, &schemas.Login{Email: email, Password: password})
	produce(t, p, w.cfg.Topics.Request, email, login,
		kafka.Header{Key: "kafka_replyTopic", Value: []byte(w.cfg.Replies.DefaultTopic)},
		kafka.Header{Key: "kafka_replyPartition", Value: schemas.PartitionHeader(7)},
		kafka.Header{Key: "kafka_correlationId", Value: []byte("c1")})
	produce(t, p, w.cfg.Topics.Request, email, login,
		kafka.Header{Key: "kafka_replyTopic", Value: []byte(w.cfg.Replies.DefaultTopic + ".nosuch")},
		kafka.Header{Key: "kafka_correlationId", Value: []byte("c2")})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Register(ctx, email, password); err != nil {
		t.Fatalf("a request of the same key after two undeliverable ones: %v", err)
	}
	var dead []*kafka.Message
	consumeOne(t, w.cfg.Kafka.BootstrapServers, w.cfg.Topics.DeadLetter, func(m *kafka.Message) bool {
		dead = append(dead, m)
		return len(dead) == 2
	})
	for _, m := range dead {
		if reason := string(headerValue(m, "auth_dlq_reason")); reason != "reply_undeliverable" {
			t.Errorf("dead letter reason %q, want reply_undeliverable", reason)
		}
	}
}

// TestReadyz: a started worker becomes ready once the group assigned it
// its partitions (TestReadyzWaitsForAssignment shows it is not before).
// TestReadyz: a started worker becomes ready once the group assigned it
// its partitions (TestReadyzWaitsForAssignment shows it is not before).
func TestReadyz(t *testing.T) {
	w := startWorker(t)
	waitFor(t, "GET /readyz to answer 200", func() bool { return ready(w.main.http.Addr()) })
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"MissingKEK", nil, "AUTH_KEY_ENCRYPTION_KEY"},
		{"ShortKEK", []string{"AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 16))}, "AUTH_KEY_ENCRYPTION_KEY"},
		{"BadOlderKEK", []string{"AUTH_KEY_ENCRYPTION_KEY=" + kekOf(1) + ",not-base64"}, "AUTH_KEY_ENCRYPTION_KEY entry 2 of 2 is not valid base64"},
		{"KEKListedTwice", []string{"AUTH_KEY_ENCRYPTION_KEY=" + kekOf(1) + "," + kekOf(2) + "," + kekOf(1)}, "AUTH_KEY_ENCRYPTION_KEY entry 3 of 3 repeats entry 1"},
		{"EmptyKEKEntry", []string{"AUTH_KEY_ENCRYPTION_KEY=" + kekOf(1) + ","}, "AUTH_KEY_ENCRYPTION_KEY entry 2 of 2 is empty"},
		{"BadDuration", []string{"AUTH_ACCESS_TOKEN_TTL=soon"}, "AUTH_ACCESS_TOKEN_TTL"},
		{"NegativeWorkers", []string{"AUTH_WORKERS=-1"}, "AUTH_WORKERS"},
		{"BadLogLevel", []string{"LOG_LEVEL=loud"}, "LOG_LEVEL"},
		{"UnknownAlgorithm", []string{"AUTH_SIGNING_ALG=HS256"}, "AUTH_SIGNING_ALG"},
		{"UnknownExtraAlgorithm", []string{"AUTH_SIGNING_ALGS=EdDSA,none"}, "AUTH_SIGNING_ALGS"},
		{"UnknownClientAlgorithm", []string{"AUTH_CLIENT_SIGNING_ALGS=web=PS256"}, "AUTH_CLIENT_SIGNING_ALGS"},
		{"ClientAlgorithmWithoutAlgorithm", []string{"AUTH_CLIENT_SIGNING_ALGS=web"}, "AUTH_CLIENT_SIGNING_ALGS"},
		{"ClientGivenTwoAlgorithms", []string{"AUTH_CLIENT_SIGNING_ALGS=web=EdDSA,web=RS256"}, "AUTH_CLIENT_SIGNING_ALGS"},
		{"ParallelismOverflows", []string{"AUTH_ARGON2_PARALLELISM=256"}, "AUTH_ARGON2_PARALLELISM"},
		{"MemoryOverflows", []string{"AUTH_ARGON2_MEMORY_KIB=4294967296"}, "AUTH_ARGON2_MEMORY_KIB"},
		{"PartitionsOverflow", []string{"AUTH_TOPIC_PARTITIONS=2147483648"}, "AUTH_TOPIC_PARTITIONS"},
		{"LockAfterBeyondNIST", []string{"AUTH_LOCK_AFTER=101"}, "AUTH_LOCK_AFTER"},
		{"NotANumber", []string{"AUTH_WORKERS=eight"}, "AUTH_WORKERS"},
		{"EmptyQueue", []string{"AUTH_QUEUE_DEPTH=0"}, "AUTH_QUEUE_DEPTH"},
		{"BindingWithoutTopic", []string{"AUTH_CLIENT_TOPICS=web"}, "AUTH_CLIENT_TOPICS"},
		{"ClientBoundTwice", []string{"AUTH_CLIENT_TOPICS=web=a,web=b"}, "AUTH_CLIENT_TOPICS"},
		{"AdminClientUnbound", []string{"AUTH_ADMIN_CLIENTS=ops,support", "AUTH_CLIENT_TOPICS=ops=auth.request.ops"}, "AUTH_ADMIN_CLIENTS entry support is not bound to a request topic of its own in AUTH_CLIENT_TOPICS"},
		{"IssuerNotAURL", []string{"AUTH_ISSUER=authworker"}, "AUTH_ISSUER"},
		{"IssuerInTheClear", []string{"AUTH_ISSUER=http://auth.example.com"}, "AUTH_ISSUER"},
		{"IssuerWithQuery", []string{"AUTH_ISSUER=https://auth.example.com/?tenant=a"}, "AUTH_ISSUER"},
		{"JWKSURIInTheClear", []string{"AUTH_JWKS_URI=http://keys.example.com/jwks.json"}, "AUTH_JWKS_URI"},
		{"JWKSURIRelative", []string{"AUTH_JWKS_URI=/.well-known/jwks.json"}, "AUTH_JWKS_URI"},
		{"JWKSMaxAgeUnderASecond", []string{"AUTH_JWKS_MAX_AGE=500ms"}, "AUTH_JWKS_MAX_AGE"},
		{"JWKSMaxAgeNotADuration", []string{"AUTH_JWKS_MAX_AGE=soon"}, "AUTH_JWKS_MAX_AGE"},
		{"HashSlotsZero", []string{"AUTH_HASH_SLOTS=0"}, "AUTH_HASH_SLOTS"},
		{"HashQueueNegative", []string{"AUTH_HASH_QUEUE=-1"}, "AUTH_HASH_QUEUE"},
		{"HashMaxWaitNotADuration", []string{"AUTH_HASH_MAX_WAIT=soon"}, "AUTH_HASH_MAX_WAIT"},
		{"HashesHoldEveryWorker", []string{"AUTH_WORKERS=8", "AUTH_HASH_SLOTS=4", "AUTH_HASH_QUEUE=4"}, "AUTH_WORKERS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadConfig error = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

// kekOf is a key-encryption key of 32 bytes b, in base64 as listed in
// AUTH_KEY_ENCRYPTION_KEY.
func kekOf(b byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, seal.KeySize))
}

// TestKEKList: the first key of AUTH_KEY_ENCRYPTION_KEY seals, every one
// opens, and the digests are keyed by the last, so that putting a new key
// in front changes none.
func TestKEKList(t *testing.T) {
	tests := []struct {
		name       string
		list       string
		first      byte
		older      []byte
		digestedBy byte
	}{
		{"One", kekOf(1), 1, nil, 1},
		{"NewInFront", kekOf(2) + "," + kekOf(1), 2, []byte{1}, 1},
		{"Three", kekOf(3) + ", " + kekOf(2) + " ," + kekOf(1), 3, []byte{2, 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig([]string{"AUTH_KEY_ENCRYPTION_KEY=" + tt.list})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Tokens.KeyEncryptionKey[0] != tt.first {
				t.Errorf("sealing key %d, want %d", cfg.Tokens.KeyEncryptionKey[0], tt.first)
			}
			var older []byte
			for _, k := range cfg.Tokens.OlderKeyEncryptionKeys {
				older = append(older, k[0])
			}
			if !bytes.Equal(older, tt.older) {
				t.Errorf("older keys %v, want %v", older, tt.older)
			}
			if got := cfg.digestKey()[0]; got != tt.digestedBy {
				t.Errorf("digests keyed by key %d, want %d", got, tt.digestedBy)
			}
			// Every box opens what the oldest key sealed.
			old, err := seal.NewBox(bytes.Repeat([]byte{1}, seal.KeySize), "outcomes")
			if err != nil {
				t.Fatal(err)
			}
			box, err := cfg.box("outcomes")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := box.Open(old.Seal([]byte("reply"), nil), nil); err != nil {
				t.Errorf("a value sealed under the oldest key does not open: %v", err)
			}
		})
	}
}

// TestKafkaPassthrough: KAFKA_* variables reach the clients that take
// them: shared properties both, a consumer's or a producer's own only that
// side (librdkafka warns of a property its client ignores), and the
// KAFKA_CONSUMER_* and KAFKA_PRODUCER_* ones their side, over KAFKA_*.
func TestKafkaPassthrough(t *testing.T) {
	cfg, err := LoadConfig([]string{
		"AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"KAFKA_SECURITY_PROTOCOL=SASL_SSL",
		"KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
		"KAFKA_SESSION_TIMEOUT_MS=6000",
		"KAFKA_LINGER_MS=5",
		"KAFKA_CONSUMER_CLIENT_ID=reader",
		"KAFKA_PRODUCER_SASL_MECHANISM=PLAIN",
		"KAFKA_HEAP_OPTS=-Xmx1g",
		"KAFKA_BOOTSTRAP_SERVERS=broker:9093",
	})
	if err != nil {
		t.Fatal(err)
	}
	wantConsumer := map[string]string{
		"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
		"session.timeout.ms": "6000", "client.id": "reader",
	}
	wantProducer := map[string]string{
		"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "linger.ms": "5",
	}
	if !maps.Equal(cfg.Kafka.Consumer, wantConsumer) {
		t.Errorf("consumer settings = %v, want %v", cfg.Kafka.Consumer, wantConsumer)
	}
	if !maps.Equal(cfg.Kafka.Producer, wantProducer) {
		t.Errorf("producer settings = %v, want %v", cfg.Kafka.Producer, wantProducer)
	}
	if cfg.Kafka.BootstrapServers != "broker:9093" {
		t.Errorf("bootstrap = %q, want broker:9093", cfg.Kafka.BootstrapServers)
	}
}

// Helpers.

type jwk struct {
	Kid    string
	public *ecdsa.PublicKey
}

func fetchJWK(t *testing.T, url string) jwk {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set struct {
		Keys []struct {
			Kty, Crv, X, Y, Kid, Alg, Use string
		} `json:"keys"`
	}
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].Kty != "EC" || set.Keys[0].Crv != "P-256" || set.Keys[0].Alg != "ES256" {
		t.Fatalf("JWKS = %+v, want one P-256 key (the default ES256)", set)
	}
	x, errX := base64.RawURLEncoding.DecodeString(set.Keys[0].X)
	y, errY := base64.RawURLEncoding.DecodeString(set.Keys[0].Y)
	if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
		t.Fatalf("JWKS key coordinates do not decode to 32 bytes each: %v %v", errX, errY)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		t.Fatal(err)
	}
	return jwk{Kid: set.Keys[0].Kid, public: pub}
}

func encodeRequest(t *testing.T, codec *schemas.Codec, op schemas.Operation) []byte {
	t.Helper()
	v, err := codec.EncodeRequest(&schemas.Request{
		RequestID: testenv.Unique("req-"),
		Client:    schemas.ClientMetadata{ClientID: "spring"},
		Operation: op,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func newProducer(t *testing.T, bootstrap string) *producers.Producer {
	t.Helper()
	p, err := producers.NewProducer(producers.Config{BootstrapServers: bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func produce(t *testing.T, p *producers.Producer, topic, key string, value []byte, headers ...kafka.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Send(ctx, &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            []byte(key), Value: value, Headers: headers,
	}); err != nil {
		t.Fatal(err)
	}
}

// consumeOne reads topic from the beginning until done says enough, and
// returns the last record read.
func consumeOne(t *testing.T, bootstrap, topic string, done func(*kafka.Message) bool) *kafka.Message {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": testenv.Name(t, "reader"),
		"auto.offset.reset": "earliest", "enable.auto.commit": false,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe(topic, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		msg, err := c.ReadMessage(time.Second)
		var kerr kafka.Error
		if errors.As(err, &kerr) && kerr.IsTimeout() {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if done(msg) {
			return msg
		}
	}
	t.Fatalf("nothing expected arrived on %s within 30s", topic)
	return nil
}

func headerValue(m *kafka.Message, key string) []byte {
	for _, h := range m.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// deleteTopics removes a test's topics from the shared broker.
func deleteTopics(t testing.TB, bootstrap string, topics ...string) {
	t.Helper()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		t.Errorf("delete topics: %v", err)
		return
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.DeleteTopics(ctx, topics); err != nil {
		t.Errorf("delete topics: %v", err)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

// TestREADMEListsEverySetting keeps the README's configuration table true:
// a row per setting, with its default.
func TestREADMEListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings() {
		row := "| `" + s.name + "` | "
		i := strings.Index(string(readme), row)
		if i < 0 {
			t.Errorf("README.md has no configuration row for %s", s.name)
			continue
		}
		line, _, _ := strings.Cut(string(readme[i+len(row):]), "\n")
		def, _, _ := strings.Cut(line, " |")
		if s.def != "" && def != "`"+s.def+"`" {
			t.Errorf("README.md gives %s the default %s, want `%s`", s.name, def, s.def)
		}
	}
}

// TestDefaultsComeFromTheirPackages: an empty environment yields the
// packages' own defaults.
func TestDefaultsComeFromTheirPackages(t *testing.T) {
	cfg, err := LoadConfig([]string{"AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32))})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"argon2 memory", cfg.Hasher.MemoryKiB, uint32(passwords.DefaultMemoryKiB)},
		{"argon2 parallelism", cfg.Hasher.Parallelism, uint8(passwords.DefaultParallelism)},
		{"workers", cfg.Pool.Workers, consumers.DefaultWorkers},
		{"lock after", cfg.Throttle.LockAfter, redis.DefaultLockAfter},
		{"access TTL", cfg.Tokens.AccessTTL, tokens.DefaultAccessTTL},
		{"session TTL", cfg.Login.SessionTTL, handlers.DefaultSessionTTL},
		{"retry window", cfg.App.RetryWindow, app.DefaultRetryWindow},
		{"reply topic", cfg.Replies.DefaultTopic, schemas.DefaultReplyTopic},
		{"JWKS max-age", cfg.HTTP.JWKSMaxAge, httpapi.DefaultJWKSMaxAge},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestLibpqVariables connects with PG* variables when DATABASE_URL is unset.
func TestLibpqVariables(t *testing.T) {
	u, err := url.Parse(testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	t.Setenv("DATABASE_URL", "")
	t.Setenv("PGHOST", u.Hostname())
	t.Setenv("PGPORT", u.Port())
	t.Setenv("PGUSER", u.User.Username())
	t.Setenv("PGPASSWORD", password)
	t.Setenv("PGDATABASE", strings.TrimPrefix(u.Path, "/"))
	t.Setenv("PGSSLMODE", u.Query().Get("sslmode"))
	cfg, err := LoadConfig([]string{"AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32))})
	if err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(context.Background(), postgres.Config{URL: cfg.Postgres.URL})
	if err != nil {
		t.Fatalf("connect with PG* variables: %v", err)
	}
	db.Close()
}

// BenchmarkLoginRoundTrip measures a Login as a service sees it: request
// produced, handled by the worker (argon2id at the default cost, session
// stored, token signed), reply consumed.
func BenchmarkLoginRoundTrip(b *testing.B) {
	w := startWorker(b)
	c := w.client(b)
	ctx := context.Background()
	email := testenv.Unique("bench") + "@example.com"
	if _, err := c.Register(ctx, email, password); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Login(ctx, email, password); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOpenErrorsNameTheVariable starts the worker with one setting wrong.
func TestOpenErrorsNameTheVariable(t *testing.T) {
	kek := "AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"BadDatabaseURL", []string{"DATABASE_URL=postgres://%zz"}, "DATABASE_URL"},
		{"BadRedisURL", []string{"DATABASE_URL=" + testenv.Database(t), "REDIS_URL=http://nowhere"}, "REDIS_URL"},
		{"BadKafkaSetting", []string{"DATABASE_URL=" + testenv.Database(t), "REDIS_URL=" + testenv.RedisURL(t),
			"KAFKA_BOOTSTRAP_SERVERS=" + testenv.KafkaBootstrap(t), "KAFKA_NO_SUCH_PROPERTY=1"}, "KAFKA_"},
		{"BadEventSource", []string{"DATABASE_URL=" + testenv.Database(t), "REDIS_URL=" + testenv.RedisURL(t),
			"KAFKA_BOOTSTRAP_SERVERS=" + testenv.KafkaBootstrap(t), "AUTH_EVENT_SOURCE=not a uri"}, "AUTH_EVENT_SOURCE"},
		{"JWKSURIOnHealthz", []string{"DATABASE_URL=" + testenv.Database(t), "REDIS_URL=" + testenv.RedisURL(t),
			"KAFKA_BOOTSTRAP_SERVERS=" + testenv.KafkaBootstrap(t), "AUTH_JWKS_URI=http://localhost:8080/healthz"}, "AUTH_JWKS_URI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(append(tt.env, kek))
			if err != nil {
				t.Fatal(err)
			}
			m := NewMain(cfg, slog.New(slog.DiscardHandler))
			defer m.Close()
			err = m.Open(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open error = %v, want one naming %s", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "authworker:authworker") {
				t.Errorf("Open error %q shows a password", err)
			}
		})
	}
}

// TestRequestsAreIdempotent sends requests again with the same request id,
// as a redelivery after a crash or a client's retry would: they get the
// first reply again and nothing is done twice.
func TestRequestsAreIdempotent(t *testing.T) {
	w := startWorker(t)
	c := w.client(t)
	ctx := context.Background()
	email := testenv.Unique("ida") + "@example.com"

	first, err := c.Register(ctx, email, password, client.WithRequestID("register-1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Register(ctx, email, password, client.WithRequestID("register-1"))
	if err != nil {
		t.Fatalf("register again with the same request id: %v, want the first reply", err)
	}
	if again.UserID != first.UserID {
		t.Errorf("replayed user id %q, first %q", again.UserID, first.UserID)
	}
	if other, err := c.Register(ctx, email, password, client.WithRequestID("register-2")); err != nil || other.UserID == first.UserID {
		t.Errorf("register with a new request id: %v, want the reply of a new account with another id", err)
	}

	login1, err := c.Login(ctx, email, password, client.WithRequestID("login-1"))
	if err != nil {
		t.Fatal(err)
	}
	login1Again, err := c.Login(ctx, email, password, client.WithRequestID("login-1"))
	if err != nil {
		t.Fatal(err)
	}
	if login1Again.SessionID != login1.SessionID || login1Again.RefreshToken != login1.RefreshToken || login1Again.AccessToken != login1.AccessToken {
		t.Error("a replayed login opened another session, want the first reply")
	}
	login2, err := c.Login(ctx, email, password, client.WithRequestID("login-2"))
	if err != nil {
		t.Fatal(err)
	}
	if login2.SessionID == login1.SessionID {
		t.Error("a new login request reused the session of another")
	}

	// A failure is an outcome too: the same wrong-password request is
	// answered from the store and counted once.
	for range 2 {
		if _, err := c.Login(ctx, email, "not the password at all", client.WithRequestID("login-bad")); domain.ErrorCode(err) != domain.CodeUnauthorized {
			t.Fatalf("wrong password: %v, want unauthorized", err)
		}
	}
}

// TestRegisterRevealsConflictWhenConfigured: a deployment whose callers are
// all trusted may have a taken address answered CONFLICT.
func TestRegisterRevealsConflictWhenConfigured(t *testing.T) {
	w := startWorker(t, "AUTH_REGISTER_REVEALS_CONFLICT=true")
	c := w.client(t)
	email := testenv.Unique("cleo") + "@example.com"
	if _, err := c.Register(context.Background(), email, password); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(context.Background(), email, password); domain.ErrorCode(err) != domain.CodeConflict {
		t.Errorf("second registration: %v, want conflict", err)
	}
}

// TestClientBoundToItsTopic: with AUTH_CLIENT_TOPICS, the worker also reads
// the bound client's own request topic, answers that client there, and
// refuses its client id on the shared topic.
func TestClientBoundToItsTopic(t *testing.T) {
	bound := testenv.Name(t, "req_web")
	w := startWorker(t, "AUTH_CLIENT_TOPICS=web="+bound)
	t.Cleanup(func() { deleteTopics(t, w.cfg.Kafka.BootstrapServers, bound) })
	email := testenv.Unique("dee") + "@example.com"

	shared := w.clientOn(t, "web", w.cfg.Topics.Request)
	if _, err := shared.Register(context.Background(), email, password); domain.ErrorCode(err) != domain.CodeInvalid {
		t.Errorf("bound client id on the shared topic: %v, want invalid", err)
	}
	own, err := client.New(context.Background(), client.Config{
		BootstrapServers: w.cfg.Kafka.BootstrapServers, ClientID: "web",
		RequestTopic: bound, ReplyTopic: w.cfg.Replies.DefaultTopic, Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(own.Close)
	if _, err := own.Register(context.Background(), email, password); err != nil {
		t.Errorf("bound client on its own topic: %v, want answered", err)
	}
}
