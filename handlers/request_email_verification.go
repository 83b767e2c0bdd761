package handlers

import (
	"context"
	"time"

	"github.com/authworker/authworker/domain"
)

// RequestEmailVerification asks to send the owner of an address a code
// that proves the address.
type RequestEmailVerification struct {
	Email  string
	Client domain.Client
}

// DefaultVerificationCodeTTL is RequestEmailVerificationConfig.CodeTTL's
// default.
const DefaultVerificationCodeTTL = 15 * time.Minute

// RequestEmailVerificationConfig configures a
// RequestEmailVerificationHandler.
type RequestEmailVerificationConfig struct {
	// CodeTTL is how long a verification code is valid. Default
	// DefaultVerificationCodeTTL.
	CodeTTL time.Duration
	// Floor is the least time a request that is well formed and within
	// its source's limit takes, counted from the start of Handle, whether
	// a code went out or not. Keep it above the slowest unit of work that
	// saves a code. Default DefaultCodeFloor.
	Floor time.Duration
}

func (c *RequestEmailVerificationConfig) setDefaults() {
	if c.CodeTTL == 0 {
		c.CodeTTL = DefaultVerificationCodeTTL
	}
	if c.Floor == 0 {
		c.Floor = DefaultCodeFloor
	}
}

// RequestEmailVerificationHandler sends address verification codes.
type RequestEmailVerificationHandler struct {
	sender codeSender
}

// NewRequestEmailVerificationHandler returns a
// RequestEmailVerificationHandler.
func NewRequestEmailVerificationHandler(deps CodeRequestDeps, cfg RequestEmailVerificationConfig) *RequestEmailVerificationHandler {
	deps.setDefaults()
	cfg.setDefaults()
	return &RequestEmailVerificationHandler{sender: codeSender{
		deps: deps, purpose: domain.CodeEmailVerification, kind: domain.NotifyEmailVerification, sent: domain.EmailVerificationRequested{},
		ttl: cfg.CodeTTL, floor: cfg.Floor, wants: wantsVerification,
	}}
}

// wantsVerification reports whether the user is to get a verification
// code: an active account whose address is not verified yet.
func wantsVerification(u *domain.User) bool { return u.CanLogIn() && !u.EmailVerified() }

// Handle sends a verification code to the address, if it belongs to an
// active account whose address is not verified yet, in a
// NotifyEmailVerification notification; the code replaces the account's
// earlier one. The reply is Done whether or not a code went out, and comes
// no sooner than Floor after Handle began, so that neither tells whether
// the address has an account or is verified. A request over the address's
// limit gets the same reply, and sends nothing.
//
// Handle returns CodeInvalid for a malformed address and CodeRateLimited,
// with a retry-after, when the source asked too often: both at once, as
// they tell nothing about the account. It returns CodeUnavailable when a
// store is down.
func (h *RequestEmailVerificationHandler) Handle(ctx context.Context, cmd RequestEmailVerification) (Done, error) {
	return h.sender.handle(ctx, cmd.Email, cmd.Client)
}
