package handlers

import (
	"context"

	"github.com/authworker/authworker/domain"
)

// UnlockUser asks to clear the failed logins and locks of a user's account.
type UnlockUser struct {
	UserID domain.UserID
	Client domain.Client // the administrator asking
}

// UnlockUserHandler unlocks accounts.
type UnlockUserHandler struct{ admin }

var _ Handler[UnlockUser, Done] = (*UnlockUserHandler)(nil)

// NewUnlockUserHandler returns an UnlockUserHandler.
func NewUnlockUserHandler(deps AdminDeps, cfg AdminConfig) *UnlockUserHandler {
	return &UnlockUserHandler{newAdmin(deps, cfg)}
}

// Handle clears the failed logins and locks the LoginThrottle keeps for
// the user's address, so that its owner may try again from anywhere. It
// writes nothing to the database. Handle returns CodeUnauthorized unless
// cmd.Client administers accounts, CodeNotFound when there is no such user,
// and CodeUnavailable when the throttle's store is down.
func (h *UnlockUserHandler) Handle(ctx context.Context, cmd UnlockUser) (Done, error) {
	if err := h.authorise("unlock user", cmd.Client); err != nil {
		return Done{}, err
	}
	user, err := h.deps.Users.UserByID(ctx, cmd.UserID)
	if err != nil {
		return Done{}, err
	}
	if err := h.deps.Throttle.Unlock(ctx, user.Email()); err != nil {
		return Done{}, err
	}
	h.deps.Events.Record(ctx, domain.Event{UserID: user.ID(), OccurredAt: h.deps.Now(), Payload: domain.AccountUnlocked{}})
	h.done("account unlocked", cmd.UserID, cmd.Client)
	return Done{}, nil
}
