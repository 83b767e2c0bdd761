package tokens

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/authworker/authworker/domain"
)

// MaxTokenSize is the longest token a Verifier reads, in bytes. Our tokens
// are under 1 KiB even signed with RS256, and 8 KiB is what common HTTP
// servers allow for a whole header line; the cap bounds the work an
// unauthenticated caller can make a verifier do (decoding, JSON parsing,
// RSA) before any check has passed.
const MaxTokenSize = 8 << 10

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

// Verify checks token as the package comment describes and returns its
// claims. Any failure is CodeUnauthorized; the error's cause says which
// check failed, never what the token holds.
func (v *Verifier) Verify(token string) (Claims, error) {
	c, err := v.verify(token)
	if err != nil {
		return Claims{}, &domain.Error{Code: domain.CodeUnauthorized, Message: "invalid access token", Err: err}
	}
	return c, nil
}

func (v *Verifier) verify(token string) (Claims, error) {
	jws, err := parseCompact(token)
	if err != nil {
		return Claims{}, err
	}
	if err := v.checkSignature(jws); err != nil {
		return Claims{}, err
	}
	return v.checkClaims(jws.payload)
}

// compactJWS is a token split into its decoded segments.
type compactJWS struct {
	header, payload, signature []byte
	signingInput               string // the first two segments as sent
}

// parseCompact splits token into exactly three segments of unpadded
// base64url, as RFC 7515 §7.1 writes them, and decodes them.
func parseCompact(token string) (compactJWS, error) {
	if len(token) > MaxTokenSize {
		return compactJWS{}, errors.New("token is longer than MaxTokenSize")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return compactJWS{}, errors.New("token is not three segments")
	}
	var jws compactJWS
	for i, dst := range []*[]byte{&jws.header, &jws.payload, &jws.signature} {
		decoded, err := decodeSegment(parts[i])
		if err != nil {
			return compactJWS{}, err
		}
		*dst = decoded
	}
	jws.signingInput = parts[0] + "." + parts[1]
	return jws, nil
}

// decodeSegment decodes unpadded base64url. The alphabet is checked first
// because the decoder skips line breaks; strict decoding refuses unused bits
// that are set, so that no token has a second spelling.
func decodeSegment(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("token has an empty segment")
	}
	for i := range len(s) {
		if c := s[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, errors.New("token segment is not base64url")
		}
	}
	b, err := b64.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("token segment is not canonical base64url")
	}
	return b, nil
}

// checkSignature verifies the signature with the key the header's kid
// names, and only if the header's alg is that key's algorithm: the token
// never chooses how it is verified.
func (v *Verifier) checkSignature(jws compactJWS) error {
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}
	if err := json.Unmarshal(jws.header, &h); err != nil {
		return errors.New("token header is not a JSON object")
	}
	if h.Typ != TokenType {
		return errors.New("token type is not at+jwt")
	}
	if !slices.Contains([]string{EdDSA, ES256, RS256}, h.Alg) {
		return errors.New("token algorithm is not allowed")
	}
	k, ok := v.keys.keys[h.Kid]
	if !ok {
		return errors.New("token signing key is unknown")
	}
	if h.Alg != k.method.Alg() {
		return errors.New("token algorithm is not its key's")
	}
	if err := k.method.Verify(jws.signingInput, jws.signature, k.key); err != nil {
		return errors.New("token signature is invalid")
	}
	return nil
}

// checkClaims checks the claims of a token whose signature holds.
func (v *Verifier) checkClaims(payload []byte) (Claims, error) {
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Claims{}, errors.New("token payload is not a JSON object of claims")
	}
	now := v.opts.Now()
	switch {
	case c.Issuer != v.opts.Issuer:
		return Claims{}, errors.New("token issuer is not ours")
	case !slices.Contains(c.Audience, v.opts.Audience):
		return Claims{}, errors.New("token audience is not ours")
	case c.ExpiresAt == nil:
		return Claims{}, errors.New("token has no expiry")
	case !now.Before(c.ExpiresAt.Time):
		return Claims{}, errors.New("token has expired")
	case c.NotBefore != nil && now.Before(c.NotBefore.Time):
		return Claims{}, errors.New("token is not valid yet")
	case c.IssuedAt != nil && now.Before(c.IssuedAt.Time):
		return Claims{}, errors.New("token is issued in the future")
	}
	out := Claims{
		AccessClaims: domain.AccessClaims{
			UserID:    domain.UserID(c.Subject),
			SessionID: domain.SessionID(c.SessionID),
			ClientID:  c.ClientID,
		},
		ID:        c.ID,
		ExpiresAt: c.ExpiresAt.Time,
	}
	if c.IssuedAt != nil {
		out.IssuedAt = c.IssuedAt.Time
	}
	return out, nil
}
