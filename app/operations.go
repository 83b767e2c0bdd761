package app

import (
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/schemas"
)

// registry lists every operation the worker answers. Adding one takes a
// record in the request schema (and its result in the response schema), a
// use case in package handlers, an entry here, and a method in package
// client.
var registry = []definition{
	define("register", stored, always[handlers.Register](needsBoth),
		func(d Deps, work handlers.UnitOfWork) handlers.Handler[handlers.Register, handlers.RegisterResult] {
			return handlers.NewRegisterHandler(handlers.RegisterDeps{
				Work: work, Users: d.Users, Policy: d.Policy, Hasher: d.Hasher, Limiter: d.Registrations,
				AccountLimiter: d.CodeRequestsPerAccount, Notifier: d.Notifier, Events: d.events, NewID: d.NewID, Now: d.Now, Logger: d.Logger,
			}, d.RegisterConfig)
		},
		func(w *schemas.Register, client domain.Client) handlers.Register {
			return handlers.Register{Email: w.Email, Password: w.Password, Client: client}
		},
		func(r handlers.RegisterResult) schemas.Result {
			return &schemas.RegisterResult{UserID: string(r.UserID)}
		},
	),
	define("login", stored, always[handlers.Login](needsBoth),
		func(d Deps, work handlers.UnitOfWork) handlers.Handler[handlers.Login, handlers.LoginResult] {
			return handlers.NewLoginHandler(handlers.LoginDeps{
				Work: work, Users: d.Users, Sessions: d.Sessions, Hasher: d.Hasher, Throttle: d.Throttle,
				Tokens: d.Tokens, Events: d.events, NewID: d.NewID, Now: d.Now, Random: d.Random, Sleep: d.Sleep, Logger: d.Logger,
			}, d.LoginConfig)
		},
		func(w *schemas.Login, client domain.Client) handlers.Login {
			return handlers.Login{Email: w.Email, Password: w.Password, Client: client}
		},
		loginResult,
	),
	define("refresh", storedLookupOnConflict, always[handlers.Refresh](needsBoth),
		func(d Deps, work handlers.UnitOfWork) handlers.Handler[handlers.Refresh, handlers.LoginResult] {
			return handlers.NewRefreshHandler(handlers.RefreshDeps{
				Work: work, Sessions: d.Sessions, Throttle: d.Throttle, Tokens: d.Tokens,
				Revocations: d.Revocations, Events: d.events, Now: d.Now, Random: d.Random, Logger: d.Logger,
			}, d.LoginConfig.SessionConfig)
		},
		func(w *schemas.Refresh, client domain.Client) handlers.Refresh {
			return handlers.Refresh{RefreshToken: w.RefreshToken, Client: client}
		},
		loginResult,
	),
	define("logout", stored, always[handlers.Logout](needsPostgres),
		func(d Deps, work handlers.UnitOfWork) handlers.Handler[handlers.Logout, handlers.Done] {
			return handlers.NewLogoutHandler(logoutDeps(d, work))
		},
		func(w *schemas.Logout, client domain.Client) handlers.Logout {
			return handlers.Logout{RefreshToken: deref(w.RefreshToken), AccessToken: deref(w.AccessToken), Client: client}
		},
		done,
	),
	define("logout_all", stored, always[handlers.LogoutAll](needsBoth),
		func(d Deps, work handlers.UnitOfWork) handlers.Handler[handlers.LogoutAll, handlers.Done] {
			return handlers.NewLogoutAllHandler(logoutDeps(d, work))
		},
		func(w *schemas.LogoutAll, client domain.Client) handlers.LogoutAll {
			return handlers.LogoutAll{AccessToken: w.AccessToken, Client: client}
		},
		done,
	),
	define("introspect", notStored, introspectNeeds,
		func(d Deps, _ handlers.UnitOfWork) handlers.Handler[handlers.Introspect, handlers.IntrospectResult] {
			return handlers.NewIntrospectHandler(handlers.IntrospectDeps{
				Sessions: d.Sessions, Tokens: d.Tokens, Revocations: d.Revocations, Now: d.Now,
			})
		},
		func(w *schemas.Introspect, client domain.Client) handlers.Introspect {
			return handlers.Introspect{Token: w.Token, TokenTypeHint: deref(w.TokenTypeHint), Client: client}
		},
		introspectResult,
	),
	define("change_password", stored, always[handlers.ChangePassword](needsBoth),
		func(d Deps, work handlers.UnitOfWork) handlers.Handler[handlers.ChangePassword, handlers.Done] {
			return handlers.NewChangePasswordHandler(handlers.ChangePasswordDeps{
				Work: work, Users: d.Users, Sessions: d.Sessions, Tokens: d.Tokens, Revocations: d.Revocations,
				Hasher: d.Hasher, Policy: d.Policy, Throttle: d.Throttle, Notifier: d.Notifier,
				Events: d.events, NewID: d.NewID, Now: d.Now, Logger: d.Logger,
			})
		},
		func(w *schemas.ChangePassword, client domain.Client) handlers.ChangePassword {
			return handlers.ChangePassword{AccessToken: w.AccessToken, CurrentPassword: w.CurrentPassword, NewPassword: w.NewPassword, Client: client}
		},
		done,
	),
	define("request_password_reset", stored, always[handlers.RequestPasswordReset](needsBoth),
		func(d Deps, work handlers.UnitOfWork) handlers.Handler[handlers.RequestPasswordReset, handlers.Done] {
			return handlers.NewRequestPasswordResetHandler(codeRequestDeps(d, work), handlers.RequestPasswordResetConfig{
				CodeTTL: d.CodeConfig.ResetTTL, Floor: d.CodeConfig.Floor,
			})
		},
		func(w *schemas.RequestPasswordReset, client domain.Client) handlers.RequestPasswordReset {
			return handlers.RequestPasswordReset{Email: w.Email, Client: client}
		},
		done,
	),
	define("reset_password", stored, always[handlers.ResetPassword](needsPostgres),
		func(d Deps, work handlers.UnitOfWork) handlers.Handler[handlers.ResetPassword, handlers.Done] {
			return handlers.NewResetPasswordHandler(handlers.ResetPasswordDeps{
				Work: work, Users: d.Users, Codes: d.Codes, Sessions: d.Sessions, Revocations: d.Revocations,
				Throttle: d.Throttle, Notifier: d.Notifier, Events: d.events, Policy: d.Policy, Hasher: d.Hasher,
				NewID: d.NewID, Now: d.Now, Sleep: d.Sleep, Logger: d.Logger,
			}, handlers.ResetPasswordConfig{Floor: d.CodeConfig.Floor})
		},
		func(w *schemas.ResetPassword, client domain.Client) handlers.ResetPassword {
			return handlers.ResetPassword{Email: w.Email, Code: w.Code, NewPassword: w.NewPassword, Client: client}
		},
		done,
	),
	define("request_email_verification", stored, always[handlers.RequestEmailVerification](needsBoth),
		func(d Deps, work handlers.UnitOfWork) handlers.Handler[handlers.RequestEmailVerification, handlers.Done] {
			return handlers.NewRequestEmailVerificationHandler(codeRequestDeps(d, work), handlers.RequestEmailVerificationConfig{
				CodeTTL: d.CodeConfig.VerificationTTL, Floor: d.CodeConfig.Floor,
			})
		},
		func(w *schemas.RequestEmailVerification, client domain.Client) handlers.RequestEmailVerification {
			return handlers.RequestEmailVerification{Email: w.Email, Client: client}
		},
		done,
	),
	define("verify_email", stored, always[handlers.VerifyEmail](needsPostgres),
		func(d Deps, work handlers.UnitOfWork) handlers.Handler[handlers.VerifyEmail, handlers.Done] {
			return handlers.NewVerifyEmailHandler(handlers.VerifyEmailDeps{
				Work: work, Users: d.Users, Codes: d.Codes, Events: d.events, Now: d.Now, Sleep: d.Sleep,
			}, handlers.VerifyEmailConfig{Floor: d.CodeConfig.Floor})
		},
		func(w *schemas.VerifyEmail, client domain.Client) handlers.VerifyEmail {
			return handlers.VerifyEmail{Email: w.Email, Code: w.Code, Client: client}
		},
		done,
	),
	define("disable_user", stored, always[handlers.DisableUser](needsPostgres),
		func(d Deps, work handlers.UnitOfWork) handlers.Handler[handlers.DisableUser, handlers.Done] {
			return handlers.NewDisableUserHandler(adminDeps(d, work), d.AdminConfig)
		},
		func(w *schemas.DisableUser, client domain.Client) handlers.DisableUser {
			return handlers.DisableUser{UserID: domain.UserID(w.UserID), Client: client}
		},
		done,
	),
	define("enable_user", stored, always[handlers.EnableUser](needsPostgres),
		func(d Deps, work handlers.UnitOfWork) handlers.Handler[handlers.EnableUser, handlers.Done] {
			return handlers.NewEnableUserHandler(adminDeps(d, work), d.AdminConfig)
		},
		func(w *schemas.EnableUser, client domain.Client) handlers.EnableUser {
			return handlers.EnableUser{UserID: domain.UserID(w.UserID), Client: client}
		},
		done,
	),
	define("unlock_user", stored, always[handlers.UnlockUser](needsBoth),
		func(d Deps, work handlers.UnitOfWork) handlers.Handler[handlers.UnlockUser, handlers.Done] {
			return handlers.NewUnlockUserHandler(adminDeps(d, work), d.AdminConfig)
		},
		func(w *schemas.UnlockUser, client domain.Client) handlers.UnlockUser {
			return handlers.UnlockUser{UserID: domain.UserID(w.UserID), Client: client}
		},
		done,
	),
	define("delete_user", stored, always[handlers.DeleteUser](needsPostgres),
		func(d Deps, work handlers.UnitOfWork) handlers.Handler[handlers.DeleteUser, handlers.Done] {
			return handlers.NewDeleteUserHandler(adminDeps(d, work), d.AdminConfig)
		},
		func(w *schemas.DeleteUser, client domain.Client) handlers.DeleteUser {
			return handlers.DeleteUser{UserID: domain.UserID(w.UserID), Client: client}
		},
		done,
	),
}

