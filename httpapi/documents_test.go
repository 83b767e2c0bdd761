package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/httpapi"
	"github.com/authworker/authworker/inmem"
	"github.com/authworker/authworker/seal"
	"github.com/authworker/authworker/tokens"
)

const testJWKS = `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"abc","kid":"k1","alg":"EdDSA","use":"sig"}]}`

// strongTag is the ETag the handler must send for body: a hash of its
// exact bytes.
func strongTag(body string) string {
	sum := sha256.Sum256([]byte(body))
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`
}

// do sends method path with headers (name, value, name, value...).
func do(h http.Handler, method, path string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestJWKSConditionalRequests(t *testing.T) {
	h := newHandler(t, httpapi.Config{JWKS: func() []byte { return []byte(testJWKS) }})
	tag := strongTag(testJWKS)
	opaque := strings.Trim(tag, `"`)
	tests := []struct {
		name     string
		method   string
		headers  []string
		wantCode int
	}{
		{"NoCondition", http.MethodGet, nil, http.StatusOK},
		{"Exact", http.MethodGet, []string{"If-None-Match", tag}, http.StatusNotModified},
		{"InList", http.MethodGet, []string{"If-None-Match", `"other", ` + tag + `, "third"`}, http.StatusNotModified},
		{"ListWithoutSpaces", http.MethodGet, []string{"If-None-Match", `"other",` + tag}, http.StatusNotModified},
		{"Weak", http.MethodGet, []string{"If-None-Match", "W/" + tag}, http.StatusNotModified},
		{"WeakInList", http.MethodGet, []string{"If-None-Match", `W/"other", W/` + tag}, http.StatusNotModified},
		{"Star", http.MethodGet, []string{"If-None-Match", "*"}, http.StatusNotModified},
		{"StarWithSpaces", http.MethodGet, []string{"If-None-Match", " * "}, http.StatusNotModified},
		{"SecondFieldLine", http.MethodGet, []string{"If-None-Match", `"other"`, "If-None-Match", tag}, http.StatusNotModified},
		{"Mismatch", http.MethodGet, []string{"If-None-Match", `"other"`}, http.StatusOK},
		{"MismatchList", http.MethodGet, []string{"If-None-Match", `"a", W/"b", "c"`}, http.StatusOK},
		{"Unquoted", http.MethodGet, []string{"If-None-Match", opaque}, http.StatusOK},
		{"CommaInsideATag", http.MethodGet, []string{"If-None-Match", `"x,` + opaque + `"`}, http.StatusOK},
		{"PrefixOfTheTag", http.MethodGet, []string{"If-None-Match", tag[:len(tag)-2] + `"`}, http.StatusOK},
		{"LowercaseWeak", http.MethodGet, []string{"If-None-Match", "w/" + tag}, http.StatusOK},
		{"MalformedBeforeAMatch", http.MethodGet, []string{"If-None-Match", `bad, ` + tag}, http.StatusOK},
		{"MatchBeforeMalformed", http.MethodGet, []string{"If-None-Match", tag + `, bad`}, http.StatusNotModified},
		{"Unterminated", http.MethodGet, []string{"If-None-Match", `"` + opaque}, http.StatusOK},
		{"IfMatchIsNotIfNoneMatch", http.MethodGet, []string{"If-Match", tag}, http.StatusOK},
		{"HEAD", http.MethodHead, nil, http.StatusOK},
		{"HEADExact", http.MethodHead, []string{"If-None-Match", tag}, http.StatusNotModified},
		{"HEADMismatch", http.MethodHead, []string{"If-None-Match", `"other"`}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(h, tt.method, "/.well-known/jwks.json", tt.headers...)
			if rec.Code != tt.wantCode {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantCode)
			}
			// Both answers carry the validator and the freshness, so that a
			// cache refreshes both on a 304.
			if got := rec.Header().Get("ETag"); got != tag {
				t.Errorf("ETag = %s, want %s, the hash of the bytes served", got, tag)
			}
			if got := rec.Header().Get("Cache-Control"); got != "public, max-age=300" {
				t.Errorf("Cache-Control = %q, want public, max-age=300", got)
			}
			switch {
			case rec.Code == http.StatusNotModified:
				if rec.Body.Len() != 0 {
					t.Errorf("304 has a body of %d bytes", rec.Body.Len())
				}
				if ct := rec.Header().Get("Content-Type"); ct != "" {
					t.Errorf("304 has Content-Type %q: it describes no body", ct)
				}
			case tt.method == http.MethodHead:
				if rec.Body.Len() != 0 {
					t.Errorf("HEAD has a body of %d bytes", rec.Body.Len())
				}
				if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(len(testJWKS)) {
					t.Errorf("HEAD Content-Length = %q, want the GET's, %d", cl, len(testJWKS))
				}
			default:
				if rec.Body.String() != testJWKS {
					t.Errorf("body = %s, want the JWKS", rec.Body)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/jwk-set+json" {
					t.Errorf("Content-Type = %q", ct)
				}
			}
		})
	}
}

