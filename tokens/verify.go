package tokens

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
	keys keySource
	opts VerifyOptions
}

// keySource finds the key a kid names: a static KeySet, or a RemoteKeySet
// that may fetch the JWKS again when the kid is unknown. Every source goes
// through the same Verifier checks.
type keySource interface {
	lookup(kid string) (verifyingKey, bool)
}

// NewVerifier returns a Verifier of tokens signed by keys, or an error if
// keys is nil or opts lacks the issuer or audience.
func NewVerifier(keys *KeySet, opts VerifyOptions) (*Verifier, error) {
	return newVerifier(keys, keys == nil, opts)
}

// newVerifier is NewVerifier over any key source; missing says the
// caller's pointer was nil, which the interface value does not show.
func newVerifier(keys keySource, missing bool, opts VerifyOptions) (*Verifier, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if missing {
		return nil, errors.New("token verifier: a key set is required")
	}
	return &Verifier{keys: keys, opts: opts}, nil
}

// Claims are the verified claims of an access token.
type Claims = domain.TokenClaims

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

// checkSignature reads the header, refuses crit and any type but an access
// token's, and verifies the signature with the key the kid names, only if
// alg is that key's algorithm: the token never chooses how it is verified.
func (v *Verifier) checkSignature(jws compactJWS) error {
	h, err := parseObject(jws.header)
	if err != nil {
		return fmt.Errorf("token header: %w", err)
	}
	if _, ok := h["crit"]; ok {
		return errors.New("token header names critical extensions; none is understood")
	}
	typ, err := h.string("typ")
	if err != nil {
		return fmt.Errorf("token header: %w", err)
	}
	if !strings.EqualFold(typ, TokenType) && !strings.EqualFold(typ, "application/"+TokenType) {
		return errors.New("token type is not at+jwt")
	}
	alg, err := h.string("alg")
	if err != nil {
		return fmt.Errorf("token header: %w", err)
	}
	if !slices.Contains([]string{EdDSA, ES256, RS256}, alg) {
		return errors.New("token algorithm is not allowed")
	}
	kid, err := h.string("kid")
	if err != nil {
		return fmt.Errorf("token header: %w", err)
	}
	k, ok := v.keys.lookup(kid)
	if !ok {
		return errors.New("token signing key is unknown")
	}
	if alg != k.method.Alg() {
		return errors.New("token algorithm is not its key's")
	}
	if err := k.method.Verify(jws.signingInput, jws.signature, k.key); err != nil {
		return errors.New("token signature is invalid")
	}
	return nil
}

// checkClaims checks the claims of a token whose signature holds: those
// that RFC 9068 §2.2 requires and our sid, each once and of its type.
func (v *Verifier) checkClaims(payload []byte) (Claims, error) {
	c, err := parseObject(payload)
	if err != nil {
		return Claims{}, fmt.Errorf("token payload: %w", err)
	}
	out, err := v.readClaims(c)
	if err != nil {
		return Claims{}, fmt.Errorf("token claims: %w", err)
	}
	return out, nil
}

func (v *Verifier) readClaims(c jsonObject) (Claims, error) {
	iss, err := c.string("iss")
	if err != nil {
		return Claims{}, err
	}
	if iss != v.opts.Issuer {
		return Claims{}, errors.New("iss is not ours")
	}
	aud, err := c.audience()
	if err != nil {
		return Claims{}, err
	}
	if !slices.Contains(aud, v.opts.Audience) {
		return Claims{}, errors.New("aud does not name us")
	}
	now := v.opts.Now()
	exp, err := c.numericDate("exp", true)
	if err != nil {
		return Claims{}, err
	}
	if !now.Before(exp) {
		return Claims{}, errors.New("token has expired")
	}
	iat, err := c.numericDate("iat", true)
	if err != nil {
		return Claims{}, err
	}
	if now.Before(iat) {
		return Claims{}, errors.New("iat is in the future")
	}
	nbf, err := c.numericDate("nbf", false)
	if err != nil {
		return Claims{}, err
	}
	if now.Before(nbf) {
		return Claims{}, errors.New("token is not valid yet")
	}
	out := Claims{Issuer: iss, Audience: aud, IssuedAt: iat, ExpiresAt: exp}
	if out.EmailVerified, err = c.optionalBool("email_verified"); err != nil {
		return Claims{}, err
	}
	var sub, sid string
	for _, m := range []struct {
		name string
		dst  *string
	}{{"sub", &sub}, {"sid", &sid}, {"client_id", &out.ClientID}, {"jti", &out.ID}} {
		if *m.dst, err = c.string(m.name); err != nil {
			return Claims{}, err
		}
	}
	out.UserID, out.SessionID = domain.UserID(sub), domain.SessionID(sid)
	return out, nil
}

