package tokens

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/seal"
)

// TokenType is the typ header of access tokens (RFC 9068).
const TokenType = "at+jwt"

// claims are the claims of an access token as the issuer writes them.
type claims struct {
	jwt.RegisteredClaims
	SessionID     string `json:"sid"`
	ClientID      string `json:"client_id"`
	EmailVerified bool   `json:"email_verified"`
}

// Config configures an Issuer, and the Manager of its keys.
type Config struct {
	Issuer    string        // the iss claim, e.g. "https://auth.example.com"
	Audience  []string      // the aud claim
	AccessTTL time.Duration // lifetime of access tokens; default 15 minutes

	// Algorithm signs the tokens of every client without one of its own
	// in ClientAlgorithms: ES256, EdDSA or RS256. NewIssuer fills it in
	// when empty with InheritedAlgorithm: the algorithm of the key
	// signing, or ES256 for a new deployment. Algorithms
	// are kept signing besides it (each with its own current key, all
	// published), and ClientAlgorithms chooses one per client id; an
	// algorithm named there is kept signing too. Every one of them
	// follows the same lifecycle, next → current → retired.
	Algorithm        string
	Algorithms       []string
	ClientAlgorithms map[string]string

	// KeyEncryptionKey seals private keys at rest, and
	// OlderKeyEncryptionKeys open what earlier ones sealed, while a KEK is
	// being rotated (see Manager.Rewrap). Every worker must have the same
	// ones.
	KeyEncryptionKey       []byte
	OlderKeyEncryptionKeys [][]byte

	// RotationPeriod is how long a key signs before its successor takes
	// over; default 7 days.
	RotationPeriod time.Duration
	// PrePublish is how long a key is published before it signs; default
	// one hour. Verifiers must not cache the key set longer (the JWKS
	// max-age), less the reload interval.
	PrePublish time.Duration
	// ReloadInterval is how often the keys are reloaded from the store and
	// the rotation policy applied; default 30 seconds. Workers also reload
	// when asked (Issuer.Refresh).
	ReloadInterval time.Duration

	// OnKeyCreated is called for each key created, with the context of
	// the store's transaction that stores it (see
	// domain.SigningKeyRepository.UpdateSigningKeys): the key.rotated
	// event. An error undoes the creation.
	OnKeyCreated func(ctx context.Context, key domain.SigningKey) error

	Now    func() time.Time // default time.Now
	Random io.Reader        // default crypto/rand
	Logger *slog.Logger     // default discards
}

// DefaultIssuer is the issuer a deployment has when it names none (the
// worker's AUTH_ISSUER): a worker on this machine, for development. An
// Issuer's Config must name its issuer; this is not filled in.
const DefaultIssuer = "http://localhost:8080"

// MaxAccessTTL bounds the lifetime of access tokens: they are bearer
// tokens that only revocation can end early.
const MaxAccessTTL = 24 * time.Hour

// Defaults of Config.
const (
	DefaultAccessTTL      = 15 * time.Minute
	DefaultAlgorithm      = ES256
	DefaultRotationPeriod = 7 * 24 * time.Hour
	DefaultPrePublish     = time.Hour
	DefaultReloadInterval = 30 * time.Second
)

