package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/authworker/authworker/app"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/postgres"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/seal"
	"github.com/authworker/authworker/tokens"
)

// keys runs a keys subcommand against the signing keys in PostgreSQL, as a
// worker's key manager would: list, rotate, retire or rewrap. It needs the
// workers' settings of the keys (see keySettings). Workers reload at once:
// every change notifies them.
//
// Its errors carry no error code: a failure here is authctl's own, not a
// worker's answer, and exits 1 like the other local commands.
func keys(e *env, args []string) error {
	if len(args) == 0 {
		return errors.New("keys: list, rotate, retire or rewrap is required")
	}
	action, args := args[0], args[1:]
	run, ok := map[string]func(*env, []string) error{
		"list": keysList, "rotate": keysRotate, "retire": keysRetire, "rewrap": keysRewrap,
	}[action]
	if !ok {
		return fmt.Errorf("keys: unknown action %q (list, rotate, retire or rewrap)", action)
	}
	if err := run(e, args); err != nil {
		return fmt.Errorf("keys %s: %v", action, err)
	}
	return nil
}

// keySettings are the worker's settings that key management depends on,
// read from the same variables, with the same defaults (the owning
// packages'). The rotation settings and the access-token lifetime decide
// new keys' schedules and how long retired keys stay published, so they
// must be the workers'.
type keySettings struct {
	databaseURL string
	tokens      tokens.Config
	events      app.Config
}

// readKeySettings reads keySettings from the environment. Errors name the
// variable.
func readKeySettings() (keySettings, error) {
	var s keySettings
	var errs []error
	s.databaseURL = os.Getenv("DATABASE_URL")
	if s.databaseURL == "" {
		// As the worker: pgx takes the rest from libpq's PG* variables.
		s.databaseURL = "application_name=authctl"
	}
	keks, err := keyEncryptionKeys()
	if err != nil {
		errs = append(errs, err)
	} else {
		s.tokens.KeyEncryptionKey, s.tokens.OlderKeyEncryptionKeys = keks[0], keks[1:]
	}
	// Every algorithm the workers sign with, so that a rotation covers
	// each one's keys.
	s.tokens.Algorithm = os.Getenv("AUTH_SIGNING_ALG") // unset: as the workers, by the key signing
	if s.tokens.Algorithms, err = tokens.ParseAlgorithms(os.Getenv("AUTH_SIGNING_ALGS")); err != nil {
		errs = append(errs, fmt.Errorf("AUTH_SIGNING_ALGS: %w", err))
	}
	if s.tokens.ClientAlgorithms, err = tokens.ParseClientAlgorithms(os.Getenv("AUTH_CLIENT_SIGNING_ALGS")); err != nil {
		errs = append(errs, fmt.Errorf("AUTH_CLIENT_SIGNING_ALGS: %w", err))
	}
	for _, d := range []struct {
		name  string
		field *time.Duration
	}{
		{"AUTH_ACCESS_TOKEN_TTL", &s.tokens.AccessTTL},
		{"AUTH_KEY_ROTATION_PERIOD", &s.tokens.RotationPeriod},
		{"AUTH_KEY_PREPUBLISH", &s.tokens.PrePublish},
		{"AUTH_KEY_RELOAD_INTERVAL", &s.tokens.ReloadInterval},
	} {
		v := os.Getenv(d.name)
		if v == "" {
			continue // the tokens package's default, as the worker's
		}
		t, err := time.ParseDuration(v)
		if err != nil || t <= 0 {
			errs = append(errs, fmt.Errorf("%s is not a positive duration like 15m or 168h: %q", d.name, v))
			continue
		}
		*d.field = t
	}
	s.events.EventsTopic = getenv("AUTH_EVENTS_TOPIC", app.DefaultEventsTopic)
	s.events.EventSource = getenv("AUTH_EVENT_SOURCE", getenv("AUTH_ISSUER", tokens.DefaultIssuer))
	return s, errors.Join(errs...)
}

// keyManager is a key manager on the workers' database, and what it holds.
type keyManager struct {
	*tokens.Manager
	db *postgres.DB
}

