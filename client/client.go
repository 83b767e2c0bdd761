// Package client is the Go SDK for services that authenticate users through
// authworker: it produces Avro requests on auth.request with the Spring
// request/reply headers and waits for the correlated reply.
//
//	c, err := client.New(ctx, client.Config{BootstrapServers: "kafka:9092", ClientID: "web"})
//	...
//	res, err := c.Login(ctx, "ada@example.com", password, client.WithIP(ip))
//	if domain.ErrorCode(err) == domain.CodeUnauthorized { ... }
//
// A Client reads the whole reply topic from the moment it starts and keeps
// the replies whose correlation id it is waiting for; give each service its
// own reply topic (allowed by the worker's AUTH_REPLY_TOPICS) so that
// services do not read each other's replies.
package client

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/schemas"
)

// Config configures a Client.
type Config struct {
	BootstrapServers string
	// ClientID names the calling service; it becomes the client_id claim.
	ClientID string
	// RequestTopic defaults to "auth.request".
	RequestTopic string
	// ReplyTopic defaults to "auth.response". It must exist.
	ReplyTopic string
	// ReplyPartition, when set, asks replies on that partition only and
	// reads only it. By default replies may come on any partition.
	ReplyPartition *int32
	// Timeout bounds a request whose context has no deadline. Default 10s.
	Timeout time.Duration
	// Kafka holds further librdkafka settings (security, SASL, TLS).
	Kafka  map[string]string
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.RequestTopic == "" {
		c.RequestTopic = "auth.request"
	}
	if c.ReplyTopic == "" {
		c.ReplyTopic = "auth.response"
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.BootstrapServers == "":
		return errors.New("client: bootstrap servers are required")
	case c.ClientID == "":
		return errors.New("client: a client id is required")
	case c.Timeout <= 0:
		return errors.New("client: timeout must be positive")
	}
	return nil
}

// Client sends requests and waits for their replies. It is safe for
// concurrent use.
type Client struct {
	cfg      Config
	codec    *schemas.Codec
	producer *kafka.Producer
	consumer *kafka.Consumer

	mu      sync.Mutex
	pending map[string]chan *kafka.Message

	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// New connects to Kafka and starts reading the reply topic at its end, so
// every reply to a request sent after New returns is seen.
func New(ctx context.Context, cfg Config) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		return nil, err
	}
	producer, err := newProducer(cfg)
	if err != nil {
		return nil, err
	}
	conf := kafka.ConfigMap{
		"bootstrap.servers":  cfg.BootstrapServers,
		"group.id":           "authworker-client", // required by librdkafka; unused: partitions are assigned, never committed
		"enable.auto.commit": false,
		"client.id":          cfg.ClientID,
	}
	for k, v := range cfg.Kafka {
		conf[k] = v
	}
	consumer, err := kafka.NewConsumer(&conf)
	if err != nil {
		producer.Close()
		return nil, fmt.Errorf("client: create reply consumer: %w", err)
	}
	c := &Client{cfg: cfg, codec: codec, producer: producer, consumer: consumer, pending: map[string]chan *kafka.Message{}, done: make(chan struct{})}
	if err := c.assignReplyPartitions(ctx); err != nil {
		consumer.Close()
		producer.Close()
		return nil, err
	}
	loopCtx, stop := context.WithCancel(context.Background())
	c.stop = stop
	go c.readReplies(loopCtx)
	return c, nil
}

// assignReplyPartitions assigns the reply partitions at their current high
// watermark, resolved now rather than lazily.
func (c *Client) assignReplyPartitions(ctx context.Context) error {
	topic := c.cfg.ReplyTopic
	var partitions []int32
	if c.cfg.ReplyPartition != nil {
		partitions = []int32{*c.cfg.ReplyPartition}
	} else {
		md, err := c.consumer.GetMetadata(&topic, false, int(timeout(ctx, 10*time.Second).Milliseconds()))
		if err != nil {
			return fmt.Errorf("client: reply topic %s: %w", topic, err)
		}
		t, ok := md.Topics[topic]
		if !ok || t.Error.Code() != kafka.ErrNoError || len(t.Partitions) == 0 {
			return fmt.Errorf("client: reply topic %s does not exist", topic)
		}
		for _, p := range t.Partitions {
			partitions = append(partitions, p.ID)
		}
	}
	assignment := make([]kafka.TopicPartition, 0, len(partitions))
	for _, p := range partitions {
		high, err := c.highWatermark(ctx, topic, p)
		if err != nil {
			return fmt.Errorf("client: reply topic %s partition %d: %w", topic, p, err)
		}
		assignment = append(assignment, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.Offset(high)})
	}
	if err := c.consumer.Assign(assignment); err != nil {
		return fmt.Errorf("client: assign reply partitions: %w", err)
	}
	return nil
}

