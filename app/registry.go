package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/schemas"
)

// Deps are the ports the Service and its use cases need, and the settings
// the use cases share.
type Deps struct {
	Codec    *schemas.Codec
	Outcomes domain.OutcomeRepository
	Tx       domain.Transactor
	Sealer   Sealer
	Digests  Digester
	// Outbox takes the domain events (and the Notifier's messages) in the
	// transaction of the change they report.
	Outbox domain.Outbox

	Users    domain.UserRepository
	Sessions domain.SessionRepository
	Hasher   domain.PasswordHasher
	Policy   domain.PasswordPolicy
	Throttle domain.LoginThrottle
	// Registrations limits registrations per source.
	Registrations domain.RateLimiter
	Tokens        domain.TokenIssuer
	Revocations   domain.RevocationList
	Codes         domain.CodeRepository
	Notifier      domain.Notifier
	// CodeRequests limits requests for one-time codes per source, and
	// CodeRequestsPerAccount per address.
	CodeRequests           domain.RateLimiter
	CodeRequestsPerAccount domain.RateLimiter

	LoginConfig    handlers.LoginConfig
	RegisterConfig handlers.RegisterConfig
	CodeConfig     CodeConfig
	AdminConfig    handlers.AdminConfig
	NewID          handlers.IDGenerator
	Now            handlers.Clock
	Random         io.Reader // crypto/rand in production
	// Sleep holds a reply back until a floor (the failure floor of Login,
	// the reply floor of the code operations); default a timer. In
	// production consumers.Sleep, which lets the record's worker take
	// other records meanwhile.
	Sleep  func(ctx context.Context, d time.Duration)
	Logger *slog.Logger

	// Health is what is known of each store's health: a request whose
	// operation needs a store known to be down is answered UNAVAILABLE at
	// once. A store missing here is taken as up. health.Store implements
	// StoreHealth.
	Health map[Store]StoreHealth

	// events is the Service's recorder, set by New.
	events domain.Events
}

// CodeConfig sets how one-time codes live; zero fields take the handlers'
// defaults.
type CodeConfig struct {
	ResetTTL        time.Duration // how long a password-reset code is valid
	VerificationTTL time.Duration // how long an address-verification code is valid
	// Floor is the least time the code operations take to answer, so that
	// timing tells nothing about an account.
	Floor time.Duration
}

func (d Deps) validate() error {
	var missing []error
	for _, f := range []struct {
		name  string
		value any
	}{
		{"Codec", d.Codec}, {"Outcomes", d.Outcomes}, {"Tx", d.Tx}, {"Sealer", d.Sealer}, {"Digests", d.Digests}, {"Outbox", d.Outbox},
		{"Users", d.Users}, {"Sessions", d.Sessions}, {"Hasher", d.Hasher}, {"Policy", d.Policy},
		{"Throttle", d.Throttle}, {"Registrations", d.Registrations}, {"Tokens", d.Tokens},
		{"Revocations", d.Revocations}, {"Codes", d.Codes}, {"Notifier", d.Notifier},
		{"CodeRequests", d.CodeRequests}, {"CodeRequestsPerAccount", d.CodeRequestsPerAccount}, {"NewID", d.NewID}, {"Now", d.Now}, {"Random", d.Random},
	} {
		if isNil(f.value) {
			missing = append(missing, errors.New("app: "+f.name+" is required"))
		}
	}
	return errors.Join(missing...)
}

// isNil reports whether v is nil or holds a nil pointer, func or map.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Interface, reflect.Slice, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

// Store names a store that operations need.
type Store string

// The stores.
const (
	// Postgres is the source of truth: accounts, sessions, codes, stored
	// outcomes and the outbox.
	Postgres Store = "postgres"
	// Redis holds the login throttle, the rate limits and the revocation
	// list.
	Redis Store = "redis"
)