// TestJWKSETagFollowsTheSource: the ETag is the same while the source
// returns the same slice, and changes with the set; the handler hashes a
// slice once, however many requests it serves.
func TestJWKSETagFollowsTheSource(t *testing.T) {
	sets := [][]byte{[]byte(testJWKS), []byte(`{"keys":[]}`)}
	var current atomic.Pointer[[]byte]
	current.Store(&sets[0])
	h := newHandler(t, httpapi.Config{JWKS: func() []byte { return *current.Load() }})
	first := do(h, http.MethodGet, "/.well-known/jwks.json").Header().Get("ETag")
	if again := do(h, http.MethodGet, "/.well-known/jwks.json").Header().Get("ETag"); again != first {
		t.Errorf("ETag changed from %s to %s for the same set", first, again)
	}
	current.Store(&sets[1])
	rec := do(h, http.MethodGet, "/.well-known/jwks.json", "If-None-Match", first)
	if rec.Code != http.StatusOK || rec.Body.String() != `{"keys":[]}` {
		t.Fatalf("after the set changed: %d %s, want 200 with the new set", rec.Code, rec.Body)
	}
	if second := rec.Header().Get("ETag"); second == first || second != strongTag(`{"keys":[]}`) {
		t.Errorf("ETag after the change = %s (before %s), want the new set's hash", second, first)
	}
	// The same bytes again, in another slice, are the same document.
	other := []byte(testJWKS)
	current.Store(&other)
	if got := do(h, http.MethodGet, "/.well-known/jwks.json").Header().Get("ETag"); got != first {
		t.Errorf("ETag of the first set's bytes in a new slice = %s, want %s", got, first)
	}
}

// TestServingAllocatesNothing: a request for a document does no hashing and
// builds no header value; it assigns what was computed when the set
// changed.
func TestServingAllocatesNothing(t *testing.T) {
	body := []byte(testJWKS)
	h := newHandler(t, httpapi.Config{JWKS: func() []byte { return body }})
	for _, tt := range []struct {
		name string
		req  *http.Request
	}{
		{"JWKS", httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil)},
		{"NotModified", httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil)},
		{"Discovery", httptest.NewRequest(http.MethodGet, "/.well-known/openid-configuration", nil)},
	} {
		if tt.name == "NotModified" {
			tt.req.Header.Set("If-None-Match", `"x", W/`+strongTag(testJWKS))
		}
		w := &discardWriter{header: http.Header{}}
		h.ServeHTTP(w, tt.req) // the first request hashes the set
		if allocs := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, tt.req) }); allocs != 0 {
			t.Errorf("%s: %v allocations per request, want 0", tt.name, allocs)
		}
	}
}

