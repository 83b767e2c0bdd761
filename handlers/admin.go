package handlers

import (
	"context"
	"log/slog"

	"github.com/authworker/authworker/domain"
)

// Account administration: operators' tools and trusted services disable,
// enable, unlock and delete accounts by user id. The use cases share a
// configuration, their collaborators and the helpers below.

// AdminConfig says which clients may administer accounts.
type AdminConfig struct {
	// Clients are the ids of the clients allowed to administer accounts:
	// operators' tools and trusted services. Empty allows nobody. A client
	// id is what the request says: bind each of these to a request topic
	// only its producer may write (consumers.ClientBindings), or any
	// producer may speak as an administrator.
	Clients []string
}

// AdminDeps are the collaborators of the account administration use cases.
// Each uses a part: DisableUser and DeleteUser all but Throttle; EnableUser
// Work, Users and Now; UnlockUser Users and Throttle. Logger is optional.
type AdminDeps struct {
	Work        UnitOfWork
	Users       domain.UserRepository
	Sessions    domain.SessionRepository
	Revocations domain.RevocationList
	Throttle    domain.LoginThrottle
	Events      domain.Events
	Now         Clock
	Logger      *slog.Logger
}

// admin is what the administration use cases share: who may use them, and
// what follows an action.
type admin struct {
	deps    AdminDeps
	clients map[string]bool
}

func newAdmin(deps AdminDeps, cfg AdminConfig) admin {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	clients := make(map[string]bool, len(cfg.Clients))
	for _, id := range cfg.Clients {
		if id != "" { // names no client; a slip in the configuration
			clients[id] = true
		}
	}
	return admin{deps: deps, clients: clients}
}

// authorise refuses a client that may not administer accounts. Use cases
// call it before anything else, so that a refused client learns nothing,
// not even which user ids exist.
func (a admin) authorise(operation string, client domain.Client) error {
	if a.clients[client.ID] {
		return nil
	}
	a.deps.Logger.Warn("account administration refused", "operation", operation, "client_id", client.ID)
	return domain.Errorf(domain.CodeUnauthorized, "client is not allowed to administer accounts")
}

// done logs an action that was carried out, for the audit trail. It names
// the user by id only: an e-mail address is personal data, kept out of logs.
func (a admin) done(msg string, user domain.UserID, client domain.Client) {
	a.deps.Logger.Info(msg, "user_id", user, "client_id", client.ID)
}

// revoke puts sessions whose revocation was committed on the revocation
// list, so that their access tokens stop working at once. It is best
// effort: the revocations are stored, and the list takes them at its next
// rebuild.
func (a admin) revoke(ctx context.Context, user domain.UserID, ids []domain.SessionID) {
	if len(ids) == 0 {
		return
	}
	if err := a.deps.Revocations.Revoke(ctx, ids...); err != nil {
		a.deps.Logger.Warn("put revoked sessions on the revocation list", "user_id", user, "sessions", len(ids), "err", err)
	}
}