// openKeys connects to the database, migrates it as a worker does (nothing
// to do when a worker did), and returns a key manager whose new keys are
// announced on the events topic through the outbox, in the transaction that
// stores them: the workers' relays publish them.
func openKeys(ctx context.Context) (*keyManager, error) {
	s, err := readKeySettings()
	if err != nil {
		return nil, err
	}
	db, err := postgres.Open(ctx, postgres.Config{URL: s.databaseURL})
	if err != nil {
		return nil, fmt.Errorf("postgres (DATABASE_URL): %w", err)
	}
	km, err := newKeyManager(ctx, db, s)
	if err != nil {
		db.Close()
		return nil, err
	}
	return km, nil
}

func newKeyManager(ctx context.Context, db *postgres.DB, s keySettings) (*keyManager, error) {
	if err := db.Migrate(ctx); err != nil {
		return nil, err
	}
	sealer, err := seal.NewBox(s.tokens.KeyEncryptionKey, "outbox", s.tokens.OlderKeyEncryptionKeys...)
	if err != nil {
		return nil, fmt.Errorf("AUTH_KEY_ENCRYPTION_KEY: %w", err)
	}
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		return nil, err
	}
	events, err := app.NewKeyEvents(codec, postgres.NewOutbox(db, sealer), newID, s.events)
	if err != nil {
		return nil, fmt.Errorf("AUTH_EVENTS_TOPIC or AUTH_EVENT_SOURCE: %w", err)
	}
	cfg := s.tokens
	if cfg.Algorithm == "" {
		alg, err := tokens.InheritedAlgorithm(ctx, postgres.NewSigningKeyRepository(db), time.Now(), cfg.OtherAlgorithms())
		if err != nil {
			return nil, err
		}
		cfg.Algorithm = alg
	}
	cfg.OnKeyCreated = events.KeyCreated
	// Keys that do not open are shown by list; the manager's log says the
	// same on standard error, for the other commands.
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m, err := tokens.NewManager(postgres.NewSigningKeyRepository(db), cfg)
	if err != nil {
		return nil, fmt.Errorf("AUTH_SIGNING_ALG(S), AUTH_ACCESS_TOKEN_TTL, AUTH_KEY_*: %w", err)
	}
	return &keyManager{Manager: m, db: db}, nil
}

func (m *keyManager) Close() { m.db.Close() }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// withKeys opens the key manager, runs fn and closes it.
func (e *env) withKeys(fn func(m *keyManager) error) error {
	m, err := openKeys(e.ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	return fn(m)
}

// keyFlags parses a keys subcommand's flags, which may come before or
// after its arguments (retire KID -remove), and returns the arguments.
func keyFlags(name string, args []string, define func(fs *flag.FlagSet)) ([]string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	define(fs)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// printedKey is a stored key as keys list -json prints it.
type printedKey struct {
	Kid            string          `json:"kid"`
	Algorithm      string          `json:"alg"`
	State          domain.KeyState `json:"state"`
	CreatedAt      time.Time       `json:"createdAt"`
	SignsFrom      time.Time       `json:"signsFrom"`
	SignsUntil     *time.Time      `json:"signsUntil,omitempty"`     // absent: not decided
	PublishedUntil *time.Time      `json:"publishedUntil,omitempty"` // absent: not decided
	Trusted        bool            `json:"trusted"`
	// Untrusted is why workers neither publish nor use the key.
	Untrusted string `json:"untrusted,omitempty"`
	// Stale: sealed under an older key-encryption key; keys rewrap seals
	// it under the first.
	Stale bool `json:"stale"`
}

func printed(k tokens.KeyStatus) printedKey {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	return printedKey{
		Kid: k.ID, Algorithm: k.Algorithm, State: k.State, CreatedAt: k.CreatedAt.UTC(), SignsFrom: k.SignFrom.UTC(),
		SignsUntil: opt(k.SignUntil), PublishedUntil: opt(k.PublishUntil),
		Trusted: k.Untrusted == "", Untrusted: k.Untrusted, Stale: k.Stale,
	}
}

// keysList prints every published key, oldest first: a table, or a JSON
// array with -json.
func keysList(e *env, args []string) error {
	var asJSON bool
	rest, err := keyFlags("keys list", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print a JSON array")
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q", rest[0])
	}
	return e.withKeys(func(m *keyManager) error {
		ks, err := m.List(e.ctx)
		if err != nil {
			return err
		}
		if asJSON {
			out := make([]printedKey, 0, len(ks))
			for _, k := range ks {
				out = append(out, printed(k))
			}
			return printJSON(e.stdout, out)
		}
		return printKeyTable(e.stdout, ks)
	})
}

// printKeyTable writes keys as a table, times in UTC to the second.
func printKeyTable(w io.Writer, ks []tokens.KeyStatus) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tSIGNS FROM\tSIGNS UNTIL\tPUBLISHED UNTIL\tTRUST")
	for _, k := range ks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.State,
			when(k.SignFrom), when(k.SignUntil), when(k.PublishUntil), trust(k))
	}
	return tw.Flush()
}