// jsonObject is the members of a JSON object, by exact name.
type jsonObject map[string]json.RawMessage

// parseObject reads data as one JSON object of UTF-8 text in which no
// object, at any depth, has two members of the same name. JSON parsers
// differ on duplicates (encoding/json keeps the last, others the first),
// so a token with one could mean one thing to us and another to the next
// service that reads it; RFC 7515 §4 and RFC 7519 §4 let us refuse it.
func parseObject(data []byte) (jsonObject, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := checkMembersOnce(dec); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON object")
	}
	var o jsonObject
	if err := json.Unmarshal(data, &o); err != nil || o == nil {
		return nil, errors.New("not a JSON object")
	}
	return o, nil
}

// checkMembersOnce reads the next JSON value from dec and returns an error
// if it is malformed or any object in it has a member twice. Names compare
// as decoded, so "s\u0075b" is "sub". The size cap on tokens bounds the
// nesting, and json.Decoder refuses deeper than it can handle.
func checkMembersOnce(dec *json.Decoder) error {
	t, err := dec.Token()
	if err != nil {
		return errors.New("malformed JSON")
	}
	switch t {
	case json.Delim('{'):
		seen := make(map[string]bool)
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				return errors.New("malformed JSON")
			}
			name, _ := t.(string) // json.Decoder only yields strings here
			if seen[name] {
				return errors.New("a member appears twice")
			}
			seen[name] = true
			if err := checkMembersOnce(dec); err != nil {
				return err
			}
		}
	case json.Delim('['):
		for dec.More() {
			if err := checkMembersOnce(dec); err != nil {
				return err
			}
		}
	default:
		return nil
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return errors.New("malformed JSON")
	}
	return nil
}

// string returns the member name, which must be a non-empty string.
func (o jsonObject) string(name string) (string, error) {
	raw, ok := o[name]
	if !ok {
		return "", fmt.Errorf("%s is missing", name)
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf("%s is not a string", name)
	}
	if s == "" {
		return "", fmt.Errorf("%s is empty", name)
	}
	return s, nil
}

// optionalBool returns the boolean member name, false when it is absent.
func (o jsonObject) optionalBool(name string) (bool, error) {
	raw, ok := o[name]
	if !ok {
		return false, nil
	}
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%s is not a boolean", name)
}

// audience returns aud: one string or a non-empty array of strings.
func (o jsonObject) audience() ([]string, error) {
	raw, ok := o["aud"]
	if !ok {
		return nil, errors.New("aud is missing")
	}
	if len(raw) > 0 && raw[0] == '"' {
		s, err := o.string("aud")
		return []string{s}, err
	}
	var items []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &items) != nil || len(items) == 0 {
		return nil, errors.New("aud is not a string or an array of strings")
	}
	aud := make([]string, len(items))
	for i, item := range items {
		if len(item) == 0 || item[0] != '"' || json.Unmarshal(item, &aud[i]) != nil {
			return nil, errors.New("aud is not a string or an array of strings")
		}
	}
	return aud, nil
}

// maxNumericDate is 9999-12-31T23:59:59Z. No token lives that long, and
// the bound keeps the conversion to time.Time exact.
const maxNumericDate = 253402300799

// numericDate returns the member name as a time. It must be a JSON number
// of seconds since the epoch (RFC 7519 §2), not a string holding one. An
// absent optional member is the zero time, which is before any now.
func (o jsonObject) numericDate(name string, required bool) (time.Time, error) {
	raw, ok := o[name]
	if !ok {
		if required {
			return time.Time{}, fmt.Errorf("%s is missing", name)
		}
		return time.Time{}, nil
	}
	// A JSON number starts with a minus or a digit; its grammar is a
	// subset of what ParseFloat reads.
	if len(raw) == 0 || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return time.Time{}, fmt.Errorf("%s is not a number", name)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < 0 || f > maxNumericDate {
		return time.Time{}, fmt.Errorf("%s is not a date", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}