// discardWriter is a ResponseWriter that keeps one header map and
// discards the body, so that only the handler's allocations count.
type discardWriter struct {
	header http.Header
	code   int
	n      int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

var kek = make([]byte, seal.KeySize)

// issuerOfAllAlgorithms is a real tokens.Issuer over an in-memory store
// that holds a signing key of each algorithm, as a store does after the
// algorithm was changed twice; the store is returned to add keys to.
func issuerOfAllAlgorithms(t testing.TB) (*tokens.Issuer, *inmem.SigningKeyRepository) {
	t.Helper()
	store := inmem.NewSigningKeyRepository()
	var last *tokens.Issuer
	for _, alg := range []string{tokens.EdDSA, tokens.ES256, tokens.RS256} {
		i, err := tokens.NewIssuer(context.Background(), store, tokens.Config{
			Issuer: "https://auth.example.com", Audience: []string{"api"}, Algorithm: alg, KeyEncryptionKey: kek,
		})
		if err != nil {
			t.Fatal(err)
		}
		last = i
	}
	return last, store
}

// TestJWKSPublishesPublicKeysOnly: what the server serves, fed by a real
// issuer with keys of every algorithm, holds public members only and each
// kid once, and every key is usable.
func TestJWKSPublishesPublicKeysOnly(t *testing.T) {
	issuer, _ := issuerOfAllAlgorithms(t)
	h := newHandler(t, httpapi.Config{JWKS: issuer.JWKS})
	rec := do(h, http.MethodGet, "/.well-known/jwks.json")
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d", rec.Code)
	}
	var set map[string][]map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	private := []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"}
	public := map[string][]string{ // members each key type may have
		"OKP": {"kty", "crv", "x", "kid", "alg", "use"},
		"EC":  {"kty", "crv", "x", "y", "kid", "alg", "use"},
		"RSA": {"kty", "n", "e", "kid", "alg", "use"},
	}
	kids := map[string]bool{}
	types := map[string]bool{}
	for _, k := range set["keys"] {
		kty, _ := k["kty"].(string)
		kid, _ := k["kid"].(string)
		for _, m := range private {
			if _, ok := k[m]; ok {
				t.Errorf("key %s (%s) has the private member %q", kid, kty, m)
			}
		}
		for m := range k {
			if !contains(strings.Join(public[kty], " ")+" ", m+" ") {
				t.Errorf("key %s (%s) has member %q, not one of a public %s key", kid, kty, m, kty)
			}
		}
		if kid == "" || kids[kid] {
			t.Errorf("kid %q is empty or not unique", kid)
		}
		kids[kid] = true
		types[kty] = true
		if k["use"] != "sig" {
			t.Errorf("key %s: use = %v, want sig", kid, k["use"])
		}
	}
	if len(set["keys"]) != 3 || !types["OKP"] || !types["EC"] || !types["RSA"] {
		t.Errorf("JWKS has key types %v, want one each of OKP, EC and RSA", types)
	}
	if _, err := tokens.ParseJWKS(rec.Body.Bytes()); err != nil {
		t.Errorf("the served set does not parse: %v", err)
	}
}

// TestJWKSETagFollowsTheIssuer: with the real issuer, a reload that finds
// the same keys keeps the ETag (and a client's cached copy); a new key
// changes it.
func TestJWKSETagFollowsTheIssuer(t *testing.T) {
	ctx := context.Background()
	store := inmem.NewSigningKeyRepository()
	cfg := tokens.Config{Issuer: "https://auth.example.com", Audience: []string{"api"}, KeyEncryptionKey: kek, Algorithm: tokens.EdDSA}
	issuer, err := tokens.NewIssuer(ctx, store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, httpapi.Config{JWKS: issuer.JWKS})
	before := do(h, http.MethodGet, "/.well-known/jwks.json")
	tag := before.Header().Get("ETag")
	if err := issuer.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if rec := do(h, http.MethodGet, "/.well-known/jwks.json", "If-None-Match", tag); rec.Code != http.StatusNotModified {
		t.Errorf("after a reload that found the same keys: %d, want 304", rec.Code)
	}
	// Another worker adds an ES256 key; this issuer reloads.
	cfg.Algorithm = tokens.ES256
	if _, err := tokens.NewIssuer(ctx, store, cfg); err != nil {
		t.Fatal(err)
	}
	if err := issuer.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	rec := do(h, http.MethodGet, "/.well-known/jwks.json", "If-None-Match", tag)
	if rec.Code != http.StatusOK || rec.Header().Get("ETag") == tag {
		t.Fatalf("after a key was added: %d, ETag %s; want 200 and a new ETag", rec.Code, rec.Header().Get("ETag"))
	}
	if got, want := rec.Header().Get("ETag"), strongTag(rec.Body.String()); got != want {
		t.Errorf("ETag = %s, want the new set's hash %s", got, want)
	}
	if !strings.Contains(rec.Body.String(), `"kty":"EC"`) {
		t.Errorf("new set %s lacks the ES256 key", rec.Body)
	}
}