// when writes t as the table shows it; "-" for not decided.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func trust(k tokens.KeyStatus) string {
	switch {
	case k.Untrusted != "":
		return "UNTRUSTED: " + k.Untrusted
	case k.Stale:
		return "trusted, stale (sealed under an older KEK: run keys rewrap)"
	}
	return "trusted"
}

// keysRotate rotates the keys of the configured algorithm, on schedule or,
// with -emergency, at once, and says what it did to tokens in flight.
func keysRotate(e *env, args []string) error {
	var emergency bool
	rest, err := keyFlags("keys rotate", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&emergency, "emergency", false, "for a key that may have leaked: a new key signs at once and every other key of the algorithm leaves the JWKS at once")
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q", rest[0])
	}
	return e.withKeys(func(m *keyManager) error {
		before, err := m.List(e.ctx)
		if err != nil {
			return err
		}
		if !emergency {
			// A store without a current key (no worker ever ran) gets its
			// first, signing now, as a worker's start would make it;
			// otherwise the successor made here would be the only key,
			// signing only after the pre-publication window.
			if _, err := m.Maintain(e.ctx); err != nil {
				return err
			}
		}
		mode := tokens.Scheduled
		if emergency {
			mode = tokens.Emergency
		}
		if _, err := m.Rotate(e.ctx, mode); err != nil {
			return err
		}
		after, err := m.List(e.ctx)
		if err != nil {
			return err
		}
		if emergency {
			return describeEmergency(e.stdout, before, after)
		}
		return describeScheduled(e.stdout, before, after)
	})
}

// describeScheduled says what a scheduled rotation changed.
func describeScheduled(w io.Writer, before, after []tokens.KeyStatus) error {
	created := added(before, after)
	for _, k := range created {
		if k.State == domain.KeyCurrent {
			fmt.Fprintf(w, "Created signing key %s (%s): there was no current key, so it signs from now.\n", k.ID, k.Algorithm)
			continue
		}
		fmt.Fprintf(w, "Created signing key %s (%s): published in the JWKS now, signs from %s.\n", k.ID, k.Algorithm, when(k.SignFrom))
	}
	for _, k := range after {
		if k.State != domain.KeyNext || slices.ContainsFunc(created, func(c tokens.KeyStatus) bool { return c.ID == k.ID }) {
			continue
		}
		fmt.Fprintf(w, "A successor was already published: %s (%s) signs from %s. Nothing changed.\n", k.ID, k.Algorithm, when(k.SignFrom))
	}
	for _, k := range after {
		if k.State == domain.KeyCurrent && !slices.ContainsFunc(created, func(c tokens.KeyStatus) bool { return c.ID == k.ID }) {
			fmt.Fprintf(w, "The current key %s signs until %s and stays published until %s, when the tokens it signed have expired. No token in flight is affected.\n",
				k.ID, when(k.SignUntil), when(k.PublishUntil))
		}
	}
	return nil
}

// describeEmergency says what an emergency rotation did to tokens in
// flight (see tokens.Emergency).
func describeEmergency(w io.Writer, before, after []tokens.KeyStatus) error {
	for _, k := range added(before, after) {
		fmt.Fprintf(w, "Emergency rotation: signing key %s (%s) signs from now.\n", k.ID, k.Algorithm)
	}
	removed := gone(before, after)
	if len(removed) == 0 {
		fmt.Fprintln(w, "No other key was published: no token in flight is affected.")
		return nil
	}
	ids := make([]string, len(removed))
	for i, k := range removed {
		ids[i] = k.ID
	}
	fmt.Fprintf(w, "Left the JWKS now: %s.\n", strings.Join(ids, ", "))
	fmt.Fprint(w, tokensStopVerifying)
	return nil
}

