package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/producers"
	"github.com/authworker/authworker/schemas"
)

// Replier sends correlated replies; producers.Replies implements it.
type Replier interface {
	// RouteFor reads where the reply to request goes. It returns
	// producers.ErrReplyTopicNotAllowed or producers.ErrBadReplyHeaders
	// when the request cannot be answered.
	RouteFor(request *kafka.Message) (producers.Route, error)
	// Send produces a reply and waits for the broker.
	Send(ctx context.Context, route producers.Route, code domain.Code, value []byte) error
}

// DeadLetterer keeps records that cannot be answered; producers.DeadLetters
// implements it.
type DeadLetterer interface {
	Send(ctx context.Context, msg *kafka.Message, reason, detail string) error
}

// Sealer encrypts stored replies, which carry tokens; seal.Box implements it.
type Sealer interface {
	Seal(plaintext, ad []byte) []byte
	Open(sealed, ad []byte) ([]byte, error)
}

// UseCase is a handler from package handlers.
type UseCase[C, R any] interface {
	Handle(ctx context.Context, cmd C) (R, error)
}

// UseCases are the operations Requests dispatches to.
type UseCases struct {
	Register UseCase[handlers.Register, handlers.RegisterResult]
	Login    UseCase[handlers.Login, handlers.LoginResult]
}

// RequestsDeps are the collaborators of Requests.
type RequestsDeps struct {
	Codec       *schemas.Codec
	Replies     Replier
	DeadLetters DeadLetterer
	UseCases    UseCases
	// Outcomes and Tx make handling idempotent: a request's effects and
	// its reply are stored in one transaction, and a request seen before
	// is answered with the stored reply.
	Outcomes domain.OutcomeRepository
	Tx       domain.Transactor
	Sealer   Sealer
}

// RequestsConfig configures Requests.
type RequestsConfig struct {
	// RetryWindow is how long a request whose store is unavailable is
	// retried before it is answered UNAVAILABLE; a request's own deadline
	// shortens it. Default 10 seconds.
	RetryWindow time.Duration
	// OutcomeTTL is how long replies are kept for redelivered and retried
	// requests. Default 24 hours.
	OutcomeTTL time.Duration
	Now        func() time.Time // default time.Now
	Logger     *slog.Logger
}