// failingStore is a signing-key store that can be made unreachable.
type failingStore struct {
	*inmem.SigningKeyRepository
	down atomic.Bool
}

func (s *failingStore) SigningKeys(ctx context.Context, now time.Time) ([]domain.SigningKey, error) {
	if s.down.Load() {
		return nil, domain.Unavailable("signing key store", context.DeadlineExceeded)
	}
	return s.SigningKeyRepository.SigningKeys(ctx, now)
}

// TestJWKSServedWhileTheStoreIsDown: reloads fail while the store is down;
// the server goes on serving the last keys, with the same ETag.
func TestJWKSServedWhileTheStoreIsDown(t *testing.T) {
	ctx := context.Background()
	store := &failingStore{SigningKeyRepository: inmem.NewSigningKeyRepository()}
	issuer, err := tokens.NewIssuer(ctx, store, tokens.Config{Issuer: "https://auth.example.com", Audience: []string{"api"}, KeyEncryptionKey: kek})
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, httpapi.Config{JWKS: issuer.JWKS})
	before := do(h, http.MethodGet, "/.well-known/jwks.json")
	store.down.Store(true)
	if err := issuer.Reload(ctx); domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Fatalf("Reload with the store down = %v, want unavailable", err)
	}
	after := do(h, http.MethodGet, "/.well-known/jwks.json")
	if after.Code != http.StatusOK || after.Body.String() != before.Body.String() || after.Header().Get("ETag") != before.Header().Get("ETag") {
		t.Errorf("with the store down: %d %s ETag %s; want 200 with the last keys and ETag %s",
			after.Code, after.Body, after.Header().Get("ETag"), before.Header().Get("ETag"))
	}
}

