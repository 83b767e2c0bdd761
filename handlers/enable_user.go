package handlers

import (
	"context"

	"github.com/authworker/authworker/domain"
)

// EnableUser asks to let a disabled user log in again.
type EnableUser struct {
	UserID domain.UserID
	Client domain.Client // the administrator asking
}

// EnableUserHandler enables accounts.
type EnableUserHandler struct{ admin }

var _ Handler[EnableUser, Done] = (*EnableUserHandler)(nil)

// NewEnableUserHandler returns an EnableUserHandler.
func NewEnableUserHandler(deps AdminDeps, cfg AdminConfig) *EnableUserHandler {
	return &EnableUserHandler{newAdmin(deps, cfg)}
}

// Handle enables the account. Enabling an active account leaves it as it
// is and succeeds. The sessions revoked when it was disabled stay revoked:
// the owner logs in anew. Handle returns CodeUnauthorized unless cmd.Client
// administers accounts, and CodeNotFound when there is no such user.
func (h *EnableUserHandler) Handle(ctx context.Context, cmd EnableUser) (Done, error) {
	if err := h.authorise("enable user", cmd.Client); err != nil {
		return Done{}, err
	}
	now := h.deps.Now()
	_, err := Commit(ctx, h.deps.Work, func(ctx context.Context) (Done, error) {
		var enabled bool
		err := h.deps.Users.UpdateUser(ctx, cmd.UserID, func(u *domain.User) error {
			if u.Status() == domain.UserDisabled {
				u.Enable(now)
				enabled = true
			}
			return nil
		})
		if enabled {
			h.deps.Events.Record(ctx, domain.Event{UserID: cmd.UserID, OccurredAt: now, Payload: domain.AccountEnabled{}})
		}
		return Done{}, err
	})
	if err != nil {
		return Done{}, err
	}
	h.done("account enabled", cmd.UserID, cmd.Client)
	return Done{}, nil
}
