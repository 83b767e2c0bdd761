package handlers

import (
	"context"
	"time"

	"github.com/authworker/authworker/domain"
)

// RequestPasswordReset asks to send the owner of an address a code that
// sets a new password.
type RequestPasswordReset struct {
	Email  string
	Client domain.Client
}

// DefaultResetCodeTTL is RequestPasswordResetConfig.CodeTTL's default.
const DefaultResetCodeTTL = 15 * time.Minute

// RequestPasswordResetConfig configures a RequestPasswordResetHandler.
type RequestPasswordResetConfig struct {
	// CodeTTL is how long a reset code is valid. Default
	// DefaultResetCodeTTL.
	CodeTTL time.Duration
	// Floor is the least time a request that is well formed and within
	// its source's limit takes, counted from the start of Handle, whether
	// a code went out or not. Keep it above the slowest unit of work that
	// saves a code. Default DefaultCodeFloor.
	Floor time.Duration
}

func (c *RequestPasswordResetConfig) setDefaults() {
	if c.CodeTTL == 0 {
		c.CodeTTL = DefaultResetCodeTTL
	}
	if c.Floor == 0 {
		c.Floor = DefaultCodeFloor
	}
}

// RequestPasswordResetHandler sends password reset codes.
type RequestPasswordResetHandler struct {
	sender codeSender
}

// NewRequestPasswordResetHandler returns a RequestPasswordResetHandler.
func NewRequestPasswordResetHandler(deps CodeRequestDeps, cfg RequestPasswordResetConfig) *RequestPasswordResetHandler {
	deps.setDefaults()
	cfg.setDefaults()
	return &RequestPasswordResetHandler{sender: codeSender{
		deps: deps, purpose: domain.CodePasswordReset, kind: domain.NotifyPasswordReset, sent: domain.PasswordResetRequested{},
		ttl: cfg.CodeTTL, floor: cfg.Floor, wants: (*domain.User).CanLogIn,
	}}
}

// Handle sends a reset code to the address, if it belongs to an active
// account, in a NotifyPasswordReset notification; the code replaces the
// account's earlier one. The reply is Done whether or not a code went out,
// and comes no sooner than Floor after Handle began, so that neither tells
// whether the address has an account. A request over the address's limit
// gets the same reply, and sends nothing.
//
// Handle returns CodeInvalid for a malformed address and CodeRateLimited,
// with a retry-after, when the source asked too often: both at once, as
// they tell nothing about the account. It returns CodeUnavailable when a
// store is down.
func (h *RequestPasswordResetHandler) Handle(ctx context.Context, cmd RequestPasswordReset) (Done, error) {
	return h.sender.handle(ctx, cmd.Email, cmd.Client)
}