// tokensStopVerifying is what removing keys from the JWKS does to the
// tokens they signed.
const tokensStopVerifying = `Every access token those keys signed (every token in flight, and any forged with a leaked key) stops verifying:
  - at the workers (Introspect) as soon as they reload: they are notified, so within a second;
  - at services with a remote key set when they next fetch the JWKS: at once for those that fetch on an unknown kid and meet a token of the new key, else at the latest after the JWKS max-age (AUTH_JWKS_MAX_AGE).
Users keep their sessions: a refresh gets a new access token, signed by the new key.
`

// keysRetire stops a key signing now; with -remove, it also leaves the
// JWKS now.
func keysRetire(e *env, args []string) error {
	var remove bool
	rest, err := keyFlags("keys retire", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&remove, "remove", false, "also remove the key from the JWKS now: the tokens it signed stop verifying")
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errors.New("the kid of one key is required (see keys list)")
	}
	kid := rest[0]
	return e.withKeys(func(m *keyManager) error {
		before, err := m.List(e.ctx)
		if err != nil {
			return err
		}
		if _, err := m.Retire(e.ctx, kid, remove); err != nil {
			return err
		}
		after, err := m.List(e.ctx)
		if err != nil {
			return err
		}
		retired := tokens.KeyStatus{ID: kid}
		if i := slices.IndexFunc(before, func(k tokens.KeyStatus) bool { return k.ID == kid }); i >= 0 {
			retired = before[i]
		}
		return describeRetire(e.stdout, retired, remove, before, after)
	})
}

// describeRetire says what retiring k did.
func describeRetire(w io.Writer, k tokens.KeyStatus, remove bool, before, after []tokens.KeyStatus) error {
	switch k.State {
	case domain.KeyNext:
		fmt.Fprintf(w, "Retired signing key %s before it signed.\n", k.ID)
	case domain.KeyCurrent:
		fmt.Fprintf(w, "Signing key %s stopped signing now.\n", k.ID)
	default:
		fmt.Fprintf(w, "Signing key %s had stopped signing already.\n", k.ID)
	}
	if remove {
		fmt.Fprintf(w, "It left the JWKS now.\n%s", tokensStopVerifying)
	} else if i := slices.IndexFunc(after, func(a tokens.KeyStatus) bool { return a.ID == k.ID }); i >= 0 {
		fmt.Fprintf(w, "It stays published until %s, when the tokens it signed have expired: they still verify.\n", when(after[i].PublishUntil))
	}
	if k.State != domain.KeyCurrent {
		return nil
	}
	created := added(before, after)
	for _, a := range after {
		if a.Algorithm != k.Algorithm || a.State != domain.KeyCurrent {
			continue
		}
		if slices.ContainsFunc(created, func(c tokens.KeyStatus) bool { return c.ID == a.ID }) {
			fmt.Fprintf(w, "New signing key %s (%s) signs in its place from now; verifiers fetch it when they meet its first token (static JWKS copies: after the max-age).\n", a.ID, a.Algorithm)
		} else {
			fmt.Fprintf(w, "The next key %s (%s) signs in its place from now; it was published already.\n", a.ID, a.Algorithm)
		}
	}
	return nil
}

// keysRewrap seals every key under the first key-encryption key.
func keysRewrap(e *env, args []string) error {
	rest, err := keyFlags("keys rewrap", args, func(*flag.FlagSet) {})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q", rest[0])
	}
	return e.withKeys(func(m *keyManager) error {
		n, err := m.Rewrap(e.ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Sealed %d signing key(s) under the first key-encryption key.\n", n)
		after, err := m.List(e.ctx)
		if err != nil {
			return err
		}
		untrusted := 0
		for _, k := range after {
			if k.Untrusted != "" {
				untrusted++
			}
		}
		if untrusted > 0 {
			fmt.Fprintf(e.stdout, "%d stored key(s) do not open under AUTH_KEY_ENCRYPTION_KEY and were left as they are (keys list says why); workers neither publish nor use them.\n", untrusted)
			return nil
		}
		fmt.Fprintln(e.stdout, "Every published key opens under the first key-encryption key alone.")
		return nil
	})
}

// added returns the keys of after that are not in before.
func added(before, after []tokens.KeyStatus) []tokens.KeyStatus {
	var out []tokens.KeyStatus
	for _, k := range after {
		if !slices.ContainsFunc(before, func(b tokens.KeyStatus) bool { return b.ID == k.ID }) {
			out = append(out, k)
		}
	}
	return out
}

// gone returns the keys of before that are not in after.
func gone(before, after []tokens.KeyStatus) []tokens.KeyStatus {
	return added(after, before)
}
