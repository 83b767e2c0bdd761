package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authworker/authworker/domain"
)

// KeySet verifies access tokens against a set of public keys. Services that
// verify tokens offline build one from the worker's JWKS with ParseJWKS.
type KeySet struct {
	keys map[string]verifyingKey // by kid
}

type verifyingKey struct {
	method jwt.SigningMethod
	key    crypto.PublicKey
}

// ParseJWKS reads a JSON Web Key Set such as the one served at
// /.well-known/jwks.json. Keys of unsupported types are skipped, as RFC 7517
// asks; a set with no usable key is an error.
func ParseJWKS(data []byte) (*KeySet, error) {
	var set JWKS
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	ks := &KeySet{keys: make(map[string]verifyingKey, len(set.Keys))}
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		method, err := signingMethod(k.Alg)
		if err != nil {
			continue
		}
		pub, err := k.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("parse JWKS key %q: %w", k.Kid, err)
		}
		ks.keys[k.Kid] = verifyingKey{method: method, key: pub}
	}
	if len(ks.keys) == 0 {
		return nil, errors.New("parse JWKS: no usable signing key")
	}
	return ks, nil
}

// PublicKey returns the key k describes.
func (k JWK) PublicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "OKP":
		x, err := b64.DecodeString(k.X)
		if err != nil || k.Crv != "Ed25519" || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("invalid Ed25519 key")
		}
		return ed25519.PublicKey(x), nil
	case "EC":
		x, errX := b64.DecodeString(k.X)
		y, errY := b64.DecodeString(k.Y)
		if errX != nil || errY != nil || k.Crv != "P-256" || len(x) != 32 || len(y) != 32 {
			return nil, errors.New("invalid P-256 key")
		}
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	case "RSA":
		n, errN := b64.DecodeString(k.N)
		e, errE := b64.DecodeString(k.E)
		if errN != nil || errE != nil || len(n) < 256 || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("invalid RSA key")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	}
	return nil, fmt.Errorf("unsupported key type %q", k.Kty)
}

// VerifyOptions are what a Verifier expects of every token. Issuer and
// Audience are required: a verifier that skipped either would accept tokens
// minted for another issuer or another service.
type VerifyOptions struct {
	Issuer   string           // the iss a token must carry, exactly
	Audience string           // the verifier's own audience; aud must name it
	Now      func() time.Time // default time.Now
}

func (o *VerifyOptions) setDefaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate reports the first option that is missing.
func (o VerifyOptions) Validate() error {
	switch {
	case o.Issuer == "":
		return errors.New("token verifier: an issuer is required")
	case o.Audience == "":
		return errors.New("token verifier: an audience is required")
	}
	return nil
}

// Verifier verifies access tokens offline against a key set, for one issuer
// and one audience. It is safe for concurrent use.
type Verifier struct {
	keys *KeySet
	opts VerifyOptions
}

// NewVerifier returns a Verifier of tokens signed by keys, or an error if
// keys is nil or opts lacks the issuer or audience.
func NewVerifier(keys *KeySet, opts VerifyOptions) (*Verifier, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if keys == nil {
		return nil, errors.New("token verifier: a key set is required")
	}
	return &Verifier{keys: keys, opts: opts}, nil
}

// Claims are the verified claims of an access token.
type Claims struct {
	domain.AccessClaims
	ID        string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// claims are the claims of an access token as serialised.
type claims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid"`
	ClientID  string `json:"client_id"`
}

// Verify checks token's type (at+jwt), signature, issuer, audience and
// expiry, and returns its claims. Any failure is CodeUnauthorized.
func (v *Verifier) Verify(token string) (Claims, error) {
	s, opts := v.keys, v.opts
	var c claims
	parsed, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != TokenType {
			return nil, fmt.Errorf("token type %q is not %s", typ, TokenType)
		}
		kid, _ := t.Header["kid"].(string)
		k, ok := s.keys[kid]
		if !ok {
			return nil, errors.New("unknown signing key")
		}
		if t.Method.Alg() != k.method.Alg() {
			return nil, errors.New("algorithm does not match the key")
		}
		return k.key, nil
	},
		jwt.WithValidMethods([]string{EdDSA, ES256, RS256}),
		jwt.WithIssuer(opts.Issuer),
		jwt.WithAudience(opts.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(opts.Now),
	)
	if err != nil || !parsed.Valid {
		return Claims{}, &domain.Error{Code: domain.CodeUnauthorized, Message: "invalid access token", Err: err}
	}
	return Claims{
		AccessClaims: domain.AccessClaims{
			UserID:    domain.UserID(c.Subject),
			SessionID: domain.SessionID(c.SessionID),
			ClientID:  c.ClientID,
		},
		ID:        c.ID,
		IssuedAt:  c.IssuedAt.Time,
		ExpiresAt: c.ExpiresAt.Time,
	}, nil
}