// highWatermark returns the offset the next record of a partition will get.
// A topic created moments ago may not have a leader yet: that is retried
// until ctx ends.
func (c *Client) highWatermark(ctx context.Context, topic string, partition int32) (int64, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	backoff := 50 * time.Millisecond
	for {
		_, high, err := c.consumer.QueryWatermarkOffsets(topic, partition, int(timeout(ctx, 10*time.Second).Milliseconds()))
		var kerr kafka.Error
		if err == nil || !errors.As(err, &kerr) || !leaderPending(kerr.Code()) {
			return high, err
		}
		select {
		case <-ctx.Done():
			return 0, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// leaderPending reports errors of a partition whose leader is not known yet.
func leaderPending(code kafka.ErrorCode) bool {
	switch code {
	case kafka.ErrNotLeaderForPartition, kafka.ErrLeaderNotAvailable, kafka.ErrUnknownTopicOrPart, kafka.ErrUnknownPartition:
		return true
	}
	return false
}

func (c *Client) readReplies(ctx context.Context) {
	defer close(c.done)
	for ctx.Err() == nil {
		switch e := c.consumer.Poll(100).(type) {
		case *kafka.Message:
			id, ok := header(e.Headers, schemas.HeaderCorrelationID)
			if !ok {
				continue
			}
			c.mu.Lock()
			ch, ok := c.pending[string(id)]
			delete(c.pending, string(id))
			c.mu.Unlock()
			if ok {
				ch <- e
			}
		case kafka.Error:
			c.cfg.Logger.Warn("reply consumer error", "err", e)
		}
	}
}

// Close stops reading replies and closes the connections. Requests waiting
// for a reply fail. It is safe to call more than once.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		c.stop()
		<-c.done
		c.consumer.Close()
		c.producer.Flush(int(c.cfg.Timeout.Milliseconds()))
		c.producer.Close()
	})
}

// RequestOption adds client metadata to a request.
type RequestOption func(*schemas.Request)

// WithIP names the end user's IP address, used for per-source throttling.
func WithIP(ip string) RequestOption {
	return func(r *schemas.Request) { r.Client.IP = &ip }
}

// WithUserAgent names the end user's user agent.
func WithUserAgent(ua string) RequestOption {
	return func(r *schemas.Request) { r.Client.UserAgent = &ua }
}

// WithRequestID sets the idempotency key; by default each call draws one.
func WithRequestID(id string) RequestOption {
	return func(r *schemas.Request) { r.RequestID = id }
}

// RegisterResult is a new account.
type RegisterResult = schemas.RegisterResult

// LoginResult is an opened session and its tokens.
type LoginResult = schemas.LoginResult

// Register creates an account.
func (c *Client) Register(ctx context.Context, email, password string, opts ...RequestOption) (*RegisterResult, error) {
	resp, err := c.Do(ctx, subjectKey(email), &schemas.Register{Email: email, Password: password}, opts...)
	if err != nil {
		return nil, err
	}
	return result[*schemas.RegisterResult](resp)
}

// Login verifies credentials and opens a session.
func (c *Client) Login(ctx context.Context, email, password string, opts ...RequestOption) (*LoginResult, error) {
	resp, err := c.Do(ctx, subjectKey(email), &schemas.Login{Email: email, Password: password}, opts...)
	if err != nil {
		return nil, err
	}
	return result[*schemas.LoginResult](resp)
}

// IntrospectResult is whether a token is active and, when it is, its
// claims (RFC 7662).
type IntrospectResult = schemas.IntrospectResult

// Refresh rotates a refresh token: the reply is a new pair for the same
// session, and the old refresh token is spent. Presenting a spent token
// again ends the session.
func (c *Client) Refresh(ctx context.Context, refreshToken string, opts ...RequestOption) (*LoginResult, error) {
	resp, err := c.Do(ctx, tokenKey(refreshToken), &schemas.Refresh{RefreshToken: refreshToken}, opts...)
	if err != nil {
		return nil, err
	}
	return result[*schemas.LoginResult](resp)
}

// LogoutWithRefreshToken ends the session of a refresh token.
func (c *Client) LogoutWithRefreshToken(ctx context.Context, refreshToken string, opts ...RequestOption) error {
	return c.call(ctx, tokenKey(refreshToken), &schemas.Logout{RefreshToken: &refreshToken}, opts)
}

