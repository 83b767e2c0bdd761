package passwords_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/passwords"
)

// Known-answer vectors from independent implementations. None was produced by
// this package or by the Go libraries it wraps.
const (
	// P-H-C/phc-winner-argon2 (the reference implementation), src/test.c:
	// password "password", salt "somesalt", 32-byte tag, version 19.
	refArgon2idM256P1   = "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	refArgon2idM256P2   = "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc"
	refArgon2idM65536   = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	refArgon2idM262144  = "$argon2id$v=19$m=262144,t=2,p=1$c29tZXNhbHQ$eP4eyR+zqlZX1y5xCFTkw9m5GYx0L5YWwvCFvtlbLow"
	refArgon2iM256P1    = "$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8"
	refArgon2iPasswore  = "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$8iIuixkI73Js3G1uMbezQXD0b8LG4SXGsOwoQkdAQIM" // of "passwore"
	refArgon2iVersion10 = "$argon2i$m=256,t=2,p=1$c29tZXNhbHQ$/U3YPXYsSb3q9XxHvc0MLxur+GP960kN9j7emXX8zwY"

	// Openwall crypt_blowfish's test vectors (wrapper.c).
	owBcryptUStarU = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW" // "U*U"
	owBcrypt72     = "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui" // the 72 bytes below
	// pyca/bcrypt, tests/test_bcrypt.py.
	pycaBcrypt2b = "$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm" // "Kk4DQuMMfZL9o"
	// PHP manual, password_verify example.
	phpBcrypt2y = "$2y$07$BCryptRequires22Chrcte/VlQH0piJtjXl.0t1XkA8pw9dMXTpOq" // "rasmuslerdorf"

	// passlib, tests/test_handlers_pbkdf2.py (known_correct_hashes).
	passlibSHA256      = "$pbkdf2-sha256$1212$4vjV83LKPjQzk31VI4E0Vw$hsYF68OiOUPdDZ1Fg.fJPeq1h/gXXY7acBp9/6c.tmQ" // "password"
	passlibSHA256Greek = "$pbkdf2-sha256$1212$3SABFJGDtyhrQMVt1uABPw$WyaUoqCLgvz97s523nF4iuOqZNbp5Nt8do/cuaa7AiI" // "Ιωαννης"
	passlibSHA512      = "$pbkdf2-sha512$1212$RHY0Fr3IDMSVO/RSZyb5ow$eNLfBK.eVozomMr.1gYa17k9B7KIK25NOEshvhrSX.esqY3s.FvWZViXz4KoLlQI.BzY/YTNJOiKc5gBYFYGww"
	passlibSHA1        = "$pbkdf2$1212$OB.dtnSEXZK8U5cgxU/GYQ$y5LKPOplRmok7CZp/aqVDVg8zGI"
	// passlib documentation, passlib.hash.pbkdf2_digest, with a 10-byte salt.
	passlibDocsSHA256 = "$pbkdf2-sha256$8000$XAuBMIYQQogxRg$tRRlz8hYn63B9LYiCd6PRo6FMiunY9ozmMMI3srxeRE" // "password"
)

const (
	openwall72  = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	greekIoanns = "\u0399\u03c9\u03b1\u03bd\u03bd\u03b7\u03c2"
)

// cheap returns a configuration with costs far below OWASP's, for unit tests.
func cheap() passwords.HasherConfig {
	return passwords.HasherConfig{MemoryKiB: 64, Time: 1, Parallelism: 1, AllowWeak: true}
}

func newHasher(tb testing.TB, cfg passwords.HasherConfig) *passwords.Hasher {
	tb.Helper()
	h, err := passwords.NewHasher(cfg)
	if err != nil {
		tb.Fatalf("NewHasher: %v", err)
	}
	return h
}

func mustHash(tb testing.TB, h *passwords.Hasher, password string) string {
	tb.Helper()
	encoded, err := h.Hash(password)
	if err != nil {
		tb.Fatalf("Hash: %v", err)
	}
	return encoded
}

