// Command authctl talks to authworker the way a service does: it sends
// requests over Kafka with the client package, verifies access tokens
// offline against the JWKS, reads the dead-letter topic, follows the
// domain events the worker publishes, manages the signing keys in
// PostgreSQL, and loads a worker to measure it (bench). It is for
// operators and developers.
//
//	authctl register -email ada@example.com < password.txt
//	authctl login -email ada@example.com < password.txt
//	authctl verify < access-token.txt
//	authctl users disable -user-id 0193...
//	authctl events tail -type LoginFailed,AccountLocked
//	authctl events tail -user 0193... -from beginning -json
//	authctl keys list
//	authctl keys rotate -emergency
//	authctl bench -mix login=70,introspect=20,refresh=10 -rate 20 -duration 30s
//
// events tail runs until interrupted (Ctrl-C) or until -max events were
// printed, and bench for its -warmup and -duration; -timeout bounds neither
// (in bench it bounds each request).
//
// Secrets (passwords, tokens, codes) are read from standard input, one per
// line, never from flags, so that they stay out of shell history and
// process listings.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/authworker/authworker/client"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/seal"
)

// command is one authctl command.
type command struct {
	usage string // after "authctl [global flags] "
	run   func(e *env, args []string) error
}

// commands lists every command, by name.
var commands = map[string]command{
	"register":                   {"register -email EMAIL [-ip IP]         < password", register},
	"login":                      {"login -email EMAIL [-ip IP]            < password", login},
	"refresh":                    {"refresh                                < refresh token", refresh},
	"logout":                     {"logout [-access]                       < refresh token (access token with -access)", logout},
	"logout-all":                 {"logout-all                             < access token", logoutAll},
	"introspect":                 {"introspect [-hint access_token|refresh_token] < token", introspect},
	"change-password":            {"change-password                        < access token, current password, new password (a line each)", changePassword},
	"request-password-reset":     {"request-password-reset -email EMAIL", requestPasswordReset},
	"reset-password":             {"reset-password -email EMAIL            < code, new password (a line each)", resetPassword},
	"request-email-verification": {"request-email-verification -email EMAIL", requestEmailVerification},
	"verify-email":               {"verify-email -email EMAIL              < code", verifyEmail},
	"users":                      {"users disable|enable|unlock|delete -user-id ID   (admin clients only)", users},
	"verify":                     {"verify [-jwks URL] [-issuer ISS] [-audience AUD] < access token (offline, against the JWKS)", verify},
	"dlq":                        {"dlq [-topic T] [-max N] [-raw]         (needs AUTH_KEY_ENCRYPTION_KEY)", dlq},
	"keys":                       {"keys list [-json] | rotate [-emergency] | retire KID [-remove] | rewrap   (signing keys in PostgreSQL; needs the workers' DATABASE_URL, AUTH_KEY_ENCRYPTION_KEY and AUTH_KEY_* settings)", keys},
	"events":                     {"events tail [-topic T] [-type TYPE[,TYPE...]] [-user ID] [-from beginning|end] [-max N] [-json]", events},
	"bench":                      {"bench [-mix OP=W,...] [-rate R | -concurrency N] [-warmup D] [-duration D] [-users N] [-json|-markdown] [-worker-pid PID]", bench},
}

func main() {
	// An interrupt cancels the context: a request gives up waiting, a stream
	// that is followed stops. A second interrupt kills at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "authctl:", err)
		if code := domain.ErrorCode(err); code != "" && code != domain.CodeInternal {
			os.Exit(3) // the worker answered with an error
		}
		os.Exit(1)
	}
}

// env is what commands share: the context, standard input and output, and
// the global flags.
type env struct {
	// ctx ends after -timeout, or when authctl is interrupted.
	ctx context.Context
	// untimed ends only when authctl is interrupted: for a command that
	// follows a stream until then, which -timeout does not bound.
	untimed      context.Context
	stdin        *bufio.Reader
	stdout       io.Writer
	stderr       io.Writer // progress for people, never results
	bootstrap    string
	requestTopic string
	replyTopic   string
	clientID     string
	timeout      time.Duration
}

// connect opens a client with the global flags.
func (e *env) connect() (*client.Client, error) {
	return client.New(e.ctx, client.Config{
		BootstrapServers: e.bootstrap, ClientID: e.clientID,
		RequestTopic: e.requestTopic, ReplyTopic: e.replyTopic, Timeout: e.timeout,
	})
}

// secret reads the next line of standard input: a password, a token or a
// code, named what in the error when it is missing.
func (e *env) secret(what string) (string, error) {
	line, err := e.stdin.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("the %s is read from standard input; none given", what)
	}
	return line, nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	global := flag.NewFlagSet("authctl", flag.ContinueOnError)
	global.Usage = func() {
		fmt.Fprint(global.Output(), "authctl talks to authworker over Kafka.\n\nUsage:\n")
		names := make([]string, 0, len(commands))
		for name := range commands {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			fmt.Fprintf(global.Output(), "  authctl [global flags] %s\n", commands[name].usage)
		}
		fmt.Fprint(global.Output(), "\nGlobal flags:\n")
		global.PrintDefaults()
	}
	e := &env{stdout: stdout, stderr: os.Stderr}
	global.StringVar(&e.bootstrap, "bootstrap", getenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"), "Kafka brokers")
	global.StringVar(&e.requestTopic, "request-topic", getenv("AUTH_REQUEST_TOPIC", "auth.request"), "request topic")
	global.StringVar(&e.replyTopic, "reply-topic", getenv("AUTH_RESPONSE_TOPIC", "auth.response"), "reply topic")
	global.StringVar(&e.clientID, "client-id", "authctl", "client id sent with requests")
	global.DurationVar(&e.timeout, "timeout", 10*time.Second, "how long to wait for a reply")
	if err := global.Parse(args); err != nil {
		return err
	}
	if global.NArg() == 0 {
		global.Usage()
		return errors.New("a command is required")
	}
	name, args := global.Arg(0), global.Args()[1:]
	cmd, ok := commands[name]
	if !ok {
		global.Usage()
		return fmt.Errorf("unknown command %q", name)
	}
	e.untimed = ctx
	var cancel context.CancelFunc
	e.ctx, cancel = context.WithTimeout(ctx, e.timeout)
	defer cancel()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	e.stdin = bufio.NewReader(stdin)
	return cmd.run(e, args)
}

// printJSONLine writes v as one line of JSON.
func printJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// keyEncryptionKeys reads the workers' key-encryption keys from
// AUTH_KEY_ENCRYPTION_KEY: a list, newest first, as the workers read it.
func keyEncryptionKeys() ([][]byte, error) {
	keys, err := seal.ParseKeys(os.Getenv("AUTH_KEY_ENCRYPTION_KEY"))
	if err != nil {
		return nil, fmt.Errorf("AUTH_KEY_ENCRYPTION_KEY %w", err)
	}
	return keys, nil
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