// StoreHealth is what the Service knows of one store's health.
type StoreHealth interface {
	// Down reports whether the store is known to be down.
	Down() bool
	// Suspect says that a request found the store unavailable: its health
	// is to be checked now. It must not block.
	Suspect()
}

// Sets of stores an operation needs; shared, never changed.
var (
	needsPostgres = []Store{Postgres}
	needsRedis    = []Store{Redis}
	needsBoth     = []Store{Postgres, Redis}
)

// always is the needs of an operation that needs the same stores whatever
// its command.
func always[C any](stores []Store) func(C) []Store {
	return func(C) []Store { return stores }
}

// replay says whether an operation's outcome is stored, so that a request
// delivered again is answered from it, and when it is looked up.
type replay int

const (
	// notStored: the outcome is not stored, and a request delivered again
	// runs again. For operations that change nothing.
	notStored replay = iota
	// stored: the outcome is stored with the operation's effects, and
	// looked up before the use case runs: a request answered before is
	// answered from it, and nothing runs again.
	stored
	// storedLookupOnConflict: the outcome is stored, but looked up only when
	// storing it finds one there already; the use case's unit of work then
	// rolls back, and the stored reply is the answer. That saves a round
	// trip on every request, at the price of running a repeated request's
	// use case once more, up to its unit of work. Only for cheap use cases
	// whose every effect is in their unit of work or follows its commit:
	// Refresh (a repeated refresh finds its token spent and would revoke
	// the session, but the revocation rolls back with the unit of work).
	storedLookupOnConflict
)

// operation is a registry entry, built: what Answer needs to run it.
type operation struct {
	name   string
	replay replay
	// needs returns the stores a request needs, as far as the request
	// tells: a store it only writes to best effort is not among them.
	needs func(req *schemas.Request) []Store
	// handle converts the request to the use case's command and runs it.
	handle func(ctx context.Context, req *schemas.Request) (any, error)
	// result converts the use case's result to the wire.
	result func(any) schemas.Result
}

// definition is a registry entry: an operation before its use case is
// built.
type definition struct {
	name  string
	wire  reflect.Type // the operation's record, such as *schemas.Login
	build func(Deps, handlers.UnitOfWork) operation
}

// define is a registry entry for the operation whose wire record is W:
// its name (in logs and metrics), whether its outcome is stored for replay,
// which stores its command C needs, how to build its use case, and how to
// convert its record to the command and the use case's result R to the
// wire.
func define[W schemas.Operation, C, R any](
	name string,
	replayed replay,
	needs func(C) []Store,
	useCase func(Deps, handlers.UnitOfWork) handlers.Handler[C, R],
	command func(W, domain.Client) C,
	result func(R) schemas.Result,
) definition {
	return definition{
		name: name,
		wire: reflect.TypeFor[W](),
		build: func(d Deps, work handlers.UnitOfWork) operation {
			uc := useCase(d, work)
			return operation{
				name:   name,
				replay: replayed,
				needs: func(req *schemas.Request) []Store {
					return needs(command(req.Operation.(W), domain.Client{}))
				},
				handle: func(ctx context.Context, req *schemas.Request) (any, error) {
					c := callOf(ctx)
					return uc.Handle(ctx, command(req.Operation.(W), c.client))
				},
				result: func(v any) schemas.Result { return result(v.(R)) },
			}
		},
	}
}

// stored reports whether the operation's outcome is stored for replay.
func (o *operation) stored() bool { return o.replay != notStored }

// OperationNames returns the name of every operation the worker answers,
// in registry order: the fixed set that logs and metrics name operations
// by.
func OperationNames() []string {
	names := make([]string, len(registry))
	for i, d := range registry {
		names[i] = d.name
	}
	return names
}

// OperationName returns the name of op's operation, or "" when the worker
// does not answer op.
func OperationName(op schemas.Operation) string {
	t := reflect.TypeOf(op)
	for _, d := range registry {
		if d.wire == t {
			return d.name
		}
	}
	return ""
}