func TestDiscoveryDocuments(t *testing.T) {
	tests := []struct {
		name        string
		issuer      string
		jwksURI     string // setting; "" for the default
		wantJWKSURI string
		at          []string // where the metadata must be served
		notAt       []string // where it must not
		jwksAt      []string // where the JWKS must be served
	}{
		{
			name: "NoPath", issuer: "https://auth.example.com",
			wantJWKSURI: "https://auth.example.com/.well-known/jwks.json",
			at:          []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"},
			notAt:       []string{"/.well-known/openid-configuration/", "/.well-known/oauth-authorization-server/x"},
			jwksAt:      []string{"/.well-known/jwks.json"},
		},
		{
			name: "Path", issuer: "https://example.com/tenant",
			wantJWKSURI: "https://example.com/tenant/.well-known/jwks.json",
			// OpenID Connect appends its suffix; RFC 8414 inserts its
			// prefix before the path.
			at: []string{"/tenant/.well-known/openid-configuration", "/.well-known/oauth-authorization-server/tenant"},
			// The host's own locations belong to an issuer without the
			// path, which this worker is not.
			notAt:  []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration/tenant"},
			jwksAt: []string{"/.well-known/jwks.json", "/tenant/.well-known/jwks.json"},
		},
		{
			name: "PathWithTrailingSlash", issuer: "https://example.com/a/b/",
			wantJWKSURI: "https://example.com/a/b/.well-known/jwks.json",
			// Both specs remove a terminating "/" first.
			at:     []string{"/a/b/.well-known/openid-configuration", "/.well-known/oauth-authorization-server/a/b"},
			notAt:  []string{"/.well-known/openid-configuration"},
			jwksAt: []string{"/.well-known/jwks.json", "/a/b/.well-known/jwks.json"},
		},
		{
			name: "HostWithTrailingSlash", issuer: "https://auth.example.com/",
			wantJWKSURI: "https://auth.example.com/.well-known/jwks.json",
			at:          []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"},
			jwksAt:      []string{"/.well-known/jwks.json"},
		},
		{
			name: "LoopbackHTTP", issuer: "http://localhost:8080",
			wantJWKSURI: "http://localhost:8080/.well-known/jwks.json",
			at:          []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"},
			jwksAt:      []string{"/.well-known/jwks.json"},
		},
		{
			name: "JWKSElsewhere", issuer: "https://example.com/tenant", jwksURI: "https://keys.example.net/tenant/jwks",
			wantJWKSURI: "https://keys.example.net/tenant/jwks",
			at:          []string{"/tenant/.well-known/openid-configuration", "/.well-known/oauth-authorization-server/tenant"},
			// Another host serves it (from this one's /.well-known/jwks.json).
			notAt:  []string{"/tenant/jwks"},
			jwksAt: []string{"/.well-known/jwks.json"},
		},
		{
			name: "JWKSAtAnotherPathOfTheIssuersHost", issuer: "https://example.com", jwksURI: "https://example.com/keys",
			wantJWKSURI: "https://example.com/keys",
			at:          []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"},
			jwksAt:      []string{"/.well-known/jwks.json", "/keys"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandler(t, httpapi.Config{Issuer: tt.issuer, JWKSURI: tt.jwksURI, JWKS: func() []byte { return []byte(testJWKS) }})
			want := `{"issuer":"` + tt.issuer + `","jwks_uri":"` + tt.wantJWKSURI + `","id_token_signing_alg_values_supported":["EdDSA"]}` + "\n"
			for _, path := range tt.at {
				rec := do(h, http.MethodGet, path)
				if rec.Code != http.StatusOK || rec.Body.String() != want {
					t.Errorf("GET %s = %d %s, want 200 %s", path, rec.Code, rec.Body, want)
					continue
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("GET %s: Content-Type = %q, want application/json", path, ct)
				}
				cc := rec.Header().Get("Cache-Control")
				if cc != "public, max-age=300" {
					t.Errorf("GET %s: Cache-Control = %q, want the JWKS's, public, max-age=300", path, cc)
				}
				tag := rec.Header().Get("ETag")
				if tag != strongTag(want) {
					t.Errorf("GET %s: ETag = %s, want the hash of the document", path, tag)
				}
				if again := do(h, http.MethodGet, path, "If-None-Match", tag); again.Code != http.StatusNotModified || again.Body.Len() != 0 ||
					again.Header().Get("ETag") != tag || again.Header().Get("Cache-Control") != cc {
					t.Errorf("GET %s with If-None-Match: %d, %d bytes, ETag %s, Cache-Control %q; want an empty 304 with both",
						path, again.Code, again.Body.Len(), again.Header().Get("ETag"), again.Header().Get("Cache-Control"))
				}
				if head := do(h, http.MethodHead, path); head.Code != http.StatusOK || head.Body.Len() != 0 || head.Header().Get("ETag") != tag {
					t.Errorf("HEAD %s = %d with %d bytes, want 200, no body and the ETag", path, head.Code, head.Body.Len())
				}
			}
			for _, path := range tt.notAt {
				if rec := do(h, http.MethodGet, path); rec.Code == http.StatusOK {
					t.Errorf("GET %s = 200 %s, want no document there", path, rec.Body)
				}
			}
			for _, path := range tt.jwksAt {
				if rec := do(h, http.MethodGet, path); rec.Code != http.StatusOK || rec.Body.String() != testJWKS {
					t.Errorf("GET %s = %d %s, want the JWKS", path, rec.Code, rec.Body)
				}
			}
		})
	}
}

