// Package app is authworker's application service: it answers one decoded
// request, once. Around every use case it applies the same policies, each
// written once:
//
//   - idempotent replay: a request whose outcome is stored (redelivered after
//     a crash, or retried by its client under the same request id) is
//     answered with the stored reply, byte for byte, and nothing runs again;
//   - the unit of work: a use case's writes and the request's sealed reply
//     commit in one transaction (handlers.UnitOfWork), so an outcome is
//     stored if and only if its effects are;
//   - retry: while the database is unavailable, the steps that only touch it
//     (loading a stored outcome, the unit of work, storing an outcome) are
//     retried within the retry window and the request's deadline; the use
//     case's own work (hashing, throttling) never runs twice;
//   - finality: an OK reply and the failures a retry cannot change
//     (INVALID, UNAUTHORIZED, CONFLICT, NOT_FOUND) are stored; the others
//     (RATE_LIMITED, UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL) are answered
//     and not stored, so a retry under the same request id runs afresh;
//   - error classification: every error becomes a wire status through the
//     one status table in package schemas, with only its caller-safe parts
//     on the wire and its cause in the log.
//
// The operations themselves are listed once, in the registry
// (operations.go): each entry names an operation, converts its wire record
// to a command and its result back, builds its use case, and says whether
// its outcome is stored for replay.
//
// app knows the wire types (package schemas) but not Kafka: package
// consumers reads records, calls Service.Answer and sends the reply.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/schemas"
)

// Defaults of Config.
const (
	DefaultRetryWindow = 10 * time.Second
	DefaultOutcomeTTL  = 24 * time.Hour
	// DefaultUnavailableRetryAfter is the retry-after of an UNAVAILABLE
	// reply whose error named none.
	DefaultUnavailableRetryAfter = time.Second
)

// Config configures a Service.
type Config struct {
	// RetryWindow is how long the database steps of a request are retried
	// while the database is unavailable, before the request is answered
	// UNAVAILABLE; the request's own deadline shortens it.
	RetryWindow time.Duration
	// OutcomeTTL is how long replies are kept for redelivered and retried
	// requests.
	OutcomeTTL time.Duration
	// EventsTopic is where domain events go; default auth.events.
	EventsTopic string
	// EventSource is the CloudEvents source of the events: a URI
	// reference naming this deployment, such as the token issuer.
	EventSource string
	Now         func() time.Time // default time.Now
	Logger      *slog.Logger     // default discards
}

func (c *Config) setDefaults() {
	if c.RetryWindow == 0 {
		c.RetryWindow = DefaultRetryWindow
	}
	if c.OutcomeTTL == 0 {
		c.OutcomeTTL = DefaultOutcomeTTL
	}
	if c.EventsTopic == "" {
		c.EventsTopic = DefaultEventsTopic
	}
	if c.EventSource == "" {
		c.EventSource = DefaultEventSource
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.RetryWindow <= 0:
		return errors.New("retry window must be positive")
	case c.OutcomeTTL <= 0:
		return errors.New("outcome TTL must be positive")
	case !domain.ValidTopic(c.EventsTopic):
		return fmt.Errorf("events topic %q is not a legal topic name", c.EventsTopic)
	case !validURIReference(c.EventSource):
		return fmt.Errorf("event source %q is not a URI reference", c.EventSource)
	}
	return nil
}

// validURIReference reports whether s is a non-empty URI reference (RFC
// 3986) as CloudEvents wants its source: no spaces or control characters,
// and parsable.
func validURIReference(s string) bool {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return false
	}
	_, err := url.Parse(s)
	return err == nil
}

// Sealer encrypts stored replies, which carry tokens; seal.Box implements
// it.
type Sealer interface {
	Seal(plaintext, ad []byte) []byte
	Open(sealed, ad []byte) ([]byte, error)
}

// Digester computes keyed digests; seal.MAC implements it.
type Digester interface {
	// Sum returns the digest of parts, each framed so that parts cannot
	// run into each other.
	Sum(parts ...[]byte) []byte
}

// Origin is what the transport knows of a request beyond its value.
type Origin struct {
	// ReplyTopic is where the reply goes; part of what identifies the
	// request for replay.
	ReplyTopic string
	// TraceParent is the W3C traceparent header the request carried, if
	// any: the events it causes carry it on.
	TraceParent string
}