// repeatReader fills every read with its pattern from the start, so each
// salt read gets the same bytes whatever was read before.
type repeatReader string

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r[i%len(r)]
	}
	return len(p), nil
}

// allocated returns the bytes allocated on the heap while f runs.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestHasherVerify(t *testing.T) {
	h := newHasher(t, cheap())
	stronger := cheap()
	stronger.MemoryKiB = 128
	hStronger := newHasher(t, stronger)

	const pw = "plum kayak violet thunder"
	tests := []struct {
		name       string
		hasher     *passwords.Hasher
		encoded    string
		password   string
		wantMatch  bool
		wantRehash bool
	}{
		{"OK", h, mustHash(t, h, pw), pw, true, false},
		{"WrongPassword", h, mustHash(t, h, pw), pw + "!", false, false},
		{"EmptyPassword", h, mustHash(t, h, ""), "", true, false},
		{"NFKCEquivalentFullWidth", h, mustHash(t, h, "ｐａｓｓｗｏｒｄ　ｏｎｅ"), "password one", true, false},
		{"NFKCEquivalentHalfWidthHashed", h, mustHash(t, h, "password one"), "ｐａｓｓｗｏｒｄ　ｏｎｅ", true, false},
		{"NFKCEquivalentDecomposed", h, mustHash(t, h, "caf\u00e9 cr\u00e8me"), "cafe\u0301 cre\u0300me", true, false},
		{"NFKCEquivalentLigature", h, mustHash(t, h, "\ufb03ce"), "ffice", true, false},
		{"CaseMatters", h, mustHash(t, h, pw), strings.ToUpper(pw), false, false},
		{"RehashWhenParamsChange", hStronger, mustHash(t, h, pw), pw, true, true},
		{"NoRehashOnMismatch", hStronger, mustHash(t, h, pw), "other", false, false},
		{"ReferenceArgon2idRehash", h, refArgon2idM256P1, "password", true, true},
		{"ReferenceArgon2idTwoLanes", h, refArgon2idM256P2, "password", true, true},
		{"ReferenceArgon2idWrongPassword", h, refArgon2idM256P1, "passwore", false, false},
		{"LegacyArgon2i", h, refArgon2iM256P1, "password", true, true},
		{"LegacyArgon2iWrongPassword", h, refArgon2iPasswore, "password", false, false},
		{"LegacyBcrypt2a", h, owBcryptUStarU, "U*U", true, true},
		{"LegacyBcrypt2b", h, pycaBcrypt2b, "Kk4DQuMMfZL9o", true, true},
		{"LegacyBcrypt2y", h, phpBcrypt2y, "rasmuslerdorf", true, true},
		{"LegacyBcryptWrongPassword", h, owBcryptUStarU, "U*U*", false, false},
		{"LegacyBcrypt72Bytes", h, owBcrypt72, openwall72, true, true},
		{"LegacyBcryptBeyond72BytesIgnored", h, owBcrypt72, openwall72 + "chars after 72 are ignored", true, true},
		{"LegacyBcrypt71BytesWrong", h, owBcrypt72, openwall72[:71], false, false},
		{"LegacyPBKDF2SHA256", h, passlibSHA256, "password", true, true},
		{"LegacyPBKDF2SHA256Unicode", h, passlibSHA256Greek, greekIoanns, true, true},
		{"LegacyPBKDF2SHA256ShortSalt", h, passlibDocsSHA256, "password", true, true},
		{"LegacyPBKDF2SHA512", h, passlibSHA512, "password", true, true},
		{"LegacyPBKDF2SHA1", h, passlibSHA1, "password", true, true},
		{"LegacyPBKDF2WrongPassword", h, passlibSHA256, "Password", false, false},
		{"LegacyPBKDF2NFKCFallback", h, passlibSHA256, "ｐａｓｓｗｏｒｄ", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			match, rehash, err := tt.hasher.Verify(tt.password, tt.encoded)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if match != tt.wantMatch || rehash != tt.wantRehash {
				t.Errorf("got match=%v rehash=%v, want match=%v rehash=%v", match, rehash, tt.wantMatch, tt.wantRehash)
			}
		})
	}
}