func (c *Config) setDefaults() {
	if c.AccessTTL == 0 {
		c.AccessTTL = DefaultAccessTTL
	}
	if c.Algorithm == "" {
		c.Algorithm = DefaultAlgorithm
	}
	if c.RotationPeriod == 0 {
		c.RotationPeriod = DefaultRotationPeriod
	}
	if c.PrePublish == 0 {
		c.PrePublish = DefaultPrePublish
	}
	if c.ReloadInterval == 0 {
		c.ReloadInterval = DefaultReloadInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Random == nil {
		c.Random = rand.Reader
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// algorithms returns the algorithms that sign: the default first, then
// the others in order of name, each once.
func (c Config) algorithms() []string {
	others := c.OtherAlgorithms()
	slices.Sort(others)
	others = slices.Compact(others)
	return append([]string{c.Algorithm}, slices.DeleteFunc(others, func(a string) bool { return a == c.Algorithm })...)
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Issuer == "":
		return errors.New("token issuer is required")
	case len(c.Audience) == 0 || slices.Contains(c.Audience, ""):
		return errors.New("token audience is required and may not be empty")
	}
	return c.validateKeys()
}

// validateKeys reports the first setting of key management that cannot
// work.
func (c Config) validateKeys() error {
	switch {
	case c.AccessTTL < time.Second:
		return fmt.Errorf("access token lifetime %v is too short", c.AccessTTL)
	case c.AccessTTL > MaxAccessTTL:
		// Revocation holds revoked sessions, and revokes a user's sessions
		// that expired, for a day: no access token may outlive that.
		return fmt.Errorf("access token lifetime %v is longer than %v", c.AccessTTL, MaxAccessTTL)
	case len(c.KeyEncryptionKey) != seal.KeySize:
		return fmt.Errorf("key-encryption key must be %d bytes, got %d", seal.KeySize, len(c.KeyEncryptionKey))
	case slices.ContainsFunc(c.OlderKeyEncryptionKeys, func(k []byte) bool { return len(k) != seal.KeySize }):
		return fmt.Errorf("every older key-encryption key must be %d bytes", seal.KeySize)
	case c.ReloadInterval <= 0:
		return errors.New("key reload interval must be positive")
	case c.PrePublish <= c.ReloadInterval:
		// A worker that has not reloaded since the key was created would
		// not sign with it, or publish it, in time.
		return fmt.Errorf("key pre-publication %v must be longer than the reload interval %v", c.PrePublish, c.ReloadInterval)
	case c.RotationPeriod <= 2*c.PrePublish:
		// A successor is published two pre-publication windows before
		// its predecessor's end.
		return fmt.Errorf("key rotation period %v must be longer than twice the pre-publication %v", c.RotationPeriod, c.PrePublish)
	}
	for client := range c.ClientAlgorithms {
		if client == "" {
			return errors.New("a signing algorithm is chosen for an empty client id")
		}
	}
	for _, a := range c.algorithms() {
		if _, err := signingMethod(a); err != nil {
			return err
		}
	}
	return nil
}

// Issuer signs access tokens with the current signing key and serves the
// published key set. It is safe for concurrent use.
type Issuer struct {
	cfg        Config
	algorithms []string          // that sign, the default first
	clientAlgs map[string]string // client id → algorithm, for those not on the default
	keys       *Manager
	set        atomic.Pointer[keySet]
	refresh    chan struct{} // asks Run to reload now
}

// keySet is an immutable snapshot of the keys, swapped whole on reload.
type keySet struct {
	// signers are, per algorithm that signs, the keys that may sign a
	// token asked of it, preferred first: its own, then the default
	// algorithm's (while its first key is not yet published long
	// enough), then any other.
	signers  map[string]signers
	verifier *Verifier // of every published key
	jwks     []byte
}

// signers are the keys that may sign a token of one algorithm, newest
// first: its own, and those that sign in its place until its first key
// may (the default algorithm's, then any other), as when the algorithm
// was just enabled.
type signers struct {
	own, stand []*privateKey
}

// signer returns the key that signs a token of algorithm alg at now: the
// newest of alg's own that may. When none may: if one of them began
// signing (every worker was cut off from the store past the current key's
// end, and none stored a successor), the last that did, still published,
// and fresh reports false, so that the token stays of alg, which its
// verifiers may require; else a stand-in that may, or the last to begin.
func (s *keySet) signer(alg string, now time.Time) (k *privateKey, fresh bool) {
	ks := s.signers[alg]
	if k := mayNow(ks.own, now); k != nil {
		return k, true
	}
	if k := lastBegun(ks.own, now); k != nil {
		return k, false
	}
	if k := mayNow(ks.stand, now); k != nil {
		return k, true
	}
	return lastBegun(ks.stand, now), false
}

// mayNow returns the first of keys that may sign at now, or nil.
func mayNow(keys []*privateKey, now time.Time) *privateKey {
	for _, k := range keys {
		if k.signs(now) {
			return k
		}
	}
	return nil
}

// lastBegun returns the key of keys that began signing last before now,
// or nil.
func lastBegun(keys []*privateKey, now time.Time) *privateKey {
	var last *privateKey
	for _, k := range keys {
		if !now.Before(k.from) && (last == nil || k.from.After(last.from)) {
			last = k
		}
	}
	return last
}

// NewIssuer returns an Issuer over the store. It applies the rotation
// policy first, so that on first start it creates the signing key, and
// then loads the keys every worker shares.
func NewIssuer(ctx context.Context, store domain.SigningKeyRepository, cfg Config) (*Issuer, error) {
	if cfg.Algorithm == "" {
		now := time.Now
		if cfg.Now != nil {
			now = cfg.Now
		}
		alg, err := InheritedAlgorithm(ctx, store, now(), cfg.OtherAlgorithms())
		if err != nil {
			return nil, err
		}
		cfg.Algorithm = alg
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	keys, err := NewManager(store, cfg)
	if err != nil {
		return nil, err
	}
	i := &Issuer{cfg: cfg, algorithms: cfg.algorithms(), clientAlgs: maps.Clone(cfg.ClientAlgorithms), keys: keys, refresh: make(chan struct{}, 1)}
	if _, err := keys.Maintain(ctx); err != nil {
		return nil, err
	}
	if err := i.Reload(ctx); err != nil {
		return nil, err
	}
	if k, fresh := i.set.Load().signer(cfg.Algorithm, cfg.Now()); k == nil || !fresh {
		// Maintain left one stored: the issuer does not trust it.
		return nil, fmt.Errorf("no trusted %s signing key; the untrusted ones are logged (is the key-encryption key the one other workers use?)", cfg.Algorithm)
	}
	cfg.Logger.Info("signing access tokens", "default_alg", cfg.Algorithm, "algs", i.algorithms, "client_algs", i.clientAlgs)
	return i, nil
}

// InheritedAlgorithm is the default algorithm of a deployment whose
// settings name none: the algorithm its current keys sign with, so that
// an upgrade from a version with another default changes nothing
// verifiers see (some accept one algorithm alone). Of the algorithms of
// the keys that sign at now, those named only for some clients (others:
// Config.Algorithms and the values of Config.ClientAlgorithms) do not
// count, unless nothing else signs; DefaultAlgorithm wins when it is
// among the rest, else the algorithm of the newest key. DefaultAlgorithm
// when no key signs (a new deployment).
func InheritedAlgorithm(ctx context.Context, store domain.SigningKeyRepository, now time.Time, others []string) (string, error) {
	stored, err := store.SigningKeys(ctx, now)
	if err != nil {
		return "", err
	}
	var signing, unnamed []domain.SigningKey
	for _, k := range stored {
		if _, err := signingMethod(k.Algorithm); err != nil || !k.Signs(now) {
			continue
		}
		signing = append(signing, k)
		if !slices.Contains(others, k.Algorithm) {
			unnamed = append(unnamed, k)
		}
	}
	if len(unnamed) > 0 {
		signing = unnamed
	}
	if len(signing) == 0 || slices.ContainsFunc(signing, func(k domain.SigningKey) bool { return k.Algorithm == DefaultAlgorithm }) {
		return DefaultAlgorithm, nil
	}
	newest := slices.MaxFunc(signing, func(a, b domain.SigningKey) int { return a.SignFrom.Compare(b.SignFrom) })
	return newest.Algorithm, nil
}

// OtherAlgorithms returns the algorithms c names besides the default: for every
// signer, and per client.
func (c Config) OtherAlgorithms() []string {
	others := slices.Clone(c.Algorithms)
	for _, a := range c.ClientAlgorithms {
		others = append(others, a)
	}
	return others
}

// Reload loads the keys from the store and swaps them in. A stored key that
// fails the checks of trust is logged at error level and left out: neither
// published nor used. When Reload fails, as when the store is down, the
// previous keys stay in use.
func (i *Issuer) Reload(ctx context.Context) error {
	stored, err := i.keys.store.SigningKeys(ctx, i.cfg.Now())
	if err != nil {
		return err
	}
	trusted := i.keys.trusted(stored)
	published := &KeySet{keys: make(map[string]verifyingKey, len(trusted))}
	jwks := JWKS{Keys: []JWK{}}
	byAlg := map[string][]*privateKey{}
	for _, t := range trusted {
		published.keys[t.row.ID] = t.verifying
		jwks.Keys = append(jwks.Keys, t.jwk)
		byAlg[t.row.Algorithm] = append(byAlg[t.row.Algorithm], t.signing)
	}
	// Of keys whose signing windows overlap (a worker that was late, an
	// operator's rotation), the newest signs.
	newest := func(a, b *privateKey) int { return b.from.Compare(a.from) }
	for _, keys := range byAlg {
		slices.SortStableFunc(keys, newest)
	}
	set := &keySet{signers: make(map[string]signers, len(i.algorithms))}
	for _, alg := range i.algorithms {
		var stand []*privateKey
		if alg != i.cfg.Algorithm {
			stand = append(stand, byAlg[i.cfg.Algorithm]...)
		}
		for _, other := range slices.Sorted(maps.Keys(byAlg)) {
			if other != alg && other != i.cfg.Algorithm {
				stand = append(stand, byAlg[other]...)
			}
		}
		set.signers[alg] = signers{own: byAlg[alg], stand: stand}
	}
	set.verifier, err = NewVerifier(published, VerifyOptions{Issuer: i.cfg.Issuer, Audience: i.cfg.Audience[0], Now: i.cfg.Now})
	if err != nil {
		return err
	}
	set.jwks, err = json.Marshal(jwks)
	if err != nil {
		return fmt.Errorf("encode JWKS: %w", err)
	}
	if prev := i.set.Load(); prev != nil && bytes.Equal(prev.jwks, set.jwks) {
		// The same set: keep its slice, so that what is derived from it
		// (the HTTP server's ETag) is not derived again.
		set.jwks = prev.jwks
	}
	i.set.Store(set)
	return nil
}

// Refresh asks Run to apply the rotation policy and reload the keys now,
// as when another worker or an operator changed them. It does not wait;
// requests made while one is pending are served by it.
func (i *Issuer) Refresh() {
	select {
	case i.refresh <- struct{}{}:
	default:
	}
}

// Run applies the rotation policy and reloads the keys every
// ReloadInterval, and when Refresh asks, until ctx ends. A failure keeps
// the previous keys and is retried at the next tick.
func (i *Issuer) Run(ctx context.Context) {
	t := time.NewTicker(i.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-i.refresh:
		}
		if err := i.Maintain(ctx); err != nil && ctx.Err() == nil {
			i.cfg.Logger.Warn("maintain signing keys", "err", err)
		}
	}
}

// Maintain applies the rotation policy and reloads the keys, as Run does
// at each tick.
func (i *Issuer) Maintain(ctx context.Context) error {
	_, merr := i.keys.Maintain(ctx)
	return errors.Join(merr, i.Reload(ctx))
}

var _ domain.TokenIssuer = (*Issuer)(nil)

// IssueAccessToken signs an access token for c with the current key of
// c's client's algorithm (Config.ClientAlgorithms), or of the default. It
// returns CodeUnavailable when no key may sign, and CodeInternal when c
// lacks the user, session or client: verifiers reject a token without them.
func (i *Issuer) IssueAccessToken(_ context.Context, c domain.AccessClaims) (domain.AccessToken, error) {
	if c.UserID == "" || c.SessionID == "" || c.ClientID == "" {
		return domain.AccessToken{}, domain.Errorf(domain.CodeInternal, "access token claims need a user, a session and a client")
	}
	alg, ok := i.clientAlgs[c.ClientID]
	if !ok {
		alg = i.cfg.Algorithm
	}
	signer, fresh := i.set.Load().signer(alg, i.cfg.Now())
	if signer == nil {
		return domain.AccessToken{}, &domain.Error{Code: domain.CodeUnavailable, Message: "no signing key available"}
	}
	if !fresh {
		i.Refresh()
	}
	var id [16]byte
	if _, err := io.ReadFull(i.cfg.Random, id[:]); err != nil {
		return domain.AccessToken{}, fmt.Errorf("draw token id: %w", err)
	}
	now := i.cfg.Now().Truncate(time.Second)
	expires := now.Add(i.cfg.AccessTTL)
	jti := b64.EncodeToString(id[:])
	t := jwt.NewWithClaims(signer.method, claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.cfg.Issuer,
			Subject:   string(c.UserID),
			Audience:  i.cfg.Audience,
			ExpiresAt: jwt.NewNumericDate(expires),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		SessionID:     string(c.SessionID),
		ClientID:      c.ClientID,
		EmailVerified: c.EmailVerified,
	})
	t.Header["typ"] = TokenType
	t.Header["kid"] = signer.kid
	signed, err := t.SignedString(signer.key)
	if err != nil {
		return domain.AccessToken{}, fmt.Errorf("sign access token: %w", err)
	}
	return domain.AccessToken{Token: signed, ID: jti, ExpiresAt: expires}, nil
}

// VerifyAccessToken checks token against the published keys, this worker's
// issuer and its first audience. Any failure is CodeUnauthorized.
func (i *Issuer) VerifyAccessToken(token string) (Claims, error) {
	return i.set.Load().verifier.Verify(token)
}

// JWKS returns the published key set as JSON: every key that may still
// verify a live token, public halves only, each kid once. It returns the
// same slice until the set changes, and never modifies a slice it returned:
// callers may key what they derive from the set by the slice's identity.
func (i *Issuer) JWKS() []byte {
	return i.set.Load().jwks
}