// LogoutWithAccessToken ends the session of an access token.
func (c *Client) LogoutWithAccessToken(ctx context.Context, accessToken string, opts ...RequestOption) error {
	return c.call(ctx, tokenKey(accessToken), &schemas.Logout{AccessToken: &accessToken}, opts)
}

// LogoutAll ends every session of the access token's user.
func (c *Client) LogoutAll(ctx context.Context, accessToken string, opts ...RequestOption) error {
	return c.call(ctx, tokenKey(accessToken), &schemas.LogoutAll{AccessToken: accessToken}, opts)
}

// Introspect asks whether a token (access or refresh) is active. hint,
// "access_token", "refresh_token" or empty, only saves a lookup.
func (c *Client) Introspect(ctx context.Context, token, hint string, opts ...RequestOption) (*IntrospectResult, error) {
	op := &schemas.Introspect{Token: token}
	if hint != "" {
		op.TokenTypeHint = &hint
	}
	// No key: introspections need no order, and spread over partitions.
	resp, err := c.Do(ctx, "", op, opts...)
	if err != nil {
		return nil, err
	}
	return result[*schemas.IntrospectResult](resp)
}

// ChangePassword sets a new password for the access token's user, who
// must give the current one; every other session of the user ends.
func (c *Client) ChangePassword(ctx context.Context, accessToken, currentPassword, newPassword string, opts ...RequestOption) error {
	return c.call(ctx, tokenKey(accessToken), &schemas.ChangePassword{
		AccessToken: accessToken, CurrentPassword: currentPassword, NewPassword: newPassword,
	}, opts)
}

// RequestPasswordReset asks for a reset code to be sent to the address, if
// it has an account; the reply is the same either way.
func (c *Client) RequestPasswordReset(ctx context.Context, email string, opts ...RequestOption) error {
	return c.call(ctx, subjectKey(email), &schemas.RequestPasswordReset{Email: email}, opts)
}

// ResetPassword sets a new password with a reset code; every session of
// the user ends.
func (c *Client) ResetPassword(ctx context.Context, email, code, newPassword string, opts ...RequestOption) error {
	return c.call(ctx, subjectKey(email), &schemas.ResetPassword{Email: email, Code: code, NewPassword: newPassword}, opts)
}

// RequestEmailVerification asks for a verification code to be sent to the
// address, if it has an unverified account; the reply is the same either
// way.
func (c *Client) RequestEmailVerification(ctx context.Context, email string, opts ...RequestOption) error {
	return c.call(ctx, subjectKey(email), &schemas.RequestEmailVerification{Email: email}, opts)
}

// VerifyEmail proves the address with a verification code.
func (c *Client) VerifyEmail(ctx context.Context, email, code string, opts ...RequestOption) error {
	return c.call(ctx, subjectKey(email), &schemas.VerifyEmail{Email: email, Code: code}, opts)
}

// DisableUser stops a user from logging in and ends their sessions. Only
// admin clients may.
func (c *Client) DisableUser(ctx context.Context, userID string, opts ...RequestOption) error {
	return c.call(ctx, userID, &schemas.DisableUser{UserID: userID}, opts)
}

// EnableUser lets a disabled user log in again. Only admin clients may.
func (c *Client) EnableUser(ctx context.Context, userID string, opts ...RequestOption) error {
	return c.call(ctx, userID, &schemas.EnableUser{UserID: userID}, opts)
}

// UnlockUser clears a user's failed logins and locks. Only admin clients
// may.
func (c *Client) UnlockUser(ctx context.Context, userID string, opts ...RequestOption) error {
	return c.call(ctx, userID, &schemas.UnlockUser{UserID: userID}, opts)
}

// DeleteUser ends a user's sessions and erases their personal data. Only
// admin clients may.
func (c *Client) DeleteUser(ctx context.Context, userID string, opts ...RequestOption) error {
	return c.call(ctx, userID, &schemas.DeleteUser{UserID: userID}, opts)
}

// call sends an operation answered with Done.
func (c *Client) call(ctx context.Context, key string, op schemas.Operation, opts []RequestOption) error {
	resp, err := c.Do(ctx, key, op, opts...)
	if err != nil {
		return err
	}
	_, err = result[*schemas.Done](resp)
	return err
}

// tokenKey is the record key of a request about a token: a digest, never
// the token, which is a secret and keys are not; so that one token's
// requests stay in order.
func tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:16])
}

