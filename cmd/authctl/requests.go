package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/authworker/authworker/client"
)

// flags parses a command's flags; every command's flag set is built here so
// that errors read alike.
func flags(name string, args []string, define func(fs *flag.FlagSet)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	define(fs)
	return fs.Parse(args)
}

// withClient connects, runs fn and prints what it returns, if anything.
func (e *env) withClient(fn func(c *client.Client) (any, error)) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := fn(c)
	if err != nil {
		return err
	}
	if res == nil {
		res = map[string]string{"status": "ok"}
	}
	return printJSON(e.stdout, res)
}

// credentials reads -email (required) and -ip, and the password.
func credentials(name string, e *env, args []string) (email, password string, opts []client.RequestOption, err error) {
	var ip string
	if err := flags(name, args, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "the account's e-mail address")
		fs.StringVar(&ip, "ip", "", "the end user's IP address, for throttling")
	}); err != nil {
		return "", "", nil, err
	}
	if email == "" {
		return "", "", nil, errors.New(name + ": -email is required")
	}
	if password, err = e.secret("password"); err != nil {
		return "", "", nil, err
	}
	if ip != "" {
		opts = append(opts, client.WithIP(ip))
	}
	return email, password, opts, nil
}

func register(e *env, args []string) error {
	email, password, opts, err := credentials("register", e, args)
	if err != nil {
		return err
	}
	return e.withClient(func(c *client.Client) (any, error) { return c.Register(e.ctx, email, password, opts...) })
}

func login(e *env, args []string) error {
	email, password, opts, err := credentials("login", e, args)
	if err != nil {
		return err
	}
	return e.withClient(func(c *client.Client) (any, error) { return c.Login(e.ctx, email, password, opts...) })
}

func refresh(e *env, args []string) error {
	if err := flags("refresh", args, func(*flag.FlagSet) {}); err != nil {
		return err
	}
	token, err := e.secret("refresh token")
	if err != nil {
		return err
	}
	return e.withClient(func(c *client.Client) (any, error) { return c.Refresh(e.ctx, token) })
}

func logout(e *env, args []string) error {
	var access bool
	if err := flags("logout", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&access, "access", false, "the token on standard input is an access token, not a refresh token")
	}); err != nil {
		return err
	}
	what := "refresh token"
	if access {
		what = "access token"
	}
	token, err := e.secret(what)
	if err != nil {
		return err
	}
	return e.withClient(func(c *client.Client) (any, error) {
		if access {
			return nil, c.LogoutWithAccessToken(e.ctx, token)
		}
		return nil, c.LogoutWithRefreshToken(e.ctx, token)
	})
}

func logoutAll(e *env, args []string) error {
	if err := flags("logout-all", args, func(*flag.FlagSet) {}); err != nil {
		return err
	}
	token, err := e.secret("access token")
	if err != nil {
		return err
	}
	return e.withClient(func(c *client.Client) (any, error) { return nil, c.LogoutAll(e.ctx, token) })
}

func introspect(e *env, args []string) error {
	var hint string
	if err := flags("introspect", args, func(fs *flag.FlagSet) {
		fs.StringVar(&hint, "hint", "", "access_token or refresh_token")
	}); err != nil {
		return err
	}
	token, err := e.secret("token")
	if err != nil {
		return err
	}
	return e.withClient(func(c *client.Client) (any, error) { return c.Introspect(e.ctx, token, hint) })
}

func changePassword(e *env, args []string) error {
	if err := flags("change-password", args, func(*flag.FlagSet) {}); err != nil {
		return err
	}
	var lines [3]string
	for i, what := range []string{"access token", "current password", "new password"} {
		var err error
		if lines[i], err = e.secret(what); err != nil {
			return err
		}
	}
	return e.withClient(func(c *client.Client) (any, error) {
		return nil, c.ChangePassword(e.ctx, lines[0], lines[1], lines[2])
	})
}

// address reads the -email flag of a command, required.
func address(name string, args []string) (string, error) {
	var email string
	if err := flags(name, args, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "the account's e-mail address")
	}); err != nil {
		return "", err
	}
	if email == "" {
		return "", errors.New(name + ": -email is required")
	}
	return email, nil
}

func requestPasswordReset(e *env, args []string) error {
	email, err := address("request-password-reset", args)
	if err != nil {
		return err
	}
	return e.withClient(func(c *client.Client) (any, error) { return nil, c.RequestPasswordReset(e.ctx, email) })
}

func resetPassword(e *env, args []string) error {
	email, err := address("reset-password", args)
	if err != nil {
		return err
	}
	code, err := e.secret("code")
	if err != nil {
		return err
	}
	password, err := e.secret("new password")
	if err != nil {
		return err
	}
	return e.withClient(func(c *client.Client) (any, error) { return nil, c.ResetPassword(e.ctx, email, code, password) })
}

func requestEmailVerification(e *env, args []string) error {
	email, err := address("request-email-verification", args)
	if err != nil {
		return err
	}
	return e.withClient(func(c *client.Client) (any, error) { return nil, c.RequestEmailVerification(e.ctx, email) })
}

func verifyEmail(e *env, args []string) error {
	email, err := address("verify-email", args)
	if err != nil {
		return err
	}
	code, err := e.secret("code")
	if err != nil {
		return err
	}
	return e.withClient(func(c *client.Client) (any, error) { return nil, c.VerifyEmail(e.ctx, email, code) })
}

// users runs an account administration command.
func users(e *env, args []string) error {
	if len(args) == 0 {
		return errors.New("users: disable, enable, unlock or delete is required")
	}
	actions := map[string]func(c *client.Client, id string) error{
		"disable": func(c *client.Client, id string) error { return c.DisableUser(e.ctx, id) },
		"enable":  func(c *client.Client, id string) error { return c.EnableUser(e.ctx, id) },
		"unlock":  func(c *client.Client, id string) error { return c.UnlockUser(e.ctx, id) },
		"delete":  func(c *client.Client, id string) error { return c.DeleteUser(e.ctx, id) },
	}
	action, ok := actions[args[0]]
	if !ok {
		return fmt.Errorf("users: unknown action %q (disable, enable, unlock or delete)", args[0])
	}
	var id string
	if err := flags("users "+args[0], args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&id, "user-id", "", "the account's user id")
	}); err != nil {
		return err
	}
	if id == "" {
		return fmt.Errorf("users %s: -user-id is required", args[0])
	}
	return e.withClient(func(c *client.Client) (any, error) { return nil, action(c, id) })
}
