package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authworker/authworker/app"
	"github.com/authworker/authworker/consumers"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/httpapi"
	"github.com/authworker/authworker/passwords"
	"github.com/authworker/authworker/postgres"
	"github.com/authworker/authworker/redis"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/seal"
	"github.com/authworker/authworker/tokens"
)

// Config is the worker's configuration. The environment is read only here,
// straight into the typed configs of the packages that own each setting; a
// setting's default is the owning package's.
type Config struct {
	Postgres postgres.Config
	Redis    redis.Config
	Kafka    KafkaConfig
	HTTP     httpapi.Config
	Tokens   tokens.Config
	Login    handlers.LoginConfig
	Topics   TopicsConfig
	Replies  schemas.ReplyRouting
	Pool     consumers.Config
	App      app.Config
	Hasher   passwords.HasherConfig
	HashPool passwords.PoolConfig
	Policy   passwords.PolicyConfig
	Throttle redis.ThrottleConfig
	Register handlers.RegisterConfig
	// RegisterLimit limits registrations per source.
	RegisterLimit redis.RateLimitConfig
	Codes         app.CodeConfig
	// CodeLimit limits requests for one-time codes per source, and
	// CodeAccountLimit per address.
	CodeLimit        redis.RateLimitConfig
	CodeAccountLimit int
	Admin            handlers.AdminConfig
	LogLevel         slog.Level
}

// KafkaConfig is how the worker reaches Kafka.
type KafkaConfig struct {
	BootstrapServers string
	// Consumer and Producer are further librdkafka properties of the
	// consumer and of the producers, from the KAFKA_* variables (see
	// kafkaSettings).
	Consumer, Producer map[string]string
}

// TopicsConfig names the topics the worker reads and writes besides reply
// topics, and how those it creates are made.
type TopicsConfig struct {
	Request       string
	Notifications string
	// ClientBindings binds client ids to request topics of their own
	// (AUTH_CLIENT_TOPICS); the worker reads those topics too.
	ClientBindings      consumers.ClientBindings
	DeadLetter          string
	Partitions          int
	RequestRetention    time.Duration // request and reply topics
	DeadLetterRetention time.Duration
	EventsRetention     time.Duration
}

// Defaults of the settings that belong to the worker's wiring rather than
// to a package.
const (
	defaultRequestTopic        = "auth.request"
	defaultDeadLetterTopic     = "auth.request.dlq"
	defaultNotificationsTopic  = "auth.notifications"
	defaultCodeRequestLimit    = 10
	defaultCodeAccountLimit    = 5
	defaultReplyTopics         = "auth.response,auth.response.*"
	defaultTopicPartitions     = 6
	defaultRequestRetention    = time.Hour
	defaultDeadLetterRetention = 72 * time.Hour
	defaultEventsRetention     = 7 * 24 * time.Hour
	defaultBootstrapServers    = "127.0.0.1:9092"
	defaultRedisURL            = "redis://127.0.0.1:6379/0"
)

// setting is one environment variable: its name, default and meaning, and
// how it is read into Config. The README's configuration table is this list.
type setting struct {
	name, def, doc string
	set            func(c *Config, v string) error
}