func TestHashInteropReference(t *testing.T) {
	// Hashing "password" with the reference salt and parameters must write
	// exactly the reference implementation's string.
	for _, tt := range []struct {
		name    string
		threads uint8
		want    string
	}{
		{"OneLane", 1, refArgon2idM256P1},
		{"TwoLanes", 2, refArgon2idM256P2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHasher(t, passwords.HasherConfig{
				MemoryKiB: 256, Time: 2, Parallelism: tt.threads, SaltLen: 8, KeyLen: 32,
				AllowWeak: true, Rand: repeatReader("somesalt"),
			})
			if got := mustHash(t, h, "password"); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			match, rehash, err := h.Verify("password", tt.want)
			if err != nil || !match || rehash {
				t.Errorf("Verify: got match=%v rehash=%v err=%v, want match and no rehash", match, rehash, err)
			}
		})
	}
}

func TestVerifyReference64MiB(t *testing.T) {
	// The reference's headline vector, at 64 MiB.
	h := newHasher(t, cheap())
	match, rehash, err := h.Verify("password", refArgon2idM65536)
	if err != nil || !match || !rehash {
		t.Errorf("got match=%v rehash=%v err=%v, want match and rehash", match, rehash, err)
	}
}

func TestHashFormat(t *testing.T) {
	h := newHasher(t, cheap())
	a, b := mustHash(t, h, "same password"), mustHash(t, h, "same password")
	if a == b {
		t.Error("two hashes of one password are equal: salt not random")
	}
	const prefix = "$argon2id$v=19$m=64,t=1,p=1$"
	if !strings.HasPrefix(a, prefix) {
		t.Errorf("got %s, want prefix %s", a, prefix)
	}
	// 16-byte salt and 32-byte key in unpadded standard base64.
	f := strings.Split(a, "$")
	if len(f) != 6 || len(f[4]) != 22 || len(f[5]) != 43 {
		t.Errorf("got fields %q, want a 22-character salt and a 43-character key", f)
	}
}