// TestDiscoveryNamesTheSigningAlgorithms: the metadata lists the
// algorithms of the published keys, each once, and follows the key set:
// a verifier that takes its algorithms from discovery (go-oidc) accepts
// every token a published key signed, during an algorithm change too.
func TestDiscoveryNamesTheSigningAlgorithms(t *testing.T) {
	key := func(kid, alg string) string {
		return `{"kty":"EC","crv":"P-256","x":"a","y":"b","kid":"` + kid + `","alg":"` + alg + `","use":"sig"}`
	}
	tests := []struct {
		name string
		jwks string
		want string // the member's JSON
	}{
		{"One", `{"keys":[` + key("a", "ES256") + `]}`, `["ES256"]`},
		{"SeveralSorted", `{"keys":[` + key("a", "RS256") + `,` + key("b", "ES256") + `,` + key("c", "EdDSA") + `,` + key("d", "ES256") + `]}`, `["ES256","EdDSA","RS256"]`},
		{"None", `{"keys":[]}`, `[]`},
	}
	var current atomic.Pointer[[]byte]
	h := newHandler(t, httpapi.Config{Issuer: "https://auth.example.com", JWKS: func() []byte { return *current.Load() }})
	var lastTag string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := []byte(tt.jwks)
			current.Store(&set)
			rec := do(h, http.MethodGet, "/.well-known/openid-configuration", "If-None-Match", lastTag)
			want := `{"issuer":"https://auth.example.com","jwks_uri":"https://auth.example.com/.well-known/jwks.json","id_token_signing_alg_values_supported":` + tt.want + "}\n"
			if rec.Code != http.StatusOK || rec.Body.String() != want {
				t.Fatalf("after the key set changed: %d %s, want 200 %s", rec.Code, rec.Body, want)
			}
			if tag := rec.Header().Get("ETag"); tag != strongTag(want) {
				t.Errorf("ETag = %s, want the hash of the document", tag)
			}
			lastTag = rec.Header().Get("ETag")
			if again := do(h, http.MethodGet, "/.well-known/oauth-authorization-server", "If-None-Match", lastTag); again.Code != http.StatusNotModified {
				t.Errorf("RFC 8414 metadata with the OpenID document's ETag: %d, want 304 (one document)", again.Code)
			}
		})
	}
}

