package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Algorithms a signing key can use. ES256 is the default: every mainstream
// verifier takes it from configuration alone (Spring Security and Nimbus
// have no EdDSA), and it signs about as fast as EdDSA. EdDSA (Ed25519) is
// as small, fast and free of parameter pitfalls, for clients whose
// verifiers have it; RS256 for verifiers that accept nothing else.
const (
	EdDSA = "EdDSA"
	ES256 = "ES256"
	RS256 = "RS256"
)

// rsaBits is the RSA modulus size for RS256 keys: 3072 bits gives about 128
// bits of security, matching P-256 and Ed25519.
const rsaBits = 3072

// signingMethod returns the JWS implementation of alg.
func signingMethod(alg string) (jwt.SigningMethod, error) {
	switch alg {
	case EdDSA:
		return jwt.SigningMethodEdDSA, nil
	case ES256:
		return jwt.SigningMethodES256, nil
	case RS256:
		return jwt.SigningMethodRS256, nil
	}
	return nil, fmt.Errorf("unsupported signing algorithm %q (want %s, %s or %s)", alg, EdDSA, ES256, RS256)
}

// generateKey returns a new private key for alg.
func generateKey(alg string, random io.Reader) (crypto.Signer, error) {
	switch alg {
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(random)
		return priv, err
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), random)
	case RS256:
		return rsa.GenerateKey(random, rsaBits)
	}
	return nil, fmt.Errorf("unsupported signing algorithm %q", alg)
}

// keyOfAlgorithm reports whether priv is a key that alg signs with, of the
// size generateKey makes or, for RSA, at least 2048 bits as ParseJWKS asks.
func keyOfAlgorithm(priv crypto.Signer, alg string) bool {
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		return alg == EdDSA
	case *ecdsa.PrivateKey:
		return alg == ES256 && p.Curve == elliptic.P256()
	case *rsa.PrivateKey:
		return alg == RS256 && p.N.BitLen() >= 2048
	}
	return false
}

// JWK is a public JSON Web Key (RFC 7517) as published in the JWKS.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

var b64 = base64.RawURLEncoding

// publicJWK describes pub as a JWK whose kid is its RFC 7638 thumbprint, so
// the same key always has the same id.
func publicJWK(pub crypto.PublicKey, alg string) (JWK, error) {
	var k JWK
	var thumbprintInput []byte
	var err error
	switch p := pub.(type) {
	case ed25519.PublicKey:
		k = JWK{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(p)}
		thumbprintInput, err = json.Marshal(struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
		}{k.Crv, k.Kty, k.X})
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return JWK{}, errors.New("unsupported elliptic curve")
		}
		ecdhKey, e := p.ECDH()
		if e != nil {
			return JWK{}, fmt.Errorf("encode EC key: %w", e)
		}
		point := ecdhKey.Bytes() // 0x04 | X | Y, each 32 bytes
		k = JWK{Kty: "EC", Crv: "P-256", X: b64.EncodeToString(point[1:33]), Y: b64.EncodeToString(point[33:])}
		thumbprintInput, err = json.Marshal(struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
			Y   string `json:"y"`
		}{k.Crv, k.Kty, k.X, k.Y})
	case *rsa.PublicKey:
		k = JWK{Kty: "RSA", N: b64.EncodeToString(p.N.Bytes()), E: b64.EncodeToString(big.NewInt(int64(p.E)).Bytes())}
		thumbprintInput, err = json.Marshal(struct {
			E   string `json:"e"`
			Kty string `json:"kty"`
			N   string `json:"n"`
		}{k.E, k.Kty, k.N})
	default:
		return JWK{}, fmt.Errorf("unsupported public key type %T", pub)
	}
	if err != nil {
		return JWK{}, fmt.Errorf("encode JWK: %w", err)
	}
	sum := sha256.Sum256(thumbprintInput)
	k.Kid = b64.EncodeToString(sum[:])
	k.Alg = alg
	k.Use = "sig"
	return k, nil
}

// ParseAlgorithms parses a comma-separated list of signing algorithms, as
// operators write Config.Algorithms.
func ParseAlgorithms(list string) ([]string, error) {
	var algs []string
	for a := range strings.SplitSeq(list, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if _, err := signingMethod(a); err != nil {
			return nil, err
		}
		algs = append(algs, a)
	}
	return algs, nil
}

// ParseClientAlgorithms parses clientId=alg pairs separated by commas, each
// client id once, as operators write Config.ClientAlgorithms.
func ParseClientAlgorithms(pairs string) (map[string]string, error) {
	var algs map[string]string
	for pair := range strings.SplitSeq(pairs, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		client, alg, ok := strings.Cut(pair, "=")
		client, alg = strings.TrimSpace(client), strings.TrimSpace(alg)
		if !ok || client == "" || alg == "" {
			return nil, fmt.Errorf("want clientId=alg pairs separated by commas, got %q", pair)
		}
		if _, dup := algs[client]; dup {
			return nil, fmt.Errorf("client id %q is given two algorithms", client)
		}
		if _, err := signingMethod(alg); err != nil {
			return nil, fmt.Errorf("client id %q: %w", client, err)
		}
		if algs == nil {
			algs = map[string]string{}
		}
		algs[client] = alg
	}
	return algs, nil
}