func TestVerifyUnreadable(t *testing.T) {
	h := newHasher(t, cheap())
	valid := mustHash(t, h, "password")
	tests := []struct {
		name    string
		encoded string
		want    error
	}{
		{"CorruptHashEmpty", "", passwords.ErrMalformedHash},
		{"CorruptHashPlain", "plaintext-secret", passwords.ErrMalformedHash},
		{"CorruptHashTruncated", valid[:len(valid)-10], passwords.ErrMalformedHash},
		{"CorruptHashTrailingDollar", valid + "$", passwords.ErrMalformedHash},
		{"CorruptHashPadding", strings.Replace(refArgon2idM256P1, "c29tZXNhbHQ$", "c29tZXNhbHQ=$", 1), passwords.ErrMalformedHash},
		{"CorruptHashNewlineInBase64", strings.Replace(refArgon2idM256P1, "c29tZXNhbHQ", "c29tZX\nNhbHQ", 1), passwords.ErrMalformedHash},
		{"CorruptHashNonCanonicalBits", strings.Replace(refArgon2idM256P1, "c29tZXNhbHQ", "c29tZXNhbHR", 1), passwords.ErrMalformedHash},
		{"CorruptHashLeadingZero", strings.Replace(refArgon2idM256P1, "m=256", "m=0256", 1), passwords.ErrMalformedHash},
		{"CorruptHashParamOrder", strings.Replace(refArgon2idM256P1, "m=256,t=2", "t=2,m=256", 1), passwords.ErrMalformedHash},
		{"CorruptHashExtraParam", strings.Replace(refArgon2idM256P1, "p=1", "p=1,keyid=AAAA", 1), passwords.ErrMalformedHash},
		{"CorruptHashNegative", strings.Replace(refArgon2idM256P1, "t=2", "t=-2", 1), passwords.ErrMalformedHash},
		{"CorruptHashShortSalt", strings.Replace(refArgon2idM256P1, "c29tZXNhbHQ", "c29tZQ", 1), passwords.ErrMalformedHash},
		{"CorruptHashShortKey", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIP", passwords.ErrMalformedHash},
		{"CorruptHashMemoryBelow8p", "$argon2id$v=19$m=8,t=2,p=2$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", passwords.ErrMalformedHash},
		{"CorruptBcryptLength", owBcryptUStarU[:59], passwords.ErrMalformedHash},
		{"CorruptBcryptAlphabet", strings.Replace(owBcryptUStarU, "E5YP", "E5+P", 1), passwords.ErrMalformedHash},
		{"CorruptPBKDF2ZeroPaddedRounds", "$pbkdf2$01212$THDqatpidANpadlLeTeOEg$HV3oi1k5C5LQCgG1BMOL.BX4YZc", passwords.ErrMalformedHash},
		{"CorruptPBKDF2EmptyRounds", "$pbkdf2$$THDqatpidANpadlLeTeOEg$HV3oi1k5C5LQCgG1BMOL.BX4YZc", passwords.ErrMalformedHash},
		{"CorruptPBKDF2TooManyFields", "$pbkdf2$1212$THDqatpidANpadlLeTeOEg$HV3oi1k5C5LQCgG1BMOL.BX4YZc$", passwords.ErrMalformedHash},
		{"CorruptPBKDF2Plus", strings.Replace(passlibSHA256, "Fg.fJ", "Fg+fJ", 1), passwords.ErrMalformedHash},
		{"CorruptPBKDF2ChecksumSize", strings.Replace(passlibSHA256, "$pbkdf2-sha256$", "$pbkdf2-sha512$", 1), passwords.ErrMalformedHash},
		{"UnsupportedArgon2d", strings.Replace(refArgon2idM256P1, "argon2id", "argon2d", 1), passwords.ErrUnsupportedHash},
		{"UnsupportedArgon2Version16", strings.Replace(refArgon2idM256P1, "v=19", "v=16", 1), passwords.ErrUnsupportedHash},
		{"UnsupportedArgon2Version10Form", refArgon2iVersion10, passwords.ErrUnsupportedHash},
		{"UnsupportedBcrypt2x", strings.Replace(owBcryptUStarU, "$2a$", "$2x$", 1), passwords.ErrUnsupportedHash},
		{"UnsupportedMD5Crypt", "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/", passwords.ErrUnsupportedHash},
		{"UnsupportedScrypt", "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E", passwords.ErrUnsupportedHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const pw = "hunter2-Secret"
			match, rehash, err := h.Verify(pw, tt.encoded)
			if match || rehash {
				t.Errorf("got match=%v rehash=%v, want neither", match, rehash)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			if code := domain.ErrorCode(err); code != domain.CodeInternal {
				t.Errorf("got code %q, want %q", code, domain.CodeInternal)
			}
			assertNoSecrets(t, err, pw, tt.encoded)
		})
	}
}

func TestVerifyHostileParams(t *testing.T) {
	h := newHasher(t, cheap())
	const salt, key = "c29tZXNhbHQ", "nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	argon := func(params string) string { return "$argon2id$v=19$" + params + "$" + salt + "$" + key }
	tests := []struct{ name, encoded string }{
		{"HostileParamsMemory4GiB", argon("m=4194304,t=1,p=1")},
		{"HostileParamsMemoryMaxUint32", argon("m=4294967295,t=1,p=1")},
		{"HostileParamsMemoryOverflow", argon("m=99999999999999999999,t=1,p=1")},
		{"HostileParamsTime", argon("m=64,t=4294967295,p=1")},
		{"HostileParamsParallelism", argon("m=65536,t=1,p=255")},
		{"HostileParamsWork", argon("m=262144,t=16,p=1")},
		{"HostileParamsHugeSalt", "$argon2id$v=19$m=64,t=1,p=1$" + strings.Repeat("A", 150) + "$" + key},
		{"HostileParamsHugeString", argon("m=64,t=1,p=1") + strings.Repeat("A", 1<<20)},
		{"HostileParamsBcryptCost31", strings.Replace(owBcryptUStarU, "$05$", "$31$", 1)},
		{"HostileParamsBcryptCost17", strings.Replace(owBcryptUStarU, "$05$", "$17$", 1)},
		{"HostileParamsPBKDF2Rounds", strings.Replace(passlibSHA256, "$1212$", "$4294967295$", 1)},
		{"HostileParamsPBKDF2RoundsAboveCap", strings.Replace(passlibSHA256, "$1212$", "$5000001$", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			computed := h.Computed()
			bytes := allocated(func() { _, _, err = h.Verify("password", tt.encoded) })
			if !errors.Is(err, passwords.ErrMalformedHash) {
				t.Fatalf("got error %v, want %v", err, passwords.ErrMalformedHash)
			}
			if n := h.Computed() - computed; n != 1 {
				t.Errorf("%d hashes computed to refuse the hash, want the dummy verification alone", n)
			}
			if bytes > 1<<20 {
				t.Errorf("allocated %d bytes to refuse the hash, want under 1 MiB", bytes)
			}
		})
	}
}

func TestOverCap(t *testing.T) {
	cfg := cheap()
	cfg.MaxBytes = 300
	h := newHasher(t, cfg)
	long := strings.Repeat("x", 301)

	t.Run("HashRefuses", func(t *testing.T) {
		encoded, err := h.Hash(long)
		if encoded != "" || domain.ErrorCode(err) != domain.CodeInvalid {
			t.Fatalf("got %q, %v; want a CodeInvalid error", encoded, err)
		}
		var de *domain.Error
		if !errors.As(err, &de) || de.Field != "password" {
			t.Errorf("got %#v, want field %q", err, "password")
		}
		assertNoSecrets(t, err, long)
	})
	t.Run("HashAtCap", func(t *testing.T) {
		if _, err := h.Hash(long[:300]); err != nil {
			t.Errorf("Hash of exactly MaxBytes: %v", err)
		}
	})
	t.Run("VerifyFalseWithoutHashing", func(t *testing.T) {
		// Verifying against a 256 MiB hash would take 256 MiB; the
		// password is refused first.
		before := h.Computed()
		match, rehash, err := h.Verify(long, refArgon2idM262144)
		if match || rehash || err != nil {
			t.Errorf("got match=%v rehash=%v err=%v, want false, false, nil", match, rehash, err)
		}
		if n := h.Computed() - before; n != 0 {
			t.Errorf("%d hashes computed, want none: the password was hashed", n)
		}
	})
	t.Run("VerifyDummyWithoutHashing", func(t *testing.T) {
		big := newHasher(t, passwords.HasherConfig{MemoryKiB: 65536, Time: 1, MaxBytes: 300, AllowWeak: true})
		before := big.Computed()
		big.VerifyDummy(long)
		if n := big.Computed() - before; n != 0 {
			t.Errorf("%d hashes computed for an over-long password, want none", n)
		}
		big.VerifyDummy("short")
		if n := big.Computed() - before; n != 1 {
			t.Errorf("%d hashes computed for a dummy verification, want the one of a real verification", n)
		}
	})
}

func TestVerifyDummy(t *testing.T) {
	h := newHasher(t, cheap())
	// It must neither panic nor match anything, including the empty password.
	for _, pw := range []string{"", "password", strings.Repeat("a", 1024)} {
		h.VerifyDummy(pw)
	}
}

func TestHasherConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     passwords.HasherConfig
		wantErr bool
	}{
		{"OKDefaults", passwords.HasherConfig{}, false},
		{"OKCheapWithAllowWeak", cheap(), false},
		{"BelowOWASPMemory", passwords.HasherConfig{MemoryKiB: 19455}, true},
		{"BelowOWASPTime", passwords.HasherConfig{Time: 1}, true},
		{"BelowOWASPSalt", passwords.HasherConfig{SaltLen: 8}, true},
		{"MemoryAboveCap", passwords.HasherConfig{MemoryKiB: 256*1024 + 1}, true},
		{"MemoryBelow8p", passwords.HasherConfig{MemoryKiB: 15, Parallelism: 2, AllowWeak: true}, true},
		{"TimeAboveCap", passwords.HasherConfig{Time: 17}, true},
		{"KeyTooShort", passwords.HasherConfig{KeyLen: 8}, true},
		{"SaltTooShortEvenIfWeak", passwords.HasherConfig{SaltLen: 4, AllowWeak: true}, true},
		{"MaxBytesBelow256", passwords.HasherConfig{MaxBytes: 100}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := passwords.NewHasher(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Errorf("got error %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}

func TestHashRandFailure(t *testing.T) {
	cfg := cheap()
	cfg.Rand = &failAfter{n: 16 + 32} // enough for the dummy hash only
	h := newHasher(t, cfg)
	_, err := h.Hash("password")
	if domain.ErrorCode(err) != domain.CodeInternal {
		t.Errorf("got %v, want a CodeInternal error", err)
	}
}

// failAfter yields n zero bytes and then fails.
type failAfter struct{ n int }

func (r *failAfter) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("entropy exhausted")
	}
	n := min(len(p), r.n)
	clear(p[:n])
	r.n -= n
	return n, nil
}

// assertNoSecrets fails when err's text or caller-safe message quotes any of
// secrets.
func assertNoSecrets(tb testing.TB, err error, secrets ...string) {
	tb.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, text := range []string{err.Error(), domain.ErrorMessage(err)} {
			if strings.Contains(text, s) {
				tb.Errorf("error %q quotes a secret", text)
			}
		}
	}
}

// TestUnreadableHashCostsAVerification: a stored hash that cannot be read
// still costs the work of a verification at the configured parameters (a
// key derived, not the clock, is the measure), so that it answers as late
// as a wrong password does.
func TestUnreadableHashCostsAVerification(t *testing.T) {
	h := newHasher(t, passwords.HasherConfig{MemoryKiB: 4096, Time: 1, AllowWeak: true})
	for _, encoded := range []string{"", "plaintext-secret", "$argon2id$v=19$m=oops"} {
		before := h.Computed()
		_, _, _ = h.Verify("some password", encoded)
		if got := h.Computed() - before; got != 1 {
			t.Errorf("Verify against %q derived %d keys, want the 1 of a real verification", encoded, got)
		}
	}
}

func TestComputedCountsEveryDerivation(t *testing.T) {
	h := newHasher(t, cheap())
	long := strings.Repeat("x", passwords.DefaultMaxBytes+1)
	encoded := mustHash(t, h, "correct password")
	tests := []struct {
		name string
		do   func()
		want uint64
	}{
		{"Hash", func() { _, _ = h.Hash("another password") }, 1},
		{"VerifyMatch", func() { _, _, _ = h.Verify("correct password", encoded) }, 1},
		{"VerifyMismatch", func() { _, _, _ = h.Verify("wrong password", encoded) }, 1},
		{"VerifyDummy", func() { h.VerifyDummy("any password") }, 1},
		{"UnreadableHashCostsADummy", func() { _, _, _ = h.Verify("any password", "not a hash") }, 1},
		{"HashOverCap", func() { _, _ = h.Hash(long) }, 0},
		{"VerifyOverCap", func() { _, _, _ = h.Verify(long, encoded) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Computed()
			tt.do()
			if got := h.Computed() - before; got != tt.want {
				t.Errorf("computed %d hashes, want %d", got, tt.want)
			}
		})
	}
}
