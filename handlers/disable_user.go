package handlers

import (
	"context"

	"github.com/authworker/authworker/domain"
)

// DisableUser asks to stop a user from logging in and to end the user's
// sessions.
type DisableUser struct {
	UserID domain.UserID
	Client domain.Client // the administrator asking
}

// DisableUserHandler disables accounts.
type DisableUserHandler struct{ admin }

var _ Handler[DisableUser, Done] = (*DisableUserHandler)(nil)

// NewDisableUserHandler returns a DisableUserHandler.
func NewDisableUserHandler(deps AdminDeps, cfg AdminConfig) *DisableUserHandler {
	return &DisableUserHandler{newAdmin(deps, cfg)}
}

// Handle disables the account and revokes its live sessions in one unit of
// work, then puts the sessions on the revocation list. Disabling a disabled
// account leaves it as it is and succeeds. Handle returns CodeUnauthorized
// unless cmd.Client administers accounts, and CodeNotFound when there is no
// such user.
func (h *DisableUserHandler) Handle(ctx context.Context, cmd DisableUser) (Done, error) {
	if err := h.authorise("disable user", cmd.Client); err != nil {
		return Done{}, err
	}
	now := h.deps.Now()
	// fn's result is the reply stored for replay, so the revoked sessions
	// leave it through a variable, set anew on every run.
	var revoked []domain.SessionID
	_, err := Commit(ctx, h.deps.Work, func(ctx context.Context) (Done, error) {
		revoked = nil
		var disabled bool
		err := h.deps.Users.UpdateUser(ctx, cmd.UserID, func(u *domain.User) error {
			if u.Status() != domain.UserDisabled {
				u.Disable(now)
				disabled = true
			}
			return nil
		})
		if err != nil {
			return Done{}, err
		}
		if disabled {
			h.deps.Events.Record(ctx, domain.Event{UserID: cmd.UserID, OccurredAt: now, Payload: domain.AccountDisabled{}})
		}
		// Revoked even when the account was disabled already: a login
		// that raced an earlier disable may have opened one.
		revoked, err = h.deps.Sessions.RevokeUserSessions(ctx, cmd.UserID, "", domain.RevokedByAccountDisabled, now)
		h.deps.Events.Record(ctx, domain.RevokedSessions(cmd.UserID, domain.RevokedByAccountDisabled, now, revoked...)...)
		return Done{}, err
	})
	if err != nil {
		return Done{}, err
	}
	h.done("account disabled", cmd.UserID, cmd.Client)
	h.revoke(ctx, cmd.UserID, revoked)
	return Done{}, nil
}