// Reply is the encoded answer to a request.
type Reply struct {
	Value []byte
	// Code is the reply's error code, "" for OK: the auth_error header.
	Code domain.Code
	// Replayed is set when the reply came from the outcome store.
	Replayed bool
}

// Service answers requests. It is safe for concurrent use.
type Service struct {
	codec    *schemas.Codec
	outcomes domain.OutcomeRepository
	tx       domain.Transactor
	sealer   Sealer
	digests  Digester
	outbox   domain.Outbox
	newID    handlers.IDGenerator
	cfg      Config
	ops      map[reflect.Type]*operation
	health   map[Store]StoreHealth
}

// New builds the Service and, from deps, the use case of every operation
// in the registry.
func New(deps Deps, cfg Config) (*Service, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := deps.validate(); err != nil {
		return nil, err
	}
	s := &Service{
		codec:    deps.Codec,
		outcomes: deps.Outcomes,
		tx:       deps.Tx,
		sealer:   deps.Sealer,
		digests:  deps.Digests,
		outbox:   deps.Outbox,
		newID:    deps.NewID,
		cfg:      cfg,
		ops:      map[reflect.Type]*operation{},
		health:   deps.Health,
	}
	work := unitOfWork{s}
	deps.events = recorder{logger: cfg.Logger}
	for _, d := range registry {
		if _, dup := s.ops[d.wire]; dup {
			return nil, fmt.Errorf("operation %s registered twice", d.name)
		}
		op := d.build(deps, work)
		s.ops[d.wire] = &op
	}
	return s, nil
}

// Answer returns the reply to req, which came from origin. It
// returns an error only when ctx ends before the request has an outcome
// (the worker is stopping): the request must then be read again later.
func (s *Service) Answer(ctx context.Context, req *schemas.Request, origin Origin) (Reply, error) {
	start := s.cfg.Now()
	c, err := s.newCall(req, origin)
	if err != nil {
		return s.errorReply(req.RequestID, err), nil
	}
	if req.Deadline != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, *req.Deadline)
		defer cancel()
	}
	rep, err := s.answer(ctx, c)
	if err != nil {
		return Reply{}, err
	}
	if rep.Code == domain.CodeUnavailable && !c.refused {
		s.suspect(c.needs)
	}
	s.cfg.Logger.Info("request handled", "op", c.op.name, "request_id", req.RequestID,
		"client_id", req.Client.ClientID, "code", codeName(rep.Code), "replayed", rep.Replayed,
		"duration_ms", s.cfg.Now().Sub(start).Milliseconds())
	return rep, nil
}

// answer runs c's operation under the store-health, replay, deadline and
// finality rules.
func (s *Service) answer(ctx context.Context, c *call) (Reply, error) {
	if c.op.replay == stored {
		if err := s.closed(needsPostgres); err != nil {
			return s.refuse(c, err), nil
		}
		rep, found, err := s.replay(ctx, c)
		if err != nil {
			return s.failure(ctx, c, err)
		}
		if found {
			return rep, nil
		}
	}
	if err := s.closed(c.needs); err != nil {
		return s.refuse(c, err), nil
	}
	if c.req.Deadline != nil && !s.cfg.Now().Before(*c.req.Deadline) {
		return s.noOutcome(ctx, c, domain.Errorf(domain.CodeDeadlineExceeded, "deadline passed before the request was read"))
	}
	c.running = true
	result, err := c.op.handle(withCall(ctx, c), c.req)
	if c.answered != nil {
		return *c.answered, nil // stored with the use case's writes, or by another delivery
	}
	if err != nil && !final(err) {
		s.publishAlone(ctx, c)
		return s.noOutcome(ctx, c, err)
	}
	rep := s.reply(c, result, err)
	if !c.op.stored() {
		s.publishAlone(ctx, c)
		return rep, nil
	}
	stored, err := s.store(ctx, c, rep)
	if err != nil {
		return s.failure(ctx, c, err)
	}
	return stored, nil
}

// closed returns the UNAVAILABLE error of the first of stores known to be
// down, with the retry-after that suits a store pinged every fraction of a
// second; nil when none is.
func (s *Service) closed(stores []Store) error {
	for _, st := range stores {
		if h := s.health[st]; h != nil && h.Down() {
			return &domain.Error{Code: domain.CodeUnavailable, Message: string(st) + " unavailable", RetryAfter: DefaultUnavailableRetryAfter}
		}
	}
	return nil
}

