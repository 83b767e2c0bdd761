package tokens

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

// Config configures an Issuer.
type Config struct {
	Issuer    string        // the iss claim, e.g. "https://auth.example.com"
	Audience  []string      // the aud claim
	AccessTTL time.Duration // lifetime of access tokens; default 15 minutes
	Algorithm string        // EdDSA (default), ES256 or RS256

	// KeyEncryptionKey seals private keys at rest. Every worker must have
	// the same one.
	KeyEncryptionKey []byte

	// ReloadInterval is how often keys are reloaded from the store, to pick
	// up keys that other workers created; default one minute.
	ReloadInterval time.Duration

	Now    func() time.Time // default time.Now
	Random io.Reader        // default crypto/rand
	Logger *slog.Logger     // default discards
}

// MaxAccessTTL bounds the lifetime of access tokens: they are bearer
// tokens that only revocation can end early.
const MaxAccessTTL = 24 * time.Hour

// Defaults of Config.
const (
	DefaultAccessTTL = 15 * time.Minute
	DefaultAlgorithm = EdDSA
)

func (c *Config) setDefaults() {
	if c.AccessTTL == 0 {
		c.AccessTTL = DefaultAccessTTL
	}
	if c.Algorithm == "" {
		c.Algorithm = DefaultAlgorithm
	}
	if c.ReloadInterval == 0 {
		c.ReloadInterval = time.Minute
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

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Issuer == "":
		return errors.New("token issuer is required")
	case len(c.Audience) == 0 || slices.Contains(c.Audience, ""):
		return errors.New("token audience is required and may not be empty")
	case c.AccessTTL < time.Second:
		return fmt.Errorf("access token lifetime %v is too short", c.AccessTTL)
	case c.AccessTTL > MaxAccessTTL:
		// Revocation holds revoked sessions, and revokes a user's sessions
		// that expired, for a day: no access token may outlive that.
		return fmt.Errorf("access token lifetime %v is longer than %v", c.AccessTTL, MaxAccessTTL)
	case len(c.KeyEncryptionKey) != seal.KeySize:
		return fmt.Errorf("key-encryption key must be %d bytes, got %d", seal.KeySize, len(c.KeyEncryptionKey))
	case c.ReloadInterval <= 0:
		return errors.New("key reload interval must be positive")
	}
	_, err := signingMethod(c.Algorithm)
	return err
}

// Issuer signs access tokens with the current signing key and serves the
// published key set. It is safe for concurrent use.
type Issuer struct {
	cfg   Config
	store domain.SigningKeyRepository
	box   *seal.Box // seals private keys
	keys  atomic.Pointer[keySet]
}

// keySet is an immutable snapshot of the keys, swapped whole on reload.
type keySet struct {
	signer   *privateKey // signs new tokens; nil when none may
	verifier *Verifier   // of every published key
	jwks     []byte
}

type privateKey struct {
	kid    string
	method jwt.SigningMethod
	key    crypto.Signer
}

// NewIssuer returns an Issuer over the store. On first start it creates the
// signing key; afterwards it loads the keys other workers share.
func NewIssuer(ctx context.Context, store domain.SigningKeyRepository, cfg Config) (*Issuer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	box, err := seal.NewBox(cfg.KeyEncryptionKey, "signing keys")
	if err != nil {
		return nil, err
	}
	i := &Issuer{cfg: cfg, store: store, box: box}
	if err := i.ensureSigningKey(ctx); err != nil {
		return nil, err
	}
	if err := i.Reload(ctx); err != nil {
		return nil, err
	}
	if i.keys.Load().signer == nil {
		// ensureSigningKey left one stored: the issuer does not trust it.
		return nil, fmt.Errorf("no trusted %s signing key; the untrusted ones are logged (is the key-encryption key the one other workers use?)", cfg.Algorithm)
	}
	return i, nil
}

// ensureSigningKey creates a key for the configured algorithm unless one that
// signs now exists. The key is generated before the repository's update
// runs, so that no lock is held while it is (an RSA-3072 key takes up to
// seconds); the update, which serialises workers starting together, keeps
// it only if no other worker stored one meanwhile.
func (i *Issuer) ensureSigningKey(ctx context.Context) error {
	signs := func(keys []domain.SigningKey, now time.Time) bool {
		for _, k := range keys {
			if k.Algorithm == i.cfg.Algorithm && k.Signs(now) {
				return true
			}
		}
		return false
	}
	now := i.cfg.Now()
	stored, err := i.store.SigningKeys(ctx, now)
	if err != nil {
		return err
	}
	if signs(stored, now) {
		return nil
	}
	k, err := newSigningKey(i.cfg.Algorithm, i.box, i.cfg.Random, now)
	if err != nil {
		return err
	}
	return i.store.UpdateSigningKeys(ctx, now, func(keys []domain.SigningKey) ([]domain.SigningKey, error) {
		// Read the clock again: a worker that stored its key while this one
		// generated read its clock later, so its key signs from a later
		// instant than the now above.
		if signs(keys, i.cfg.Now()) {
			return nil, nil
		}
		i.cfg.Logger.Info("created signing key", "kid", k.ID, "alg", k.Algorithm)
		return []domain.SigningKey{k}, nil
	})
}

