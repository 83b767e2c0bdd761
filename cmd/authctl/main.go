// Command authctl talks to authworker the way a service does: it sends
// requests over Kafka with the client package and verifies access tokens
// offline against the JWKS. It is for operators and developers.
//
//	authctl register -email ada@example.com < password.txt
//	authctl login -email ada@example.com < password.txt
//	authctl verify -token "$ACCESS_TOKEN"
//
// Passwords are read from the first line of standard input, never from
// flags, so they stay out of shell history and process listings.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/authworker/authworker/client"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/tokens"
)

const usage = `authctl talks to authworker over Kafka.

Usage:
  authctl [global flags] register -email EMAIL   < password
  authctl [global flags] login -email EMAIL [-ip IP] < password
  authctl verify -token TOKEN [-jwks URL] [-issuer ISS] [-audience AUD]
  authctl [global flags] dlq [-topic T] [-max N] [-raw]   (needs AUTH_KEY_ENCRYPTION_KEY)

Global flags:
`

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "authctl:", err)
		if code := domain.ErrorCode(err); code != "" && code != domain.CodeInternal {
			os.Exit(3) // the worker answered with an error
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	global := flag.NewFlagSet("authctl", flag.ContinueOnError)
	global.Usage = func() {
		fmt.Fprint(global.Output(), usage)
		global.PrintDefaults()
	}
	bootstrap := global.String("bootstrap", env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"), "Kafka brokers")
	requestTopic := global.String("request-topic", env("AUTH_REQUEST_TOPIC", "auth.request"), "request topic")
	replyTopic := global.String("reply-topic", env("AUTH_RESPONSE_TOPIC", "auth.response"), "reply topic")
	clientID := global.String("client-id", "authctl", "client id sent with requests")
	timeout := global.Duration("timeout", 10*time.Second, "how long to wait for a reply")
	if err := global.Parse(args); err != nil {
		return err
	}
	if global.NArg() == 0 {
		global.Usage()
		return errors.New("a command is required")
	}
	cmd, args := global.Arg(0), global.Args()[1:]
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	connect := func() (*client.Client, error) {
		return client.New(ctx, client.Config{
			BootstrapServers: *bootstrap, ClientID: *clientID,
			RequestTopic: *requestTopic, ReplyTopic: *replyTopic, Timeout: *timeout,
		})
	}
	switch cmd {
	case "register", "login":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		email := fs.String("email", "", "the account's e-mail address")
		ip := fs.String("ip", "", "end user's IP address, for throttling")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *email == "" {
			return errors.New(cmd + ": -email is required")
		}
		password, err := readPassword(stdin)
		if err != nil {
			return err
		}
		c, err := connect()
		if err != nil {
			return err
		}
		defer c.Close()
		var opts []client.RequestOption
		if *ip != "" {
			opts = append(opts, client.WithIP(*ip))
		}
		var res any
		if cmd == "register" {
			res, err = c.Register(ctx, *email, password, opts...)
		} else {
			res, err = c.Login(ctx, *email, password, opts...)
		}
		if err != nil {
			return err
		}
		return printJSON(stdout, res)
	case "dlq":
		return dlq(ctx, *bootstrap, args, stdout)
	case "verify":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		token := fs.String("token", "", "the access token")
		jwksURL := fs.String("jwks", "http://localhost:8080/.well-known/jwks.json", "JWKS URL")
		issuer := fs.String("issuer", env("AUTH_ISSUER", "http://localhost:8080"), "expected iss")
		audience := fs.String("audience", env("AUTH_AUDIENCE", "authworker"), "expected aud")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *token == "" {
			return errors.New("verify: -token is required")
		}
		opts := tokens.VerifyOptions{Issuer: *issuer, Audience: *audience}
		if err := opts.Validate(); err != nil { // before any network round trip
			return err
		}
		ks, err := fetchJWKS(ctx, *jwksURL)
		if err != nil {
			return err
		}
		v, err := tokens.NewVerifier(ks, opts)
		if err != nil {
			return err
		}
		claims, err := v.Verify(*token)
		if err != nil {
			return fmt.Errorf("%w: %v", err, errors.Unwrap(err))
		}
		return printJSON(stdout, claims)
	}
	global.Usage()
	return fmt.Errorf("unknown command %q", cmd)
}

func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("the password is read from standard input; none given")
	}
	return line, nil
}

func fetchJWKS(ctx context.Context, url string) (*tokens.KeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS: %s", res.Status)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	return tokens.ParseJWKS(body)
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

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