func settings() []setting {
	return []setting{
		{"DATABASE_URL", "", "PostgreSQL connection URL; when unset, libpq's PG* variables are used",
			text(func(c *Config) *string { return &c.Postgres.URL })},
		{"REDIS_URL", defaultRedisURL, "Redis URL (rediss:// for TLS)",
			text(func(c *Config) *string { return &c.Redis.URL })},
		{"KAFKA_BOOTSTRAP_SERVERS", defaultBootstrapServers, "Kafka brokers, host:port,...; every other KAFKA_* variable is passed to librdkafka (KAFKA_SECURITY_PROTOCOL -> security.protocol), to the clients that take it; KAFKA_CONSUMER_* and KAFKA_PRODUCER_* to one side only",
			text(func(c *Config) *string { return &c.Kafka.BootstrapServers })},
		{"HTTP_ADDR", httpapi.DefaultAddr, "address of the health, metrics, JWKS and discovery server",
			text(func(c *Config) *string { return &c.HTTP.Addr })},
		{"AUTH_ISSUER", tokens.DefaultIssuer, "iss claim of access tokens and issuer of the discovery documents: an https URL (http only on a loopback host) without query or fragment",
			text(func(c *Config) *string { return &c.Tokens.Issuer })},
		{"AUTH_JWKS_URI", "", "jwks_uri of the discovery documents, where verifiers fetch the keys: an https URL (http only on a loopback host); default AUTH_ISSUER/.well-known/jwks.json",
			text(func(c *Config) *string { return &c.HTTP.JWKSURI })},
		{"AUTH_JWKS_MAX_AGE", formatDuration(httpapi.DefaultJWKSMaxAge), "how long verifiers and caches may keep the JWKS and discovery documents (Cache-Control max-age); keep it below the time a new key is published before it signs",
			func(c *Config, v string) error {
				if err := duration(func(c *Config) *time.Duration { return &c.HTTP.JWKSMaxAge })(c, v); err != nil {
					return err
				}
				if c.HTTP.JWKSMaxAge < time.Second {
					return fmt.Errorf("must be at least 1s (max-age counts whole seconds), got %s", v)
				}
				return nil
			}},
		{"AUTH_AUDIENCE", "authworker", "aud claim of access tokens, comma-separated",
			list(func(c *Config) *[]string { return &c.Tokens.Audience })},
		{"AUTH_ACCESS_TOKEN_TTL", formatDuration(tokens.DefaultAccessTTL), "lifetime of access tokens",
			duration(func(c *Config) *time.Duration { return &c.Tokens.AccessTTL })},
		{"AUTH_SESSION_TTL", formatDuration(handlers.DefaultSessionTTL), "absolute lifetime of a session (30 days)",
			duration(func(c *Config) *time.Duration { return &c.Login.SessionTTL })},
		{"AUTH_REFRESH_IDLE_TTL", formatDuration(handlers.DefaultRefreshIdleTTL), "how long an unused refresh token stays valid (7 days)",
			duration(func(c *Config) *time.Duration { return &c.Login.RefreshIdleTTL })},
		{"AUTH_REPLY_FLOOR", formatDuration(handlers.DefaultFailureFloor), "least time a reply that must not tell whether an account exists takes: refused logins and the one-time-code operations; keep it above the slowest stored hash's verification",
			func(c *Config, v string) error {
				if err := duration(func(c *Config) *time.Duration { return &c.Login.FailureFloor })(c, v); err != nil {
					return err
				}
				c.Codes.Floor = c.Login.FailureFloor
				return nil
			}},
		{"AUTH_REQUIRE_VERIFIED_EMAIL", "false", "refuse logins to accounts whose address is not verified (VerifyEmail)",
			boolean(func(c *Config) *bool { return &c.Login.RequireVerifiedEmail })},
		{"AUTH_RESET_CODE_TTL", formatDuration(handlers.DefaultResetCodeTTL), "how long a password-reset code is valid",
			duration(func(c *Config) *time.Duration { return &c.Codes.ResetTTL })},
		{"AUTH_VERIFICATION_CODE_TTL", formatDuration(handlers.DefaultVerificationCodeTTL), "how long an address-verification code is valid",
			duration(func(c *Config) *time.Duration { return &c.Codes.VerificationTTL })},
		{"AUTH_CODE_REQUEST_LIMIT", strconv.Itoa(defaultCodeRequestLimit), "password-reset and verification requests per source address per hour (a calling service that sends no address gets 1000 times more)",
			func(c *Config, v string) error {
				if err := number(func(c *Config) *int { return &c.CodeLimit.Limit }, 1, math.MaxInt32/1000)(c, v); err != nil {
					return err
				}
				c.CodeLimit.ClientLimit = 1000 * c.CodeLimit.Limit
				return nil
			}},
		{"AUTH_CODE_ACCOUNT_LIMIT", strconv.Itoa(defaultCodeAccountLimit), "codes sent per address per hour, whoever asks, and as many REGISTRATION_ATTEMPT notices (a budget of their own): a mailbox cannot be flooded",
			number(func(c *Config) *int { return &c.CodeAccountLimit }, 1, math.MaxInt32)},
		{"AUTH_ADMIN_CLIENTS", "", "client ids allowed to disable, enable, unlock and delete accounts (comma-separated); each must be bound to a request topic of its own with AUTH_CLIENT_TOPICS, or the worker does not start",
			list(func(c *Config) *[]string { return &c.Admin.Clients })},
		{"AUTH_SIGNING_ALG", "", "default signing algorithm of access tokens: ES256, EdDSA or RS256; unset, the algorithm the current key signs with (ES256 for a new deployment)",
			func(c *Config, v string) error {
				if v == "" {
					return nil // tokens.InheritedAlgorithm, at start
				}
				return oneOf(func(c *Config) *string { return &c.Tokens.Algorithm }, tokens.ES256, tokens.EdDSA, tokens.RS256)(c, v)
			}},
		{"AUTH_SIGNING_ALGS", "", "more signing algorithms kept current and published beside the default, comma-separated (each has its own key)",
			func(c *Config, v string) (err error) {
				c.Tokens.Algorithms, err = tokens.ParseAlgorithms(v)
				return err
			}},
		{"AUTH_CLIENT_SIGNING_ALGS", "", "client ids given a signing algorithm other than the default, clientId=alg,... (the algorithm is kept current and published)",
			func(c *Config, v string) (err error) {
				c.Tokens.ClientAlgorithms, err = tokens.ParseClientAlgorithms(v)
				return err
			}},
		{"AUTH_KEY_ROTATION_PERIOD", formatDuration(tokens.DefaultRotationPeriod), "how long a signing key signs before its successor takes over (7 days); longer than twice AUTH_KEY_PREPUBLISH",
			duration(func(c *Config) *time.Duration { return &c.Tokens.RotationPeriod })},
		{"AUTH_KEY_PREPUBLISH", formatDuration(tokens.DefaultPrePublish), "how long a new signing key is in the JWKS before it signs; longer than AUTH_JWKS_MAX_AGE plus AUTH_KEY_RELOAD_INTERVAL, so that every verifier has it before its first token",
			duration(func(c *Config) *time.Duration { return &c.Tokens.PrePublish })},
		{"AUTH_KEY_RELOAD_INTERVAL", formatDuration(tokens.DefaultReloadInterval), "how often each worker reloads the signing keys and applies the rotation policy; workers also reload at once when keys change (LISTEN/NOTIFY)",
			duration(func(c *Config) *time.Duration { return &c.Tokens.ReloadInterval })},
		{"AUTH_KEY_ENCRYPTION_KEY", "", "required: key-encryption keys, base64 of 32 random bytes each, comma-separated, newest first: the first seals signing keys, stored replies, outbox records and dead letters at rest, every one opens them; the last keys the digests of requests and of throttled addresses (same list on every worker)",
			func(c *Config, v string) error {
				keys, err := seal.ParseKeys(v)
				if err != nil {
					return err
				}
				c.Tokens.KeyEncryptionKey, c.Tokens.OlderKeyEncryptionKeys = keys[0], keys[1:]
				return nil
			}},
		{"AUTH_REQUEST_TOPIC", defaultRequestTopic, "topic of requests",
			text(func(c *Config) *string { return &c.Topics.Request })},
		{"AUTH_CLIENT_TOPICS", "", "client ids bound to request topics of their own, clientId=topic,...: a bound client id is accepted only on its topic, which Kafka ACLs should let only its principal write; the worker reads these topics too",
			bindings(func(c *Config) *consumers.ClientBindings { return &c.Topics.ClientBindings })},
		{"AUTH_RESPONSE_TOPIC", schemas.DefaultReplyTopic, "default reply topic",
			text(func(c *Config) *string { return &c.Replies.DefaultTopic })},
		{"AUTH_DLQ_TOPIC", defaultDeadLetterTopic, "topic of requests that cannot be answered",
			text(func(c *Config) *string { return &c.Topics.DeadLetter })},
		{"AUTH_REPLY_TOPICS", defaultReplyTopics, "topics a request may ask replies on (patterns, comma-separated)",
			list(func(c *Config) *[]string { return &c.Replies.AllowedTopics })},
		{"AUTH_TOPIC_PARTITIONS", strconv.Itoa(defaultTopicPartitions), "partitions of topics created at start-up",
			number(func(c *Config) *int { return &c.Topics.Partitions }, 1, math.MaxInt32)},
		{"AUTH_NOTIFICATIONS_TOPIC", defaultNotificationsTopic, "topic of notifications for a mailer (one-time codes), keyed by user id",
			text(func(c *Config) *string { return &c.Topics.Notifications })},
		{"AUTH_EVENTS_TOPIC", app.DefaultEventsTopic, "topic of domain events for stream processors, keyed by user id",
			text(func(c *Config) *string { return &c.App.EventsTopic })},
		{"AUTH_EVENTS_RETENTION", formatDuration(defaultEventsRetention), "retention of the events topic created at start-up (7 days): how long a registered address stays on it; consumers keep what they need",
			duration(func(c *Config) *time.Duration { return &c.Topics.EventsRetention })},
		{"AUTH_EVENT_SOURCE", "", "CloudEvents source (ce_source) of the events, a URI naming this deployment; default AUTH_ISSUER",
			text(func(c *Config) *string { return &c.App.EventSource })},
		{"AUTH_REQUEST_RETENTION", formatDuration(defaultRequestRetention), "retention of request, reply and notification topics created at start-up (they carry passwords, tokens and codes)",
			duration(func(c *Config) *time.Duration { return &c.Topics.RequestRetention })},
		{"AUTH_DLQ_RETENTION", formatDuration(defaultDeadLetterRetention), "retention of the dead-letter topic created at start-up",
			duration(func(c *Config) *time.Duration { return &c.Topics.DeadLetterRetention })},
		{"AUTH_CONSUMER_GROUP", consumers.DefaultGroupID, "consumer group of the workers",
			text(func(c *Config) *string { return &c.Pool.GroupID })},
		{"AUTH_INSTANCE_ID", "", "this worker's static membership in the consumer group: a worker restarted with the same id gets its partitions back at once; unique per worker in a group (a StatefulSet's pod name); default the host name and the HTTP port (host-8080), none when the port is 0",
			text(func(c *Config) *string { return &c.Pool.InstanceID })},
		{"AUTH_WORKERS", strconv.Itoa(consumers.DefaultWorkers), "requests handled at once per worker process",
			number(func(c *Config) *int { return &c.Pool.Workers }, 1, 1024)},
		{"AUTH_QUEUE_DEPTH", strconv.Itoa(consumers.DefaultQueueDepth), "requests fetched and waiting per worker before fetching pauses: a process holds at most AUTH_WORKERS × (1 + AUTH_QUEUE_DEPTH) requests",
			number(func(c *Config) *int { return &c.Pool.QueueDepth }, 1, 1024)},
		{"AUTH_RETRY_WINDOW", formatDuration(app.DefaultRetryWindow), "how long a request's database steps are retried while the database is down before it is answered UNAVAILABLE",
			duration(func(c *Config) *time.Duration { return &c.App.RetryWindow })},
		{"AUTH_OUTCOME_TTL", formatDuration(app.DefaultOutcomeTTL), "how long replies are kept to answer redelivered and retried requests",
			duration(func(c *Config) *time.Duration { return &c.App.OutcomeTTL })},
		{"AUTH_SHUTDOWN_TIMEOUT", formatDuration(consumers.DefaultDrainTimeout), "how long requests in flight may finish at shutdown",
			duration(func(c *Config) *time.Duration { return &c.Pool.DrainTimeout })},
		{"AUTH_PASSWORD_MIN_LENGTH", strconv.Itoa(passwords.DefaultMinLength), "minimum password length in characters",
			number(func(c *Config) *int { return &c.Policy.MinLength }, 1, passwords.DefaultMaxLength)},
		{"AUTH_PASSWORD_SERVICE_NAME", passwords.DefaultServiceName, "the service's name as users know it; passwords built on it are refused",
			text(func(c *Config) *string { return &c.Policy.ServiceName })},
		{"AUTH_ARGON2_MEMORY_KIB", strconv.Itoa(passwords.DefaultMemoryKiB), "argon2id memory cost (KiB); OWASP minimum 19456",
			number(func(c *Config) *uint32 { return &c.Hasher.MemoryKiB }, 1, math.MaxUint32)},
		{"AUTH_ARGON2_TIME", strconv.Itoa(passwords.DefaultTime), "argon2id iterations; OWASP minimum 2",
			number(func(c *Config) *uint32 { return &c.Hasher.Time }, 1, math.MaxUint32)},
		{"AUTH_ARGON2_PARALLELISM", strconv.Itoa(passwords.DefaultParallelism), "argon2id lanes",
			number(func(c *Config) *uint8 { return &c.Hasher.Parallelism }, 1, math.MaxUint8)},
		{"AUTH_HASH_SLOTS", "", "password hashes run at once (at most this many × AUTH_ARGON2_MEMORY_KIB of memory); default the CPUs, at most AUTH_WORKERS − 1",
			optionalNumber(func(c *Config) *int { return &c.HashPool.Slots }, 1, 1024)},
		{"AUTH_HASH_QUEUE", "", "requests that may wait for a hash slot; more are answered RATE_LIMITED. AUTH_HASH_SLOTS + AUTH_HASH_QUEUE must stay below AUTH_WORKERS, so cheap requests never wait behind hashes; default 2 × AUTH_HASH_SLOTS within that",
			func(c *Config, v string) error {
				if v == "" {
					return nil
				}
				if err := number(func(c *Config) *int { return &c.HashPool.Queue }, 0, 1<<16)(c, v); err != nil {
					return err
				}
				if c.HashPool.Queue == 0 {
					c.HashPool.Queue = passwords.NoQueue
				}
				return nil
			}},
		{"AUTH_HASH_MAX_WAIT", formatDuration(passwords.DefaultMaxWait), "longest a request waits for a hash slot; a request with a deadline waits at most until the deadline less one hash",
			duration(func(c *Config) *time.Duration { return &c.HashPool.MaxWait })},
		{"AUTH_LOCK_AFTER", strconv.Itoa(redis.DefaultLockAfter), "consecutive failed logins from unfamiliar sources before they are locked out of the account (progressively longer); also per source",
			number(func(c *Config) *int { return &c.Throttle.LockAfter }, 1, 100)},
		{"AUTH_SOURCE_LIMIT", strconv.Itoa(redis.DefaultSourceLimit), "failed logins per source address (IPv4, or IPv6 /64) per 15 minutes, across accounts",
			number(func(c *Config) *int { return &c.Throttle.SourceLimit }, 1, math.MaxInt32)},
		{"AUTH_CLIENT_SOURCE_LIMIT", strconv.Itoa(redis.DefaultClientLimit), "failed logins per 15 minutes for a calling service that sends no end-user address (all its users share this bucket)",
			number(func(c *Config) *int { return &c.Throttle.ClientLimit }, 1, math.MaxInt32)},
		{"AUTH_REGISTER_REVEALS_CONFLICT", "false", "answer Register for a taken address with CONFLICT; by default it gets the reply of a new account, so callers cannot learn which addresses have accounts",
			boolean(func(c *Config) *bool { return &c.Register.RevealConflict })},
		{"AUTH_REGISTER_LIMIT", strconv.Itoa(redis.DefaultRegisterLimit), "registrations per source address (IPv4, or IPv6 /64) per hour",
			number(func(c *Config) *int { return &c.RegisterLimit.Limit }, 1, math.MaxInt32)},
		{"AUTH_CLIENT_REGISTER_LIMIT", strconv.Itoa(redis.DefaultClientRegisterLimit), "registrations per hour for a calling service that sends no end-user address",
			number(func(c *Config) *int { return &c.RegisterLimit.ClientLimit }, 1, math.MaxInt32)},
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
	c.Kafka.Consumer, c.Kafka.Producer = kafkaSettings(env)
	if c.Pool.InstanceID == "" {
		c.Pool.InstanceID = defaultInstanceID(os.Hostname, c.HTTP.Addr)
	}
	if err := consumers.ValidateInstanceID(c.Pool.InstanceID); c.Pool.InstanceID != "" && err != nil {
		errs = append(errs, fmt.Errorf("AUTH_INSTANCE_ID %w (by default the host name and HTTP_ADDR's port)", err))
	}
	if c.App.EventSource == "" {
		c.App.EventSource = c.Tokens.Issuer
	}
	c.HTTP.Issuer = c.Tokens.Issuer
	if err := httpapi.ValidateIssuer(c.HTTP.Issuer); err != nil {
		errs = append(errs, fmt.Errorf("AUTH_ISSUER: %w", err))
	}
	if c.HTTP.JWKSURI == "" {
		c.HTTP.JWKSURI = httpapi.DefaultJWKSURI(c.HTTP.Issuer)
	} else if err := httpapi.ValidateJWKSURI(c.HTTP.JWKSURI); err != nil {
		errs = append(errs, fmt.Errorf("AUTH_JWKS_URI: %w", err))
	}
	if c.Tokens.PrePublish <= c.HTTP.JWKSMaxAge+c.Tokens.ReloadInterval {
		errs = append(errs, fmt.Errorf("AUTH_KEY_PREPUBLISH %s must be longer than AUTH_JWKS_MAX_AGE plus AUTH_KEY_RELOAD_INTERVAL (%s): verifiers would meet tokens of keys they could not have fetched",
			formatDuration(c.Tokens.PrePublish), formatDuration(c.HTTP.JWKSMaxAge+c.Tokens.ReloadInterval)))
	}
	// Kafka does not say who produced a request: an admin client id that
	// is not bound to a topic only its principal may write is anyone's.
	for _, id := range c.Admin.Clients {
		if _, ok := c.Topics.ClientBindings[id]; !ok {
			errs = append(errs, fmt.Errorf("AUTH_ADMIN_CLIENTS entry %s is not bound to a request topic of its own in AUTH_CLIENT_TOPICS: any producer could administer accounts as %s", id, id))
		}
	}
	if err := fitHashPool(&c.HashPool, c.Pool.Workers); err != nil {
		errs = append(errs, err)
	}
	if c.Postgres.URL == "" {
		// pgx fills in host, user, password, database and TLS from libpq's
		// PG* variables for whatever the connection string leaves out.
		c.Postgres.URL = "application_name=authworker"
	}
	return c, errors.Join(errs...)
}

// box returns the box of purpose under the key-encryption keys: it seals
// under the first and opens under any.
func (c Config) box(purpose string) (*seal.Box, error) {
	return seal.NewBox(c.Tokens.KeyEncryptionKey, purpose, c.Tokens.OlderKeyEncryptionKeys...)
}

// keyEncryptionKeys returns every key-encryption key, newest first.
func (c Config) keyEncryptionKeys() [][]byte {
	return append([][]byte{c.Tokens.KeyEncryptionKey}, c.Tokens.OlderKeyEncryptionKeys...)
}

// digestKey is the key-encryption key that keyed digests (of requests, and
// of the addresses the throttles count) are derived from: the oldest
// listed. A stored digest must be found again by every worker, and a new
// KEK goes in front of the list on one worker after another, so the
// digests do not change then; they change when the oldest KEK leaves the
// list (the README's KEK rotation says what that does).
func (c Config) digestKey() []byte {
	keys := c.keyEncryptionKeys()
	return keys[len(keys)-1]
}

// fitHashPool sizes the hash pool within the workers' handlers: requests
// that hash, running or waiting, must never hold all of them, so that cheap
// requests (Refresh, Introspect, replays) always find one free. What the
// settings leave to default is fitted; explicit settings that would hold
// every handler are refused. One handler is all a single worker has.
func fitHashPool(p *passwords.PoolConfig, workers int) error {
	if p.Slots == 0 {
		p.Slots = max(1, min(passwords.DefaultSlots(), workers-1))
	}
	if p.Queue == 0 {
		if p.Queue = min(passwords.DefaultQueuePerSlot*p.Slots, workers-1-p.Slots); p.Queue <= 0 {
			p.Queue = passwords.NoQueue
		}
	}
	if held := p.Slots + max(p.Queue, 0); held >= workers && held > 1 {
		return fmt.Errorf("AUTH_HASH_SLOTS + AUTH_HASH_QUEUE (%d) must be less than AUTH_WORKERS (%d): requests waiting for hashes would hold every handler, and cheap requests would wait behind them", held, workers)
	}
	return nil
}

// defaultInstanceID is the static group membership a worker gets unless
// AUTH_INSTANCE_ID says otherwise: the host name, stable across restarts of
// a pod of a StatefulSet or a systemd unit, and the HTTP port, which tells
// apart the workers of one host (two cannot bind the same port) and stays
// the same when one restarts. An HTTP port of 0 is drawn at each start, so
// it gives no id: the worker is then a dynamic member.
func defaultInstanceID(hostname func() (string, error), httpAddr string) string {
	_, port, err := net.SplitHostPort(httpAddr)
	if err != nil || port == "" || port == "0" {
		return ""
	}
	host, err := hostname()
	if err != nil || host == "" {
		return ""
	}
	return host + "-" + port
}

// kafkaSettings maps KAFKA_* variables to librdkafka properties:
// KAFKA_SASL_MECHANISM=PLAIN becomes sasl.mechanism=PLAIN. A property goes
// to the consumer and to the producers, except one librdkafka knows only
// on one side (session.timeout.ms, linger.ms: see clientOnly), which goes
// to that side only: librdkafka warns of a property given to a client that
// ignores it. KAFKA_CONSUMER_* and KAFKA_PRODUCER_* go to one side only,
// and win over KAFKA_* for it. The bootstrap servers have their own
// setting, and *_OPTS variables belong to the broker's JVM scripts, not to
// clients.
func kafkaSettings(env map[string]string) (consumer, producer map[string]string) {
	consumer, producer = map[string]string{}, map[string]string{}
	property := func(name string) string { return strings.ReplaceAll(strings.ToLower(name), "_", ".") }
	var sided [][2]string // applied after the shared ones, to win over them
	for k, v := range env {
		name, ok := strings.CutPrefix(k, "KAFKA_")
		if !ok || k == "KAFKA_BOOTSTRAP_SERVERS" || strings.HasSuffix(k, "_OPTS") || v == "" {
			continue
		}
		if strings.HasPrefix(name, "CONSUMER_") || strings.HasPrefix(name, "PRODUCER_") {
			sided = append(sided, [2]string{name, v})
			continue
		}
		p := property(name)
		switch clientOnly[p] {
		case "consumer":
			consumer[p] = v
		case "producer":
			producer[p] = v
		default:
			consumer[p], producer[p] = v, v
		}
	}
	for _, kv := range sided {
		if name, ok := strings.CutPrefix(kv[0], "CONSUMER_"); ok {
			consumer[property(name)] = kv[1]
		} else if name, ok := strings.CutPrefix(kv[0], "PRODUCER_"); ok {
			producer[property(name)] = kv[1]
		}
	}
	return consumer, producer
}

// clientOnly names the librdkafka properties that only a consumer or only
// a producer takes (librdkafka's CONFIGURATION.md, column C/P).
var clientOnly = map[string]string{
	"group.id": "consumer", "group.instance.id": "consumer", "group.protocol": "consumer",
	"group.remote.assignor": "consumer", "group.protocol.type": "consumer",
	"partition.assignment.strategy": "consumer", "session.timeout.ms": "consumer",
	"heartbeat.interval.ms": "consumer", "coordinator.query.interval.ms": "consumer",
	"max.poll.interval.ms": "consumer", "enable.auto.commit": "consumer",
	"auto.commit.interval.ms": "consumer", "enable.auto.offset.store": "consumer",
	"queued.min.messages": "consumer", "queued.max.messages.kbytes": "consumer",
	"fetch.wait.max.ms": "consumer", "fetch.queue.backoff.ms": "consumer",
	"fetch.message.max.bytes": "consumer", "max.partition.fetch.bytes": "consumer",
	"fetch.max.bytes": "consumer", "fetch.min.bytes": "consumer", "fetch.error.backoff.ms": "consumer",
	"isolation.level": "consumer", "enable.partition.eof": "consumer", "check.crcs": "consumer",
	"auto.offset.reset": "consumer",

	"transactional.id": "producer", "transaction.timeout.ms": "producer",
	"enable.idempotence": "producer", "enable.gapless.guarantee": "producer",
	"queue.buffering.max.messages": "producer", "queue.buffering.max.kbytes": "producer",
	"queue.buffering.max.ms": "producer", "linger.ms": "producer",
	"message.send.max.retries": "producer", "retries": "producer",
	"queue.buffering.backpressure.threshold": "producer", "compression.codec": "producer",
	"compression.type": "producer", "compression.level": "producer",
	"batch.num.messages": "producer", "batch.size": "producer",
	"delivery.report.only.error": "producer", "sticky.partitioning.linger.ms": "producer",
	"request.required.acks": "producer", "acks": "producer", "request.timeout.ms": "producer",
	"message.timeout.ms": "producer", "delivery.timeout.ms": "producer", "partitioner": "producer",
}

// Setting readers: each returns the set function of a setting that stores
// its value in the field field returns.

func text(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *field(c) = v; return nil }
}