// Reload loads the keys from the store and swaps them in. A stored key that
// fails the checks of trust is logged at error level and left out: neither
// published nor used. When Reload fails, as when the store is down, the
// previous keys stay in use.
func (i *Issuer) Reload(ctx context.Context) error {
	now := i.cfg.Now()
	stored, err := i.store.SigningKeys(ctx, now)
	if err != nil {
		return err
	}
	published := &KeySet{keys: make(map[string]verifyingKey, len(stored))}
	set := &keySet{}
	jwks := JWKS{Keys: []JWK{}}
	var signFrom time.Time // of set.signer
	for _, k := range stored {
		if _, dup := published.keys[k.ID]; dup {
			// The store keys rows by kid; a set with one kid twice would
			// leave verifiers to pick one.
			continue
		}
		t, err := i.trust(k)
		if err != nil {
			i.cfg.Logger.Error("signing key not trusted, not published", "kid", k.ID, "alg", k.Algorithm, "reason", err)
			continue
		}
		published.keys[k.ID] = t.verifying
		jwks.Keys = append(jwks.Keys, t.jwk)
		if k.Algorithm == i.cfg.Algorithm && k.Signs(now) && (set.signer == nil || !k.SignFrom.Before(signFrom)) {
			set.signer, signFrom = t.signing, k.SignFrom
		}
	}
	set.verifier, err = NewVerifier(published, VerifyOptions{Issuer: i.cfg.Issuer, Audience: i.cfg.Audience[0], Now: i.cfg.Now})
	if err != nil {
		return err
	}
	set.jwks, err = json.Marshal(jwks)
	if err != nil {
		return fmt.Errorf("encode JWKS: %w", err)
	}
	if prev := i.keys.Load(); prev != nil && bytes.Equal(prev.jwks, set.jwks) {
		// The same set: keep its slice, so that what is derived from it
		// (the HTTP server's ETag) is not derived again.
		set.jwks = prev.jwks
	}
	i.keys.Store(set)
	return nil
}

// trustedKey is a stored key that passed the checks of trust.
type trustedKey struct {
	jwk       JWK
	verifying verifyingKey
	signing   *privateKey
}

// trust returns k if it is a key a worker created, or the reason to think
// it is not. Anyone who can write to the store can write a row; only a
// holder of the key-encryption key can seal its private half. So the
// sealed half must open under our KEK, bound to the row's kid as
// associated data, and everything else in the row must follow from it:
// the private key parses and is of the row's algorithm, the public half
// is its public key, and the kid is that key's RFC 7638 thumbprint. The
// reason never includes key material.
func (i *Issuer) trust(k domain.SigningKey) (trustedKey, error) {
	method, err := signingMethod(k.Algorithm)
	if err != nil {
		return trustedKey{}, err
	}
	der, err := i.box.Open(k.SealedPrivateKey, []byte(k.ID))
	if err != nil {
		return trustedKey{}, errors.New("private half does not open under the key-encryption key for this kid")
	}
	defer clear(der)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return trustedKey{}, errors.New("private half is not a PKCS #8 key")
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok || !keyOfAlgorithm(signer, k.Algorithm) {
		return trustedKey{}, fmt.Errorf("private half is not a key of %s", k.Algorithm)
	}
	pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
	if err != nil {
		return trustedKey{}, errors.New("public half is not a PKIX key")
	}
	if own, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !own.Equal(pub) {
		return trustedKey{}, errors.New("public half is not the private half's")
	}
	jwk, err := publicJWK(pub, k.Algorithm)
	if err != nil {
		return trustedKey{}, err
	}
	if jwk.Kid != k.ID {
		return trustedKey{}, errors.New("kid is not the thumbprint of the public half")
	}
	return trustedKey{
		jwk:       jwk,
		verifying: verifyingKey{method: method, key: pub},
		signing:   &privateKey{kid: k.ID, method: method, key: signer},
	}, nil
}

// Run reloads the keys every ReloadInterval until ctx ends. A failed reload
// keeps the previous keys and is retried at the next tick.
func (i *Issuer) Run(ctx context.Context) {
	t := time.NewTicker(i.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := i.Reload(ctx); err != nil && ctx.Err() == nil {
				i.cfg.Logger.Warn("reload signing keys", "err", err)
			}
		}
	}
}

var _ domain.TokenIssuer = (*Issuer)(nil)

// IssueAccessToken signs an access token for c with the current key. It
// returns CodeUnavailable when no key may sign, and CodeInternal when c
// lacks the user, session or client: verifiers reject a token without them.
func (i *Issuer) IssueAccessToken(_ context.Context, c domain.AccessClaims) (domain.AccessToken, error) {
	if c.UserID == "" || c.SessionID == "" || c.ClientID == "" {
		return domain.AccessToken{}, domain.Errorf(domain.CodeInternal, "access token claims need a user, a session and a client")
	}
	signer := i.keys.Load().signer
	if signer == nil {
		return domain.AccessToken{}, &domain.Error{Code: domain.CodeUnavailable, Message: "no signing key available"}
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
	return i.keys.Load().verifier.Verify(token)
}

// JWKS returns the published key set as JSON: every key that may still
// verify a live token, public halves only, each kid once. It returns the
// same slice until the set changes, and never modifies a slice it returned:
// callers may key what they derive from the set by the slice's identity.
func (i *Issuer) JWKS() []byte {
	return i.keys.Load().jwks
}