// subjectKey is the record key of a request about the account email: the
// address as the worker normalises it, so that every spelling of one
// address shares a partition and a lane, and its requests stay in order.
func subjectKey(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

func result[R schemas.Result](resp *schemas.Response) (R, error) {
	r, ok := resp.Result.(R)
	if !ok {
		var zero R
		return zero, fmt.Errorf("client: reply carries %T, want %T", resp.Result, zero)
	}
	return r, nil
}

// Do sends an operation keyed by subject (no key when empty) and waits for
// its reply. A reply with an error status is returned as a *domain.Error
// whose Code is the status's code, so callers branch with domain.ErrorCode.
func (c *Client) Do(ctx context.Context, subject string, op schemas.Operation, opts ...RequestOption) (*schemas.Response, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	req := &schemas.Request{
		RequestID: newID(),
		Deadline:  &deadline,
		Client:    schemas.ClientMetadata{ClientID: c.cfg.ClientID},
		Operation: op,
	}
	for _, o := range opts {
		o(req)
	}
	value, err := c.codec.EncodeRequest(req)
	if err != nil {
		return nil, fmt.Errorf("client: encode request: %w", err)
	}

	correlation := make([]byte, 16)
	rand.Read(correlation)
	reply := make(chan *kafka.Message, 1)
	c.mu.Lock()
	c.pending[string(correlation)] = reply
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, string(correlation))
		c.mu.Unlock()
	}()

	topic := c.cfg.RequestTopic
	headers := []kafka.Header{
		{Key: schemas.HeaderReplyTopic, Value: []byte(c.cfg.ReplyTopic)},
		{Key: schemas.HeaderCorrelationID, Value: correlation},
	}
	if c.cfg.ReplyPartition != nil {
		headers = append(headers, kafka.Header{Key: schemas.HeaderReplyPartition, Value: schemas.PartitionHeader(*c.cfg.ReplyPartition)})
	}
	msg := &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Value:          value,
		Headers:        headers,
	}
	if subject != "" {
		msg.Key = []byte(subject)
	}
	if err := c.send(ctx, msg); err != nil {
		return nil, fmt.Errorf("client: send request: %w", err)
	}

	select {
	case <-ctx.Done():
		return nil, &domain.Error{Code: domain.CodeDeadlineExceeded, Message: "no reply before the deadline", Err: ctx.Err()}
	case <-c.done:
		return nil, errors.New("client: closed")
	case msg := <-reply:
		resp, err := c.codec.DecodeResponse(ctx, msg.Value)
		if err != nil {
			return nil, fmt.Errorf("client: decode reply: %w", err)
		}
		return resp, resp.Err()
	}
}

// newProducer connects the request producer: idempotent and acks=all, so a
// request is neither lost nor duplicated by the producer's own retries.
func newProducer(cfg Config) (*kafka.Producer, error) {
	conf := kafka.ConfigMap{
		"bootstrap.servers":  cfg.BootstrapServers,
		"enable.idempotence": true,
		"acks":               "all",
		"linger.ms":          1,
		"client.id":          cfg.ClientID,
		// The Go client's channels default to a million entries each: 16
		// MB of pointers the garbage collector scans on every cycle of the
		// calling service. Requests are sent with their own delivery
		// channel; only errors come through the events channel.
		"go.produce.channel.size": 16,
		"go.events.channel.size":  1024,
	}
	for k, v := range cfg.Kafka {
		conf[k] = v
	}
	p, err := kafka.NewProducer(&conf)
	if err != nil {
		return nil, fmt.Errorf("client: create request producer: %w", err)
	}
	go func() {
		for e := range p.Events() {
			if err, ok := e.(kafka.Error); ok {
				cfg.Logger.Warn("request producer error", "err", err)
			}
		}
	}()
	return p, nil
}

// send produces msg and waits for the broker's acknowledgement or ctx's end.
func (c *Client) send(ctx context.Context, msg *kafka.Message) error {
	delivered := make(chan kafka.Event, 1)
	for {
		err := c.producer.Produce(msg, delivered)
		if err == nil {
			break
		}
		if kerr, ok := errors.AsType[kafka.Error](err); !ok || kerr.Code() != kafka.ErrQueueFull {
			return err
		}
		select { // the local queue is full: wait for room
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case e := <-delivered:
		if m, ok := e.(*kafka.Message); ok && m.TopicPartition.Error != nil {
			return m.TopicPartition.Error
		}
		return nil
	}
}

func header(hs []kafka.Header, key string) ([]byte, bool) {
	for _, h := range hs {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// newID returns a random UUID (version 4) for request ids.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func timeout(ctx context.Context, def time.Duration) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return def
}
