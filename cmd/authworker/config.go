package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/authworker/authworker/seal"
	"github.com/authworker/authworker/tokens"
)

// Config is the worker's configuration, read from the environment only here.
type Config struct {
	DatabaseURL    string
	RedisURL       string
	KafkaBootstrap string
	Kafka          map[string]string // KAFKA_* passed through to librdkafka

	HTTPAddr string

	Issuer           string
	Audience         []string
	AccessTokenTTL   time.Duration
	SessionTTL       time.Duration
	RefreshIdleTTL   time.Duration
	SigningAlgorithm string
	KeyEncryptionKey []byte

	RequestTopic      string
	ResponseTopic     string
	DeadLetterTopic   string
	ReplyTopics       []string
	TopicPartitions   int
	RequestRetention  time.Duration
	DeadLetterRetain  time.Duration
	ConsumerGroup     string
	Workers           int
	RetryWindow       time.Duration
	OutcomeTTL        time.Duration
	ShutdownTimeout   time.Duration
	PasswordMinLength int
	Argon2MemoryKiB   int
	Argon2Time        int
	Argon2Threads     int
	LockAfter         int
	SourceLimit       int

	LogLevel slog.Level
}

// setting is one environment variable: its name, default and meaning, and
// how it is read into Config. The README's configuration table is this list.
type setting struct {
	name, def, doc string
	set            func(c *Config, v string) error
}