func (c *RequestsConfig) setDefaults() {
	if c.RetryWindow == 0 {
		c.RetryWindow = 10 * time.Second
	}
	if c.OutcomeTTL == 0 {
		c.OutcomeTTL = 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Requests is the Handler for auth.request: it decodes a request, runs its
// use case once, and replies on the request's reply topic. Records that
// cannot be answered go to the dead-letter topic.
//
// Every request has one outcome. The use case's writes and the sealed reply
// commit in one transaction; a request whose reply is stored (redelivered
// after a crash, or retried by its client with the same request id) gets
// that reply again and nothing is done twice. Failures that retrying may
// cure (UNAVAILABLE, DEADLINE_EXCEEDED, RATE_LIMITED, INTERNAL) are answered
// but not stored, so a retry with the same request id is handled afresh.
type Requests struct {
	deps RequestsDeps
	cfg  RequestsConfig
}

var _ Handler = (*Requests)(nil)

// NewRequests returns the request Handler.
func NewRequests(deps RequestsDeps, cfg RequestsConfig) *Requests {
	cfg.setDefaults()
	return &Requests{deps: deps, cfg: cfg}
}

// Dead-letter reasons.
const (
	reasonUndecodable          = "undecodable"
	reasonBadReplyHeaders      = "bad_reply_headers"
	reasonReplyTopicNotAllowed = "reply_topic_not_allowed"
)

// Handle implements Handler.
func (r *Requests) Handle(ctx context.Context, msg *kafka.Message) error {
	route, err := r.deps.Replies.RouteFor(msg)
	if err != nil {
		reason := reasonBadReplyHeaders
		if errors.Is(err, producers.ErrReplyTopicNotAllowed) {
			reason = reasonReplyTopicNotAllowed
		}
		r.cfg.Logger.Warn("request cannot be answered; dead-lettered", "reason", reason, "err", err)
		return r.deps.DeadLetters.Send(ctx, msg, reason, err.Error())
	}

	req, err := r.deps.Codec.DecodeRequest(ctx, msg.Value)
	if err != nil {
		if errors.Is(err, schemas.ErrRegistryUnavailable) {
			return err // transient: the pool retries
		}
		r.cfg.Logger.Warn("undecodable request; dead-lettered", "err", err)
		if err := r.deps.DeadLetters.Send(ctx, msg, reasonUndecodable, err.Error()); err != nil {
			return err
		}
		if route.CorrelationID == nil {
			return nil // nobody could match a reply
		}
		return r.send(ctx, route, r.errorReply("", domain.Errorf(domain.CodeInvalid, "request is not a valid AuthRequest: %v", err)))
	}

	start := r.cfg.Now()
	rep, err := r.answer(ctx, req)
	if err != nil {
		return err // shutting down: no outcome yet, consumed again later
	}
	r.cfg.Logger.Info("request handled", "op", opName(req.Operation), "request_id", req.RequestID,
		"client_id", req.Client.ClientID, "code", codeOf(rep.code), "replayed", rep.replayed,
		"duration_ms", r.cfg.Now().Sub(start).Milliseconds())
	return r.send(ctx, route, rep)
}

// reply is an encoded response and its error code ("" for success).
type reply struct {
	value    []byte
	code     domain.Code
	replayed bool // from the outcome store
}

// errRaced means another delivery of the request stored its outcome first.
var errRaced = errors.New("outcome stored by another delivery")

// answer returns the reply to req: the stored one if there is one, else the
// outcome of running its use case. While a store is unavailable it retries,
// within the retry window and the request's deadline, then answers
// UNAVAILABLE. It returns an error only when ctx ends first.
func (r *Requests) answer(ctx context.Context, req *schemas.Request) (reply, error) {
	key := domain.RequestKey{ClientID: req.Client.ClientID, RequestID: req.RequestID}
	if err := key.Validate(); err != nil {
		return r.errorReply(req.RequestID, err), nil
	}
	until := r.cfg.Now().Add(r.cfg.RetryWindow)
	if req.Deadline != nil {
		until = minTime(until, *req.Deadline)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, *req.Deadline)
		defer cancel()
	}
	backoff := 100 * time.Millisecond
	for races := 0; ; {
		rep, err := r.attempt(ctx, req, key)
		switch {
		case err == nil:
			return rep, nil
		case errors.Is(err, errRaced) && races < 3:
			races++
			continue // the stored outcome is there now
		case ctx.Err() != nil:
			if req.Deadline == nil || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return reply{}, ctx.Err()
			}
			if domain.ErrorCode(err) != domain.CodeDeadlineExceeded {
				err = &domain.Error{Code: domain.CodeDeadlineExceeded, Message: "deadline passed while handling the request", Err: err}
			}
		case domain.ErrorCode(err) == domain.CodeUnavailable && !r.cfg.Now().Add(backoff).After(until):
			r.cfg.Logger.Warn("store unavailable, retrying request", "request_id", req.RequestID, "backoff", backoff, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		return r.errorReply(req.RequestID, err), nil
	}
}

// attempt answers from the outcome store, or runs the use case and stores
// its outcome in the same transaction. Its error is one to retry on or to
// answer with; a use case's failure that is final is stored and returned as
// a reply.
func (r *Requests) attempt(ctx context.Context, req *schemas.Request, key domain.RequestKey) (reply, error) {
	ad := []byte(key.ClientID + "\x00" + key.RequestID)
	now := r.cfg.Now()
	stored, err := r.deps.Outcomes.Outcome(ctx, key, now)
	if err == nil {
		value, err := r.deps.Sealer.Open(stored.Reply, ad)
		if err != nil {
			return reply{}, fmt.Errorf("open stored reply: %w", err)
		}
		return reply{value: value, code: stored.Code, replayed: true}, nil
	}
	if domain.ErrorCode(err) != domain.CodeNotFound {
		return reply{}, fmt.Errorf("load outcome: %w", err)
	}
	if req.Deadline != nil && !now.Before(*req.Deadline) {
		return reply{}, domain.Errorf(domain.CodeDeadlineExceeded, "deadline passed before the request was read")
	}

	var rep reply
	err = r.deps.Tx.InTx(ctx, func(ctx context.Context) error {
		result, err := r.dispatch(ctx, req)
		if err != nil && !final(err) {
			return err // nothing is stored, and the use case's writes roll back
		}
		if err != nil {
			rep = r.errorReply(req.RequestID, err)
		} else {
			rep = r.encode(&schemas.Response{RequestID: req.RequestID, Status: schemas.StatusOK, Result: result}, "")
		}
		err = r.deps.Outcomes.SaveOutcome(ctx, domain.Outcome{
			Key: key, Code: rep.code, Reply: r.deps.Sealer.Seal(rep.value, ad),
			CreatedAt: now, ExpiresAt: now.Add(r.cfg.OutcomeTTL),
		})
		if domain.ErrorCode(err) == domain.CodeConflict {
			return errRaced
		}
		return err
	})
	return rep, err
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

// dispatch runs the use case named by the request's operation.
func (r *Requests) dispatch(ctx context.Context, req *schemas.Request) (schemas.Result, error) {
	client := domain.Client{ID: req.Client.ClientID, IP: deref(req.Client.IP), UserAgent: deref(req.Client.UserAgent)}
	uc := r.deps.UseCases
	switch op := req.Operation.(type) {
	case *schemas.Register:
		res, err := uc.Register.Handle(ctx, handlers.Register{Email: op.Email, Password: op.Password, Client: client})
		if err != nil {
			return nil, err
		}
		return &schemas.RegisterResult{UserID: string(res.UserID)}, nil
	case *schemas.Login:
		res, err := uc.Login.Handle(ctx, handlers.Login{Email: op.Email, Password: op.Password, Client: client})
		if err != nil {
			return nil, err
		}
		return &schemas.LoginResult{
			UserID:                string(res.UserID),
			SessionID:             string(res.SessionID),
			AccessToken:           res.AccessToken.Token,
			AccessTokenExpiresAt:  res.AccessToken.ExpiresAt,
			RefreshToken:          res.RefreshToken,
			RefreshTokenExpiresAt: res.RefreshTokenExpiresAt,
		}, nil
	}
	return nil, domain.Errorf(domain.CodeInvalid, "unsupported operation %T", req.Operation)
}

// errorReply encodes the reply to a failed request. Only the error's
// caller-safe message, field and retry-after reach the wire.
func (r *Requests) errorReply(requestID string, err error) reply {
	code := domain.ErrorCode(err)
	status, ok := schemas.StatusFromCode(string(code))
	if !ok {
		code, status = domain.CodeInternal, schemas.StatusInternal
	}
	if code == domain.CodeInternal {
		r.cfg.Logger.Error("internal error", "request_id", requestID, "err", err)
	}
	e := &schemas.Error{Message: domain.ErrorMessage(err)}
	if de, ok := errors.AsType[*domain.Error](err); ok {
		if de.Field != "" {
			e.Field = &de.Field
		}
		if de.RetryAfter > 0 {
			ms := de.RetryAfter.Milliseconds()
			e.RetryAfterMs = &ms
		}
	}
	return r.encode(&schemas.Response{RequestID: requestID, Status: status, Result: e}, code)
}

// encode encodes a response. One the schema cannot carry is a bug; the
// caller still gets an answer.
func (r *Requests) encode(resp *schemas.Response, code domain.Code) reply {
	value, err := r.deps.Codec.EncodeResponse(resp)
	if err != nil {
		r.cfg.Logger.Error("encode response", "request_id", resp.RequestID, "err", err)
		value, err = r.deps.Codec.EncodeResponse(&schemas.Response{
			RequestID: resp.RequestID, Status: schemas.StatusInternal, Result: &schemas.Error{Message: "internal error"},
		})
		if err != nil {
			// Only a broken schema gets here; the auth_error header still
			// tells the caller, and a crash would only loop on the record.
			r.cfg.Logger.Error("encode internal error response", "request_id", resp.RequestID, "err", err)
			value = nil
		}
		code = domain.CodeInternal
	}
	return reply{value: value, code: code}
}

func (r *Requests) send(ctx context.Context, route producers.Route, rep reply) error {
	return r.deps.Replies.Send(ctx, route, rep.code, rep.value)
}

func opName(op schemas.Operation) string {
	switch op.(type) {
	case *schemas.Register:
		return "register"
	case *schemas.Login:
		return "login"
	}
	return fmt.Sprintf("%T", op)
}

func codeOf(code domain.Code) string {
	if code == "" {
		return "ok"
	}
	return string(code)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
