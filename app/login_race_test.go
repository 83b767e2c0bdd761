package app_test

import (
	"context"
	"sync"
	"testing"

	"github.com/authworker/authworker/app"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/schemas"
)

// gateHasher holds the next check of password, once armed, until released:
// the time argon2 takes, stretched for the test to act in.
type gateHasher struct {
	domain.PasswordHasher
	password string

	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (h *gateHasher) Verify(ctx context.Context, pw, encoded string) (bool, bool, error) {
	h.mu.Lock()
	hold := h.armed && pw == h.password
	h.armed = h.armed && !hold
	h.mu.Unlock()
	if hold {
		close(h.entered)
		<-h.release
	}
	return h.PasswordHasher.Verify(ctx, pw, encoded)
}

// TestLoginRacingAnAccountChangeOnPostgres: a login whose password was
// verified before the owner changed the password, or an operator disabled
// or deleted the account, and whose session would be written after, is
// refused (it was answered OK, or NOT_FOUND after a deletion):
// otherwise whoever knew the old password keeps a session the change
// never revoked (an access token for its lifetime, and after a password
// change a refresh token too).
func TestLoginRacingAnAccountChangeOnPostgres(t *testing.T) {
	const email = "ada@example.com"
	tests := []struct {
		name         string
		change       func(first *schemas.LoginResult) (client string, op schemas.Operation)
		wantSessions int // the user's sessions left live
	}{
		{"ChangePassword", func(first *schemas.LoginResult) (string, schemas.Operation) {
			return "web", &schemas.ChangePassword{AccessToken: first.AccessToken, CurrentPassword: password, NewPassword: "quartz lantern meadow orbit"}
		}, 1},
		{"DisableUser", func(first *schemas.LoginResult) (string, schemas.Operation) {
			return "ops", &schemas.DisableUser{UserID: first.UserID}
		}, 0},
		{"DeleteUser", func(first *schemas.LoginResult) (string, schemas.Operation) {
			return "ops", &schemas.DeleteUser{UserID: first.UserID}
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			url := f.usePostgres(t, 8)
			f.deps.AdminConfig = handlers.AdminConfig{Clients: []string{"ops"}}
			gate := &gateHasher{PasswordHasher: f.deps.Hasher, password: password, entered: make(chan struct{}), release: make(chan struct{})}
			f.deps.Hasher = gate
			s := f.service(t)
			registerVia(t, f, email)
			first := ask(t, f, s, "web", "login-1", loginOp(email, password)).Result.(*schemas.LoginResult)

			gate.armed = true
			late := make(chan *schemas.Response, 1)
			go func() { late <- ask(t, f, s, "web", "login-2", loginOp(email, password)) }()
			<-gate.entered
			client, op := tt.change(first)
			if r := ask(t, f, s, client, "change", op); r.Status != schemas.StatusOK {
				t.Fatalf("%s: %s %+v", tt.name, r.Status, r.Result)
			}
			close(gate.release)

			r := <-late
			if r.Status != schemas.StatusUnauthorized {
				t.Errorf("login verified before the change, committed after it: %s, want UNAUTHORIZED", r.Status)
			}
			if live := countRows(t, url, `SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL`, first.UserID); live != tt.wantSessions {
				t.Errorf("%d live sessions, want %d", live, tt.wantSessions)
			}
		})
	}
}

// ask has s answer op from client and decodes the reply.
func ask(t *testing.T, f *fixture, s *app.Service, client, id string, op schemas.Operation) *schemas.Response {
	t.Helper()
	req := &schemas.Request{RequestID: id, Client: schemas.ClientMetadata{ClientID: client}, Operation: op}
	rep, err := s.Answer(context.Background(), req, origin)
	if err != nil {
		t.Error(err)
		return &schemas.Response{}
	}
	return f.decode(t, rep)
}