// introspectNeeds is what an introspection needs: an access token's
// revocation is checked in Redis, a refresh token is looked up in
// PostgreSQL, and a token of neither shape is inactive without a lookup.
func introspectNeeds(cmd handlers.Introspect) []Store {
	switch cmd.Kind() {
	case handlers.TokenTypeAccess:
		return needsRedis
	case handlers.TokenTypeRefresh:
		return needsPostgres
	}
	return nil
}

// Result conversions shared by several operations.

func loginResult(r handlers.LoginResult) schemas.Result {
	return &schemas.LoginResult{
		UserID:                string(r.UserID),
		SessionID:             string(r.SessionID),
		AccessToken:           r.AccessToken.Token,
		AccessTokenExpiresAt:  r.AccessToken.ExpiresAt,
		RefreshToken:          r.RefreshToken,
		RefreshTokenExpiresAt: r.RefreshTokenExpiresAt,
	}
}

func done(handlers.Done) schemas.Result { return &schemas.Done{} }

// introspectResult puts an active token's claims on the wire, and nothing
// but active=false for any other (RFC 7662 §2.2).
func introspectResult(r handlers.IntrospectResult) schemas.Result {
	if !r.Active {
		return &schemas.IntrospectResult{}
	}
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	verified := r.EmailVerified
	return &schemas.IntrospectResult{
		Active: true, TokenType: str(r.TokenType), Sub: str(string(r.UserID)), Sid: str(string(r.SessionID)),
		ClientID: str(r.ClientID), Iss: str(r.Issuer), Aud: r.Audience, Exp: at(r.ExpiresAt), Iat: at(r.IssuedAt),
		Jti: str(r.ID), EmailVerified: &verified,
	}
}

// Collaborators shared by several use cases.

func logoutDeps(d Deps, work handlers.UnitOfWork) handlers.LogoutDeps {
	return handlers.LogoutDeps{Work: work, Sessions: d.Sessions, Tokens: d.Tokens, Revocations: d.Revocations, Events: d.events, Now: d.Now, Logger: d.Logger}
}

func codeRequestDeps(d Deps, work handlers.UnitOfWork) handlers.CodeRequestDeps {
	return handlers.CodeRequestDeps{
		Work: work, Users: d.Users, Codes: d.Codes, Notifier: d.Notifier, Events: d.events, Limiter: d.CodeRequests,
		AccountLimiter: d.CodeRequestsPerAccount, NewID: d.NewID, Now: d.Now, Random: d.Random, Sleep: d.Sleep, Logger: d.Logger,
	}
}

func adminDeps(d Deps, work handlers.UnitOfWork) handlers.AdminDeps {
	return handlers.AdminDeps{
		Work: work, Users: d.Users, Sessions: d.Sessions, Revocations: d.Revocations, Throttle: d.Throttle,
		Events: d.events, Now: d.Now, Logger: d.Logger,
	}
}
