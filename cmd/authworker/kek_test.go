package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/golang-jwt/jwt/v5"

	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/testenv"
	"github.com/authworker/authworker/tokens"
)

// TestKEKRotation follows the README's KEK rotation with real workers on
// one database: a worker with KEK A issues a token; it stops; authctl keys
// rewrap runs with "B,A"; a worker with "B,A" and then one with B alone
// start. The token from before verifies all along, logins work, and no
// worker finds a key it does not trust. A key authctl creates meanwhile is
// announced on the events topic by the running worker's relay.
func TestKEKRotation(t *testing.T) {
	authctl := buildAuthctl(t)
	dbURL := testenv.Database(t)
	a, b := kekOf(0xa), kekOf(0xb)
	ctx := context.Background()

	first := startWorker(t, "DATABASE_URL="+dbURL, "AUTH_KEY_ENCRYPTION_KEY="+a)
	_, session := newAccount(t, first.client(t))
	kid := tokenKid(t, session.AccessToken)
	first.stop()

	out := runAuthctl(t, authctl, []string{"DATABASE_URL=" + dbURL, "AUTH_KEY_ENCRYPTION_KEY=" + b + "," + a}, "keys", "rewrap")
	if !strings.Contains(out, "Sealed 1 signing key(s)") {
		t.Fatalf("rewrap said %q, want the one key sealed", out)
	}

	both := startWorker(t, "DATABASE_URL="+dbURL, "AUTH_KEY_ENCRYPTION_KEY="+b+","+a)
	c := both.client(t)
	if !active(t, c, session.AccessToken) {
		t.Error(`the token from before is not active at the worker with "B,A"`)
	}
	newAccount(t, c)

	// authctl rotates while this worker runs: the worker's relay
	// publishes the event authctl put in the outbox.
	runAuthctl(t, authctl, []string{"DATABASE_URL=" + dbURL, "AUTH_KEY_ENCRYPTION_KEY=" + b + "," + a,
		"AUTH_EVENTS_TOPIC=" + both.cfg.App.EventsTopic}, "keys", "rotate")
	var listed []struct {
		Kid   string `json:"kid"`
		State string `json:"state"`
		Stale bool   `json:"stale"`
	}
	if err := json.Unmarshal([]byte(runAuthctl(t, authctl, []string{"DATABASE_URL=" + dbURL, "AUTH_KEY_ENCRYPTION_KEY=" + b + "," + a}, "keys", "list", "-json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed[0].Kid != kid || listed[1].State != "next" || listed[0].Stale || listed[1].Stale {
		t.Fatalf("keys %+v, want the first key and a next one, neither stale", listed)
	}
	next := listed[1].Kid
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	consumeOne(t, both.cfg.Kafka.BootstrapServers, both.cfg.App.EventsTopic, func(m *kafka.Message) bool {
		ev, err := codec.DecodeEvent(ctx, m.Value)
		if err != nil {
			t.Fatal(err)
		}
		p, ok := ev.Payload.(*schemas.SigningKeyRotated)
		return ok && p.Kid == next
	})
	both.stop()

	only := startWorker(t, "DATABASE_URL="+dbURL, "AUTH_KEY_ENCRYPTION_KEY="+b)
	c = only.client(t)
	if !active(t, c, session.AccessToken) {
		t.Error("the token from before is not active at the worker with B alone")
	}
	if kids := jwksKids(t, "http://"+only.main.http.Addr()+"/.well-known/jwks.json"); !slices.Contains(kids, kid) || !slices.Contains(kids, next) {
		t.Errorf("the JWKS of the worker with B alone has %v, want %s and %s", kids, kid, next)
	}
	newAccount(t, c)

	for name, w := range map[string]*worker{"A": first, "B,A": both, "B": only} {
		if logs := w.logs.String(); strings.Contains(logs, "not trusted") {
			t.Errorf("the worker with %s logged an untrusted key:\n%s", name, logs)
		}
	}
}

// buildAuthctl builds authctl into the test's directory.
func buildAuthctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "authctl")
	cmd := exec.Command("go", "build", "-o", bin, "../authctl")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build authctl: %v\n%s", err, out)
	}
	return bin
}

// runAuthctl runs the authctl binary with env and args, and returns what
// it printed on standard output; it fails the test when authctl fails.
func runAuthctl(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("authctl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// tokenKid returns the kid in the header of an access token.
func tokenKid(t *testing.T, token string) string {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := parsed.Header["kid"].(string)
	return kid
}

// jwksKids returns the kids of the JWKS at url.
func jwksKids(t *testing.T, url string) []string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set tokens.JWKS
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}
