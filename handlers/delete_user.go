package handlers

import (
	"context"

	"github.com/authworker/authworker/domain"
)

// DeleteUser asks to erase a user's account.
type DeleteUser struct {
	UserID domain.UserID
	Client domain.Client // the administrator asking
}

// DeleteUserHandler deletes accounts.
type DeleteUserHandler struct{ admin }

var _ Handler[DeleteUser, Done] = (*DeleteUserHandler)(nil)

// NewDeleteUserHandler returns a DeleteUserHandler.
func NewDeleteUserHandler(deps AdminDeps, cfg AdminConfig) *DeleteUserHandler {
	return &DeleteUserHandler{newAdmin(deps, cfg)}
}

// Handle revokes the account's live sessions and erases it, in one unit of
// work, then puts the sessions on the revocation list. Erasing deletes the
// personal data and frees the e-mail address; a tombstone stays for the
// audit trail, which no lookup finds. Handle returns CodeUnauthorized
// unless cmd.Client administers accounts, and CodeNotFound when there is no
// such user, or it was deleted already.
func (h *DeleteUserHandler) Handle(ctx context.Context, cmd DeleteUser) (Done, error) {
	if err := h.authorise("delete user", cmd.Client); err != nil {
		return Done{}, err
	}
	now := h.deps.Now()
	// fn's result is the reply stored for replay, so the revoked sessions
	// leave it through a variable, set anew on every run.
	var revoked []domain.SessionID
	_, err := Commit(ctx, h.deps.Work, func(ctx context.Context) (Done, error) {
		// Erased first: it locks the account, so a login that verified the
		// password before is refused, or has opened its session already and
		// the revocation below sees it. The sessions outlive the erasure,
		// and their revocation is what keeps them from being used.
		if err := h.deps.Users.EraseUser(ctx, cmd.UserID, now); err != nil {
			return Done{}, err
		}
		var err error
		revoked, err = h.deps.Sessions.RevokeUserSessions(ctx, cmd.UserID, "", domain.RevokedByAccountDeleted, now)
		if err != nil {
			return Done{}, err
		}
		h.deps.Events.Record(ctx, domain.RevokedSessions(cmd.UserID, domain.RevokedByAccountDeleted, now, revoked...)...)
		// The last event that names the account: downstream stores erase
		// what they keep of it.
		h.deps.Events.Record(ctx, domain.Event{UserID: cmd.UserID, OccurredAt: now, Payload: domain.AccountDeleted{}})
		return Done{}, nil
	})
	if err != nil {
		return Done{}, err
	}
	h.done("account deleted", cmd.UserID, cmd.Client)
	h.revoke(ctx, cmd.UserID, revoked)
	return Done{}, nil
}