func list(field func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var out []string
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		*field(c) = out
		return nil
	}
}

func oneOf(field func(*Config) *string, allowed ...string) func(*Config, string) error {
	return func(c *Config, v string) error {
		for _, a := range allowed {
			if v == a {
				*field(c) = v
				return nil
			}
		}
		return fmt.Errorf("must be one of %s, got %q", strings.Join(allowed, ", "), v)
	}
}

func bindings(field func(*Config) *consumers.ClientBindings) func(*Config, string) error {
	return func(c *Config, v string) error {
		b := consumers.ClientBindings{}
		for pair := range strings.SplitSeq(v, ",") {
			if pair = strings.TrimSpace(pair); pair == "" {
				continue
			}
			client, topic, ok := strings.Cut(pair, "=")
			client, topic = strings.TrimSpace(client), strings.TrimSpace(topic)
			if !ok || client == "" || topic == "" {
				return fmt.Errorf("must be clientId=topic pairs separated by commas, got %q", pair)
			}
			if _, dup := b[client]; dup {
				return fmt.Errorf("binds client id %q twice", client)
			}
			b[client] = topic
		}
		*field(c) = b
		return nil
	}
}

// RequestTopics returns the topics the worker reads requests from: the
// shared one and every bound client's.
func (t TopicsConfig) RequestTopics() []string {
	topics := []string{t.Request}
	for _, topic := range t.ClientBindings {
		if !slices.Contains(topics, topic) {
			topics = append(topics, topic)
		}
	}
	slices.Sort(topics[1:])
	return topics
}

func boolean(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("must be true or false, got %q", v)
		}
		*field(c) = b
		return nil
	}
}

func duration(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("is not a duration like 15m or 720h: %q", v)
		}
		if d <= 0 {
			return fmt.Errorf("must be positive, got %s", v)
		}
		*field(c) = d
		return nil
	}
}

// number reads an integer from lo to hi into a field of any integer type,
// so that a value the field cannot hold is refused rather than wrapped.
func number[T int | uint8 | uint32](field func(*Config) *T, lo, hi int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("must be an integer from %d to %d, got %q", lo, hi, v)
		}
		*field(c) = T(n)
		return nil
	}
}

// optionalNumber is number, but an empty value leaves the field zero: the
// owning package's default.
func optionalNumber(field func(*Config) *int, lo, hi int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v == "" {
			return nil
		}
		return number(field, lo, hi)(c, v)
	}
}

// formatDuration writes d as an operator would: 15m, 720h, 10s.
func formatDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
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
