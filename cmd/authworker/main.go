// Command authworker is the authentication worker: it consumes auth requests
// from Kafka, answers them on correlated reply topics, and serves health and
// the JWKS over HTTP. See the README for the wire contract and settings.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/authworker/authworker/app"
	"github.com/authworker/authworker/consumers"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/health"
	"github.com/authworker/authworker/httpapi"
	"github.com/authworker/authworker/metrics"
	"github.com/authworker/authworker/passwords"
	"github.com/authworker/authworker/postgres"
	"github.com/authworker/authworker/producers"
	"github.com/authworker/authworker/redis"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/seal"
	"github.com/authworker/authworker/tokens"
)

func main() {
	flag.Usage = func() { fmt.Fprint(flag.CommandLine.Output(), usage()) }
	flag.Parse()

	cfg, err := LoadConfig(os.Environ())
	if err != nil {
		fmt.Fprintf(os.Stderr, "authworker: configuration:\n%v\n", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	// After LoadConfig, which sized the hash pool to the CPUs.
	cpuHeadroom(os.Getenv)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	m := NewMain(cfg, logger)
	if err := m.Open(ctx); err != nil {
		logger.Error("start", "err", err)
		m.Close()
		os.Exit(1)
	}
	err = m.Run(ctx)
	m.Close()
	if err != nil {
		logger.Error("stopped", "err", err)
		os.Exit(1)
	}
}

// cgoHeadroom is how many more Go processors the worker runs than it has
// CPUs, unless GOMAXPROCS is set. The Kafka client polls librdkafka in cgo
// calls that block for up to 100 ms, and a goroutine in a cgo call keeps
// its processor until the scheduler's monitor takes it back; with as many
// processors as CPUs, a password hash that is ready to run then waits
// while a CPU idles. Measured with BenchmarkLoginThroughput on 2 CPUs:
// 42.5 logins/s at 2 processors, 46–48 at 3 or 4.
const cgoHeadroom = 2

// cpuHeadroom raises GOMAXPROCS by cgoHeadroom unless the environment (getenv)
// sets it, and returns the function that restores it.
func cpuHeadroom(getenv func(string) string) (restore func()) {
	if getenv("GOMAXPROCS") != "" {
		return func() {}
	}
	prev := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(prev + cgoHeadroom)
	return func() { runtime.GOMAXPROCS(prev) }
}

// Main wires the adapters together: Open connects and prepares everything,
// Run serves until its context ends, Close releases what Open acquired.
type Main struct {
	cfg    Config
	logger *slog.Logger

	db       *postgres.DB
	outcomes *postgres.OutcomeRepository
	outbox   *postgres.Outbox
	relay    *postgres.OutboxRelay
	revoked  *redis.RevocationList
	redis    *redis.Client
	producer *producers.Producer
	issuer   *tokens.Issuer
	hasher   *passwords.Hasher // counts the hashes computed
	pool     *consumers.Pool
	lag      *consumers.Lag
	metrics  *metrics.Metrics
	http     *httpapi.Server
	// hashes admits password hashing; its Stats are for /metrics.
	hashes *passwords.Pool

	// pgHealth and redisHealth are what is known of the stores' health:
	// /readyz's checks and the gate of the requests that need them.
	pgHealth, redisHealth *health.Store
}

// NewMain returns a Main for cfg.
func NewMain(cfg Config, logger *slog.Logger) *Main {
	return &Main{cfg: cfg, logger: logger}
}

// clockSkew is how far the clocks of the worker and of the services that
// verify its tokens may disagree: a revoked session stays listed this long
// after its last access token has expired.
const clockSkew = 2 * time.Minute

// startupTimeout bounds connecting to the stores and preparing them.
const startupTimeout = 60 * time.Second

// Open connects to PostgreSQL, Redis and Kafka, migrates the database,
// creates missing topics, builds the outbox and its relay, creates the first
// signing key, builds the metrics, binds the HTTP port and creates the
// consumer (with its lag follower), in that order:
// what fails names its setting, and Close releases whatever was opened.
func (m *Main) Open(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	cfg := m.cfg

	var err error
	if m.db, err = postgres.Open(ctx, cfg.Postgres); err != nil {
		return fmt.Errorf("postgres (DATABASE_URL): %w", err)
	}
	if err := m.db.Migrate(ctx); err != nil {
		return err
	}
	redis.LogTo(m.logger)
	if m.redis, err = redis.Open(ctx, cfg.Redis); err != nil {
		return fmt.Errorf("redis (REDIS_URL): %w", err)
	}
	if m.pgHealth, err = health.New(health.Config{Name: string(app.Postgres), Ping: m.db.Ping, Logger: m.logger}); err != nil {
		return err
	}
	if m.redisHealth, err = health.New(health.Config{Name: string(app.Redis), Ping: m.redis.Ping, Logger: m.logger}); err != nil {
		return err
	}
	if m.producer, err = producers.NewProducer(producers.Config{
		BootstrapServers: cfg.Kafka.BootstrapServers, Kafka: cfg.Kafka.Producer, Logger: m.logger,
	}); err != nil {
		return fmt.Errorf("kafka (KAFKA_BOOTSTRAP_SERVERS, KAFKA_*): %w", err)
	}
	if err := m.ensureTopics(ctx); err != nil {
		return err
	}
	if m.outbox, m.relay, err = newOutbox(m.db, m.producer, cfg.keyEncryptionKeys(), postgres.OutboxRelayConfig{
		Logger: m.logger,
	}); err != nil {
		return fmt.Errorf("outbox (AUTH_KEY_ENCRYPTION_KEY): %w", err)
	}

	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		return err
	}
	keyEvents, err := app.NewKeyEvents(codec, m.outbox, newID, cfg.App)
	if err != nil {
		return fmt.Errorf("AUTH_EVENTS_TOPIC or AUTH_EVENT_SOURCE: %w", err)
	}
	tokensCfg := cfg.Tokens
	tokensCfg.Logger = m.logger
	tokensCfg.OnKeyCreated = keyEvents.KeyCreated
	if m.issuer, err = tokens.NewIssuer(ctx, postgres.NewSigningKeyRepository(m.db), tokensCfg); err != nil {
		return fmt.Errorf("signing keys (AUTH_SIGNING_ALG, AUTH_KEY_*): %w", err)
	}

	if m.metrics, err = m.newMetrics(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	requests, err := m.requests()
	if err != nil {
		return err
	}
	httpCfg := cfg.HTTP
	httpCfg.JWKS = m.issuer.JWKS
	httpCfg.Metrics = m.metrics.Handler()
	httpCfg.Checks = []httpapi.Check{
		{Name: m.pgHealth.Name(), Check: m.pgHealth.Check},
		{Name: m.redisHealth.Name(), Check: m.redisHealth.Check},
		{Name: "kafka", Check: m.producer.Ping},
		{Name: "consumer", Check: m.joined},
	}
	httpCfg.Logger = m.logger
	if m.http, err = httpapi.Listen(httpCfg); err != nil {
		return fmt.Errorf("HTTP server (HTTP_ADDR, AUTH_JWKS_URI): %w", err)
	}

	poolCfg := cfg.Pool
	poolCfg.BootstrapServers = cfg.Kafka.BootstrapServers
	poolCfg.Topics = cfg.Topics.RequestTopics()
	poolCfg.Kafka = cfg.Kafka.Consumer
	poolCfg.Logger = m.logger
	consumer, lag, err := consumers.NewKafkaConsumerWithLag(poolCfg)
	if err != nil {
		return fmt.Errorf("kafka consumer (AUTH_WORKERS, AUTH_QUEUE_DEPTH, KAFKA_*): %w", err)
	}
	if m.pool, err = consumers.NewPoolWithConsumer(poolCfg, consumer, requests); err != nil {
		consumer.Close()
		return fmt.Errorf("kafka consumer (AUTH_WORKERS, AUTH_QUEUE_DEPTH): %w", err)
	}
	m.lag = lag
	return nil
}

// joined is the readiness check of the consumer: a worker serves only once
// the group has given it its share of the partitions, which may be none.
func (m *Main) joined(context.Context) error {
	if m.pool == nil || !m.pool.Stats().Joined {
		return domain.Unavailable("consumer", errors.New("no assignment from the consumer group yet"))
	}
	return nil
}

// newOutbox builds the outbox that use cases enqueue to, its values sealed
// under the first of the key-encryption keys keks (purpose "outbox") and
// opened under any, and the relay that publishes it through producer.
// cfg's publisher is set here.
func newOutbox(db *postgres.DB, producer *producers.Producer, keks [][]byte, cfg postgres.OutboxRelayConfig) (*postgres.Outbox, *postgres.OutboxRelay, error) {
	sealer, err := seal.NewBox(keks[0], "outbox", keks[1:]...)
	if err != nil {
		return nil, nil, err
	}
	outbox := postgres.NewOutbox(db, sealer)
	cfg.Publisher = producers.NewOutboxPublisher(producer)
	relay, err := postgres.NewOutboxRelay(outbox, cfg)
	if err != nil {
		return nil, nil, err
	}
	return outbox, relay, nil
}

// ensureTopics creates the topics the worker reads and writes, if missing.
func (m *Main) ensureTopics(ctx context.Context) error {
	admin, err := m.producer.Admin()
	if err != nil {
		return fmt.Errorf("kafka admin: %w", err)
	}
	defer admin.Close()
	t := m.cfg.Topics
	topics := []producers.Topic{
		{Name: m.cfg.Replies.DefaultTopic, Partitions: t.Partitions, Retention: t.RequestRetention},
		{Name: t.DeadLetter, Partitions: t.Partitions, Retention: t.DeadLetterRetention},
		{Name: t.Notifications, Partitions: t.Partitions, Retention: t.RequestRetention},
		{Name: m.cfg.App.EventsTopic, Partitions: t.Partitions, Retention: t.EventsRetention},
	}
	for _, name := range t.RequestTopics() {
		topics = append(topics, producers.Topic{Name: name, Partitions: t.Partitions, Retention: t.RequestRetention})
	}
	err = producers.EnsureTopics(ctx, admin, topics)
	if err != nil {
		return fmt.Errorf("kafka topics (KAFKA_BOOTSTRAP_SERVERS, AUTH_*_TOPIC): %w", err)
	}
	return nil
}

// requests builds the request handler: the application service, its use
// cases and their adapters.
func (m *Main) requests() (*consumers.Requests, error) {
	cfg := m.cfg
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		return nil, err
	}
	hasher, err := passwords.NewHasher(cfg.Hasher)
	if err != nil {
		return nil, fmt.Errorf("AUTH_ARGON2_*: %w", err)
	}
	m.hasher = hasher
	if m.hashes, err = passwords.NewPool(hasher, cfg.HashPool); err != nil {
		return nil, fmt.Errorf("AUTH_HASH_*: %w", err)
	}
	policy, err := passwords.NewPolicy(cfg.Policy)
	if err != nil {
		return nil, fmt.Errorf("AUTH_PASSWORD_MIN_LENGTH: %w", err)
	}
	throttleKeys, err := seal.NewMAC(cfg.digestKey(), "throttle")
	if err != nil {
		return nil, fmt.Errorf("AUTH_KEY_ENCRYPTION_KEY: %w", err)
	}
	throttleCfg := cfg.Throttle
	throttleCfg.Digests = throttleKeys
	throttle, err := redis.NewLoginThrottle(m.redis, throttleCfg)
	if err != nil {
		return nil, fmt.Errorf("AUTH_LOCK_AFTER/AUTH_SOURCE_LIMIT/AUTH_CLIENT_SOURCE_LIMIT: %w", err)
	}
	registerCfg := cfg.RegisterLimit
	registerCfg.Name, registerCfg.Window, registerCfg.Digests = "register", redis.DefaultRegisterWindow, throttleKeys
	registrations, err := redis.NewRateLimiter(m.redis, registerCfg)
	if err != nil {
		return nil, fmt.Errorf("AUTH_REGISTER_LIMIT/AUTH_CLIENT_REGISTER_LIMIT: %w", err)
	}
	sealer, err := cfg.box("outcomes")
	if err != nil {
		return nil, fmt.Errorf("AUTH_KEY_ENCRYPTION_KEY: %w", err)
	}
	digests, err := seal.NewMAC(cfg.digestKey(), "requests")
	if err != nil {
		return nil, fmt.Errorf("AUTH_KEY_ENCRYPTION_KEY: %w", err)
	}
	m.outcomes = postgres.NewOutcomeRepository(m.db)
	sessions := postgres.NewSessionRepository(m.db)
	if m.revoked, err = redis.NewRevocationList(m.redis, redis.RevocationConfig{
		Hold: cfg.Tokens.AccessTTL + clockSkew, Source: sessions, Logger: m.logger,
	}); err != nil {
		return nil, err
	}
	limiter := func(name string, c redis.RateLimitConfig) (*redis.RateLimiter, error) {
		c.Name, c.Window, c.Digests = name, time.Hour, throttleKeys
		return redis.NewRateLimiter(m.redis, c)
	}
	codeRequests, err := limiter("codes", cfg.CodeLimit)
	if err != nil {
		return nil, fmt.Errorf("AUTH_CODE_REQUEST_LIMIT: %w", err)
	}
	codeAccounts, err := limiter("codes-account", redis.RateLimitConfig{Limit: cfg.CodeAccountLimit, ClientLimit: cfg.CodeAccountLimit})
	if err != nil {
		return nil, fmt.Errorf("AUTH_CODE_ACCOUNT_LIMIT: %w", err)
	}
	appCfg := cfg.App
	appCfg.Logger = m.logger
	service, err := app.New(app.Deps{
		Codec:         codec,
		Outcomes:      m.outcomes,
		Tx:            m.db,
		Sealer:        sealer,
		Digests:       digests,
		Outbox:        m.outbox,
		Users:         postgres.NewUserRepository(m.db),
		Sessions:      sessions,
		Hasher:        m.hashes,
		Policy:        policy,
		Throttle:      throttle,
		Registrations: registrations,
		Tokens:        m.issuer,
		Revocations:   m.revoked,
		Codes:         postgres.NewCodeRepository(m.db),
		Notifier:      app.NewNotifier(codec, m.outbox, cfg.Topics.Notifications),

		CodeRequests:           codeRequests,
		CodeRequestsPerAccount: codeAccounts,

		LoginConfig:    cfg.Login,
		RegisterConfig: cfg.Register,
		CodeConfig:     cfg.Codes,
		AdminConfig:    cfg.Admin,
		NewID:          newID,
		Now:            time.Now,
		Random:         rand.Reader,
		Sleep:          consumers.Sleep,
		Logger:         m.logger,
		Health:         map[app.Store]app.StoreHealth{app.Postgres: m.pgHealth, app.Redis: m.redisHealth},
	}, appCfg)
	if err != nil {
		return nil, fmt.Errorf("AUTH_RETRY_WINDOW, AUTH_OUTCOME_TTL, AUTH_EVENTS_TOPIC or AUTH_EVENT_SOURCE: %w", err)
	}
	deadSealer, err := cfg.box("dead letters")
	if err != nil {
		return nil, fmt.Errorf("AUTH_KEY_ENCRYPTION_KEY: %w", err)
	}
	requests, err := consumers.NewRequests(consumers.RequestsDeps{
		Codec:       codec,
		Routing:     cfg.Replies,
		Bindings:    cfg.Topics.ClientBindings,
		Answerer:    service,
		Replies:     producers.NewReplies(m.producer, producers.WithSleep(consumers.Sleep)),
		DeadLetters: producers.NewDeadLetters(m.producer, cfg.Topics.DeadLetter, deadSealer),
		Observer:    requestObserver{m.metrics.Requests()},
		Logger:      m.logger,
	})
	if err != nil {
		return nil, fmt.Errorf("AUTH_REPLY_TOPICS: %w", err)
	}
	return requests, nil
}

// Run consumes requests, serves HTTP and relays the outbox to Kafka until
// ctx ends or the consumer or the server fails. The relay holds its own
// PostgreSQL connection, beside the pool, while it runs.
func (m *Main) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.logger.Info("authworker started", "http", m.http.Addr(), "request_topic", m.cfg.Topics.Request,
		"group", m.cfg.Pool.GroupID, "workers", m.cfg.Pool.Workers)

	var wg sync.WaitGroup
	errs := make([]error, 3)
	wg.Go(func() { errs[0] = m.pool.Run(ctx); cancel() })
	wg.Go(func() { errs[1] = m.http.Run(ctx); cancel() })
	wg.Go(func() { m.issuer.Run(ctx) })
	wg.Go(func() { m.db.ListenSigningKeys(ctx, m.logger, m.issuer.Refresh) })
	wg.Go(func() { m.purgeOutcomes(ctx) })
	wg.Go(func() { m.relay.Run(ctx) })
	wg.Go(func() { m.revoked.Run(ctx) })
	wg.Go(func() { m.pgHealth.Run(ctx) })
	wg.Go(func() { m.redisHealth.Run(ctx) })
	wg.Wait()
	m.logger.Info("authworker stopped")
	return errors.Join(errs...)
}

// purgeOutcomes deletes expired request outcomes every few minutes, in
// batches so that no statement runs long. Every worker does it; they do not
// get in each other's way.
func (m *Main) purgeOutcomes(ctx context.Context) {
	const batch = 1000
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for ctx.Err() == nil {
			n, err := m.outcomes.DeleteExpiredOutcomes(ctx, time.Now(), batch)
			if err != nil {
				if ctx.Err() == nil {
					m.logger.Warn("purge expired outcomes", "err", err)
				}
				break
			}
			if n < batch {
				break
			}
		}
	}
}

// Close releases the connections. It is safe after a failed Open, and
// after an Open that was never followed by Run.
func (m *Main) Close() {
	if m.pool != nil {
		m.pool.Close()
	}
	if m.producer != nil {
		m.producer.Close()
	}
	if m.redis != nil {
		m.redis.Close()
	}
	if m.db != nil {
		m.db.Close()
	}
	if m.hashes != nil {
		m.hashes.Close()
	}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }
