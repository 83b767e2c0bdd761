package app

import (
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/schemas"
)

// registry lists every operation the worker answers. Adding one takes a
// record in the request schema (and its result in the response schema), a
// use case in package handlers, an entry here, and a method in package
// client.
var registry = []definition{
	define("register", stored,
		func(d Deps, work handlers.UnitOfWork) handlers.Handler[handlers.Register, handlers.RegisterResult] {
			return handlers.NewRegisterHandler(handlers.RegisterDeps{
				Work: work, Users: d.Users, Policy: d.Policy, Hasher: d.Hasher, Limiter: d.Registrations,
				NewID: d.NewID, Now: d.Now, Logger: d.Logger,
			}, d.RegisterConfig)
		},
		func(w *schemas.Register, client domain.Client) handlers.Register {
			return handlers.Register{Email: w.Email, Password: w.Password, Client: client}
		},
		func(r handlers.RegisterResult) schemas.Result {
			return &schemas.RegisterResult{UserID: string(r.UserID)}
		},
	),
	define("login", stored,
		func(d Deps, work handlers.UnitOfWork) handlers.Handler[handlers.Login, handlers.LoginResult] {
			return handlers.NewLoginHandler(handlers.LoginDeps{
				Work: work, Users: d.Users, Sessions: d.Sessions, Hasher: d.Hasher, Throttle: d.Throttle,
				Tokens: d.Tokens, NewID: d.NewID, Now: d.Now, Random: d.Random, Logger: d.Logger,
			}, d.LoginConfig)
		},
		func(w *schemas.Login, client domain.Client) handlers.Login {
			return handlers.Login{Email: w.Email, Password: w.Password, Client: client}
		},
		func(r handlers.LoginResult) schemas.Result {
			return &schemas.LoginResult{
				UserID:                string(r.UserID),
				SessionID:             string(r.SessionID),
				AccessToken:           r.AccessToken.Token,
				AccessTokenExpiresAt:  r.AccessToken.ExpiresAt,
				RefreshToken:          r.RefreshToken,
				RefreshTokenExpiresAt: r.RefreshTokenExpiresAt,
			}
		},
	),
}