// refuse answers c with err, a store known down, before anything ran.
func (s *Service) refuse(c *call, err error) Reply {
	c.refused = true
	return s.errorReply(c.req.RequestID, err)
}

// suspect has the health of stores checked, after a request found one of
// them unavailable.
func (s *Service) suspect(stores []Store) {
	for _, st := range stores {
		if h := s.health[st]; h != nil {
			h.Suspect()
		}
	}
}

// noOutcome answers a request whose use case reached no outcome, with err.
// An operation that looks its outcome up only on conflict looks it up now:
// a request answered before gets that answer, not the failure of its rerun
// (a store that is down, say), and a request that reuses another's id gets
// CONFLICT.
func (s *Service) noOutcome(ctx context.Context, c *call, err error) (Reply, error) {
	if c.op.replay == storedLookupOnConflict {
		rep, found, lookupErr := s.replay(ctx, c)
		switch {
		case errors.Is(lookupErr, errReused):
			return s.errorReply(c.req.RequestID, errReused), nil
		case lookupErr == nil && found:
			return rep, nil
		}
	}
	return s.failure(ctx, c, err)
}

// failure answers a request that has no outcome: with DEADLINE_EXCEEDED
// once its deadline passed, else with err. When ctx ended for another
// reason (the worker is stopping), it returns ctx's error instead, and the
// request is read again later.
func (s *Service) failure(ctx context.Context, c *call, err error) (Reply, error) {
	if ctx.Err() != nil {
		if c.req.Deadline == nil || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return Reply{}, ctx.Err()
		}
		if domain.ErrorCode(err) != domain.CodeDeadlineExceeded {
			err = &domain.Error{Code: domain.CodeDeadlineExceeded, Message: "deadline passed while handling the request", Err: err}
		}
	}
	return s.errorReply(c.req.RequestID, err), nil
}

// final reports whether a use case's failure is the request's outcome, to
// store and replay, rather than a condition a retry may change.
func final(err error) bool {
	switch domain.ErrorCode(err) {
	case domain.CodeInvalid, domain.CodeUnauthorized, domain.CodeConflict, domain.CodeNotFound:
		return true
	}
	return false
}

// reply encodes the outcome of c's use case: its result, or its final
// error.
func (s *Service) reply(c *call, result any, err error) Reply {
	if err != nil {
		return s.errorReply(c.req.RequestID, err)
	}
	return s.encode(&schemas.Response{RequestID: c.req.RequestID, Status: schemas.StatusOK, Result: c.op.result(result)}, "")
}

// errorReply encodes the reply to a failed request. Only the error's
// caller-safe message, field and retry-after reach the wire; the cause of
// an internal error is logged.
func (s *Service) errorReply(requestID string, err error) Reply {
	code := domain.ErrorCode(err)
	switch code {
	case domain.CodeInternal:
		s.cfg.Logger.Error("internal error", "request_id", requestID, "err", err)
	case domain.CodeUnavailable:
		if e, ok := errors.AsType[*domain.Error](err); !ok || e.RetryAfter == 0 {
			err = &domain.Error{Code: code, Message: domain.ErrorMessage(err), RetryAfter: DefaultUnavailableRetryAfter, Err: err}
		}
	}
	resp := schemas.ErrorResponse(requestID, err)
	return s.encode(resp, resp.Status.Code())
}

// encode encodes a response. One the schema cannot carry is a bug; the
// caller still gets an answer.
func (s *Service) encode(resp *schemas.Response, code domain.Code) Reply {
	value, err := s.codec.EncodeResponse(resp)
	if err == nil {
		return Reply{Value: value, Code: code}
	}
	s.cfg.Logger.Error("encode response", "request_id", resp.RequestID, "err", err)
	value, err = s.codec.EncodeResponse(schemas.ErrorResponse(resp.RequestID, errors.New("unencodable response")))
	if err != nil {
		// Only a broken schema gets here; the auth_error header still
		// tells the caller, and a crash would only loop on the record.
		s.cfg.Logger.Error("encode internal error response", "request_id", resp.RequestID, "err", err)
		value = nil
	}
	return Reply{Value: value, Code: domain.CodeInternal}
}

func codeName(code domain.Code) string {
	if code == "" {
		return "ok"
	}
	return string(code)
}
