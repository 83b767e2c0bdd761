package tokens

import (
	"crypto/ed25519"
	"encoding/base64"
	"testing"
)

// TestThumbprintRFC8037 checks kids against RFC 8037 appendix A.3: the
// RFC 7638 thumbprint of the Ed25519 key of appendix A.2.
func TestThumbprintRFC8037(t *testing.T) {
	x, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := publicJWK(ed25519.PublicKey(x), EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	if want := "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; jwk.Kid != want {
		t.Errorf("kid = %q, want %q", jwk.Kid, want)
	}
}