// TestDiscoveryLeadsToTheJWKS follows the documents as a verifier does:
// from the issuer to the metadata, checks its issuer, then fetches its
// jwks_uri, over a real connection.
func TestDiscoveryLeadsToTheJWKS(t *testing.T) {
	var issuer string
	srv := httptest.NewUnstartedServer(nil)
	issuer = "http://" + srv.Listener.Addr().String() + "/tenant"
	srv.Config.Handler = newHandler(t, httpapi.Config{Issuer: issuer, JWKS: func() []byte { return []byte(testJWKS) }})
	srv.Start()
	t.Cleanup(srv.Close)
	for _, wellKnown := range []string{
		issuer + "/.well-known/openid-configuration",               // go-oidc, Spring's first try
		srv.URL + "/.well-known/oauth-authorization-server/tenant", // RFC 8414, Spring's last
	} {
		res, err := http.Get(wellKnown)
		if err != nil {
			t.Fatal(err)
		}
		var meta struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		err = json.NewDecoder(res.Body).Decode(&meta)
		res.Body.Close()
		if err != nil || meta.Issuer != issuer {
			t.Fatalf("%s: issuer %q (%v), want %q exactly", wellKnown, meta.Issuer, err, issuer)
		}
		res, err = http.Get(meta.JWKSURI)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/jwk-set+json" {
			t.Errorf("GET %s = %d %s, want the JWKS", meta.JWKSURI, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
}

func TestConfigValidate(t *testing.T) {
	source := func() []byte { return nil }
	tests := []struct {
		name    string
		cfg     httpapi.Config
		wantErr string // "" for valid
	}{
		{"Valid", httpapi.Config{Issuer: "https://auth.example.com", JWKS: source}, ""},
		{"ValidWithPath", httpapi.Config{Issuer: "https://example.com/tenant", JWKS: source}, ""},
		{"LoopbackIPv4", httpapi.Config{Issuer: "http://127.0.0.1:8080", JWKS: source}, ""},
		{"LoopbackIPv6", httpapi.Config{Issuer: "http://[::1]:8080", JWKS: source}, ""},
		{"JWKSURIWithQuery", httpapi.Config{Issuer: "https://auth.example.com", JWKSURI: "https://cdn.example.com/jwks?v=1", JWKS: source}, ""},
		{"NoIssuer", httpapi.Config{JWKS: source}, "issuer"},
		{"IssuerNotAURL", httpapi.Config{Issuer: "authworker", JWKS: source}, "issuer"},
		{"IssuerHTTP", httpapi.Config{Issuer: "http://auth.example.com", JWKS: source}, "use https"},
		{"IssuerQuery", httpapi.Config{Issuer: "https://auth.example.com?tenant=a", JWKS: source}, "query"},
		{"IssuerEmptyQuery", httpapi.Config{Issuer: "https://auth.example.com?", JWKS: source}, "query"},
		{"IssuerFragment", httpapi.Config{Issuer: "https://auth.example.com#a", JWKSURI: "https://auth.example.com/jwks", JWKS: source}, "fragment"},
		{"IssuerCredentials", httpapi.Config{Issuer: "https://user:pw@auth.example.com", JWKS: source}, "credentials"},
		{"IssuerOtherScheme", httpapi.Config{Issuer: "ftp://auth.example.com", JWKS: source}, "scheme"},
		{"JWKSURIRelative", httpapi.Config{Issuer: "https://auth.example.com", JWKSURI: "/.well-known/jwks.json", JWKS: source}, "jwks_uri"},
		{"JWKSURIHTTP", httpapi.Config{Issuer: "https://auth.example.com", JWKSURI: "http://cdn.example.com/jwks", JWKS: source}, "use https"},
		{"JWKSURINotLoopback", httpapi.Config{Issuer: "https://auth.example.com", JWKSURI: "http://10.0.0.1/jwks", JWKS: source}, "use https"},
		{"JWKSURIOnHealthz", httpapi.Config{Issuer: "https://auth.example.com", JWKSURI: "https://auth.example.com/healthz", JWKS: source}, "not free"},
		{"JWKSURIOnDiscovery", httpapi.Config{Issuer: "https://auth.example.com", JWKSURI: "https://auth.example.com/.well-known/openid-configuration", JWKS: source}, "not free"},
		{"JWKSURIWithoutPath", httpapi.Config{Issuer: "https://auth.example.com", JWKSURI: "https://auth.example.com", JWKS: source}, "not free"},
		{"MaxAgeUnderASecond", httpapi.Config{Issuer: "https://auth.example.com", JWKSMaxAge: time.Millisecond, JWKS: source}, "max-age"},
		{"NoSource", httpapi.Config{Issuer: "https://auth.example.com"}, "JWKS source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" && err != nil {
				t.Errorf("Validate = %v, want nil", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate = %v, want an error about %s", err, tt.wantErr)
			}
			if _, herr := httpapi.NewHandler(tt.cfg); (herr == nil) != (err == nil) {
				t.Errorf("NewHandler error %v, Validate %v: want both or neither", herr, err)
			}
		})
	}
}

func TestCacheControlFollowsMaxAge(t *testing.T) {
	h := newHandler(t, httpapi.Config{JWKSMaxAge: 90*time.Second + 500*time.Millisecond})
	for _, path := range []string{"/.well-known/jwks.json", "/.well-known/openid-configuration"} {
		if cc := do(h, http.MethodGet, path).Header().Get("Cache-Control"); cc != "public, max-age=90" {
			t.Errorf("GET %s: Cache-Control = %q, want public, max-age=90", path, cc)
		}
	}
}

// TestDiscoveryForIssuersWithATrailingSlash: Spring Security appends the
// suffix to the issuer's path without removing a terminating "/", and asks
// for /tenant//.well-known/openid-configuration; the server sends it to
// the location both specs define (the mux's redirect to the clean path),
// and Spring's client follows.
func TestDiscoveryForIssuersWithATrailingSlash(t *testing.T) {
	for _, tt := range []struct{ issuer, asked, want string }{
		{"https://example.com/tenant/", "/tenant//.well-known/openid-configuration", "/tenant/.well-known/openid-configuration"},
		{"https://example.com/", "//.well-known/openid-configuration", "/.well-known/openid-configuration"},
	} {
		h := newHandler(t, httpapi.Config{Issuer: tt.issuer})
		rec := do(h, http.MethodGet, tt.asked)
		if rec.Code/100 != 3 || rec.Header().Get("Location") != tt.want {
			t.Errorf("issuer %s: GET %s = %d to %q, want a redirect to %s", tt.issuer, tt.asked, rec.Code, rec.Header().Get("Location"), tt.want)
		}
		if rec := do(h, http.MethodGet, tt.want); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"issuer":"`+tt.issuer+`"`) {
			t.Errorf("issuer %s: GET %s = %d %s", tt.issuer, tt.want, rec.Code, rec.Body)
		}
	}
}