func settings() []setting {
	return []setting{
		{"DATABASE_URL", "", "PostgreSQL connection URL; when unset, libpq's PG* variables are used",
			func(c *Config, v string) error { c.DatabaseURL = v; return nil }},
		{"REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL (rediss:// for TLS)",
			func(c *Config, v string) error { c.RedisURL = v; return nil }},
		{"KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092", "Kafka brokers, host:port,...; every other KAFKA_* variable is passed to librdkafka (KAFKA_SECURITY_PROTOCOL -> security.protocol)",
			func(c *Config, v string) error { c.KafkaBootstrap = v; return nil }},
		{"HTTP_ADDR", ":8080", "address of the health and JWKS server",
			func(c *Config, v string) error { c.HTTPAddr = v; return nil }},
		{"AUTH_ISSUER", "http://localhost:8080", "iss claim of access tokens",
			func(c *Config, v string) error { c.Issuer = v; return nil }},
		{"AUTH_AUDIENCE", "authworker", "aud claim of access tokens, comma-separated",
			func(c *Config, v string) error { c.Audience = splitList(v); return nil }},
		{"AUTH_ACCESS_TOKEN_TTL", "15m", "lifetime of access tokens",
			func(c *Config, v string) (err error) { c.AccessTokenTTL, err = positiveDuration(v); return }},
		{"AUTH_SESSION_TTL", "720h", "absolute lifetime of a session (30 days)",
			func(c *Config, v string) (err error) { c.SessionTTL, err = positiveDuration(v); return }},
		{"AUTH_REFRESH_IDLE_TTL", "168h", "how long an unused refresh token stays valid (7 days)",
			func(c *Config, v string) (err error) { c.RefreshIdleTTL, err = positiveDuration(v); return }},
		{"AUTH_SIGNING_ALG", tokens.EdDSA, "signing algorithm of access tokens: EdDSA, ES256 or RS256",
			func(c *Config, v string) error {
				switch v {
				case tokens.EdDSA, tokens.ES256, tokens.RS256:
					c.SigningAlgorithm = v
					return nil
				}
				return fmt.Errorf("must be %s, %s or %s, got %q", tokens.EdDSA, tokens.ES256, tokens.RS256, v)
			}},
		{"AUTH_KEY_ENCRYPTION_KEY", "", "required: base64 of 32 random bytes that seal signing keys at rest (same on every worker)",
			func(c *Config, v string) error {
				if v == "" {
					return errors.New("is required (generate one with: head -c 32 /dev/urandom | base64)")
				}
				k, err := base64.StdEncoding.DecodeString(v)
				if err != nil {
					return errors.New("is not valid base64")
				}
				if len(k) != seal.KeySize {
					return fmt.Errorf("must decode to %d bytes, got %d", seal.KeySize, len(k))
				}
				c.KeyEncryptionKey = k
				return nil
			}},
		{"AUTH_REQUEST_TOPIC", "auth.request", "topic of requests",
			func(c *Config, v string) error { c.RequestTopic = v; return nil }},
		{"AUTH_RESPONSE_TOPIC", "auth.response", "default reply topic",
			func(c *Config, v string) error { c.ResponseTopic = v; return nil }},
		{"AUTH_DLQ_TOPIC", "auth.request.dlq", "topic of requests that cannot be answered",
			func(c *Config, v string) error { c.DeadLetterTopic = v; return nil }},
		{"AUTH_REPLY_TOPICS", "auth.response,auth.response.*", "topics a request may ask replies on (patterns, comma-separated)",
			func(c *Config, v string) error { c.ReplyTopics = splitList(v); return nil }},
		{"AUTH_TOPIC_PARTITIONS", "6", "partitions of topics created at start-up",
			func(c *Config, v string) (err error) { c.TopicPartitions, err = positiveInt(v); return }},
		{"AUTH_REQUEST_RETENTION", "1h", "retention of request and reply topics created at start-up (they carry passwords and tokens)",
			func(c *Config, v string) (err error) { c.RequestRetention, err = positiveDuration(v); return }},
		{"AUTH_DLQ_RETENTION", "72h", "retention of the dead-letter topic created at start-up",
			func(c *Config, v string) (err error) { c.DeadLetterRetain, err = positiveDuration(v); return }},
		{"AUTH_CONSUMER_GROUP", "authworker", "consumer group of the workers",
			func(c *Config, v string) error { c.ConsumerGroup = v; return nil }},
		{"AUTH_WORKERS", "8", "requests handled at once per worker process",
			func(c *Config, v string) (err error) { c.Workers, err = positiveInt(v); return }},
		{"AUTH_RETRY_WINDOW", "10s", "how long a request is retried while a store is down before it is answered UNAVAILABLE",
			func(c *Config, v string) (err error) { c.RetryWindow, err = positiveDuration(v); return }},
		{"AUTH_OUTCOME_TTL", "24h", "how long replies are kept to answer redelivered and retried requests",
			func(c *Config, v string) (err error) { c.OutcomeTTL, err = positiveDuration(v); return }},
		{"AUTH_SHUTDOWN_TIMEOUT", "15s", "how long requests in flight may finish at shutdown",
			func(c *Config, v string) (err error) { c.ShutdownTimeout, err = positiveDuration(v); return }},
		{"AUTH_PASSWORD_MIN_LENGTH", "15", "minimum password length in characters",
			func(c *Config, v string) (err error) { c.PasswordMinLength, err = positiveInt(v); return }},
		{"AUTH_ARGON2_MEMORY_KIB", "19456", "argon2id memory cost (KiB); OWASP minimum 19456",
			func(c *Config, v string) (err error) { c.Argon2MemoryKiB, err = positiveInt(v); return }},
		{"AUTH_ARGON2_TIME", "2", "argon2id iterations; OWASP minimum 2",
			func(c *Config, v string) (err error) { c.Argon2Time, err = positiveInt(v); return }},
		{"AUTH_ARGON2_PARALLELISM", "1", "argon2id lanes",
			func(c *Config, v string) (err error) { c.Argon2Threads, err = positiveInt(v); return }},
		{"AUTH_LOCK_AFTER", "10", "consecutive failed logins before an account locks (progressively longer)",
			func(c *Config, v string) (err error) { c.LockAfter, err = positiveInt(v); return }},
		{"AUTH_SOURCE_LIMIT", "100", "failed logins per source address per 15 minutes",
			func(c *Config, v string) (err error) { c.SourceLimit, err = positiveInt(v); return }},
		{"LOG_LEVEL", "info", "debug, info, warn or error",
			func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
	}
}

// LoadConfig reads the configuration from environ ("NAME=value" pairs).
// Errors name the variable at fault.
func LoadConfig(environ []string) (Config, error) {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	var c Config
	var errs []error
	for _, s := range settings() {
		v, ok := env[s.name]
		if !ok || v == "" {
			v = s.def
		}
		if err := s.set(&c, v); err != nil {
			errs = append(errs, fmt.Errorf("%s %w", s.name, err))
		}
	}
	c.Kafka = kafkaSettings(env)
	if c.DatabaseURL == "" {
		// pgx fills in host, user, password, database and TLS from libpq's
		// PG* variables for whatever the connection string leaves out.
		c.DatabaseURL = "application_name=authworker"
	}
	return c, errors.Join(errs...)
}

// kafkaSettings maps KAFKA_* variables to librdkafka properties:
// KAFKA_SASL_MECHANISM=PLAIN becomes sasl.mechanism=PLAIN. The bootstrap
// servers have their own setting, and *_OPTS variables belong to the
// broker's JVM scripts, not to clients.
func kafkaSettings(env map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		name, ok := strings.CutPrefix(k, "KAFKA_")
		if !ok || k == "KAFKA_BOOTSTRAP_SERVERS" || strings.HasSuffix(k, "_OPTS") || v == "" {
			continue
		}
		out[strings.ReplaceAll(strings.ToLower(name), "_", ".")] = v
	}
	return out
}

func splitList(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func positiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("is not a duration like 15m or 720h: %q", v)
	}
	if d <= 0 {
		return 0, fmt.Errorf("must be positive, got %s", v)
	}
	return d, nil
}

func positiveInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("must be a positive integer, got %q", v)
	}
	return n, nil
}

// usage describes every variable, for -help.
func usage() string {
	var b strings.Builder
	b.WriteString("authworker answers authentication requests on Kafka. It is configured by environment variables:\n\n")
	for _, s := range settings() {
		def := s.def
		if def == "" {
			def = "(none)"
		}
		fmt.Fprintf(&b, "  %-26s %s\n  %-26s default: %s\n", s.name, s.doc, "", def)
	}
	return b.String()
}
