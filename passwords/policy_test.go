package passwords_test

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/passwords"
)

func newPolicy(tb testing.TB, cfg passwords.PolicyConfig) *passwords.Policy {
	tb.Helper()
	p, err := passwords.NewPolicy(cfg)
	if err != nil {
		tb.Fatalf("NewPolicy: %v", err)
	}
	return p
}

// Messages of the rules that tests meet most often.
const (
	repeatMsg = "password must not be one character or a sequence repeated"
	emailMsg  = "password must not contain your e-mail address or the part before the @"
	phraseMsg = "password is too common: it is a well-known phrase"
	guessMsg  = "password is too easy to guess"
)

func TestPolicyCheck(t *testing.T) {
	def := newPolicy(t, passwords.PolicyConfig{})
	short := newPolicy(t, passwords.PolicyConfig{MinLength: 8})

	tests := []struct {
		name     string
		policy   *passwords.Policy
		password string
		wantMsg  string // "" when the password is accepted
	}{
		{"OK", def, "plum kayak violet thunder", ""},
		{"OKExactlyMin", def, "tr0ub4dor&3xyzw", ""},
		{"OKSpacesAndSymbols", def, "  ~!@#$%^&*()_+ `  ", ""},
		{"OKUnicode", def, "пароль-из-кириллицы", ""},
		{"OKEmoji", def, "🦊🐻🐼🐨🐯🦁🐮🐷🐸🐵🐔🐧🐦🐤🐣", ""},
		{"OKNoCompositionRules", def, "all lower case words", ""},
		{"OKExactlyMax", def, "plum kayak violet thunder, " + strings.Repeat("abcde", 20) + "z", ""}, // 128 code points
		{"TooShort", def, "fourteen chars", "password must be at least 15 characters long"},
		{"TooShortCountsCodePoints", def, "ééééééééééééé", "password must be at least 15 characters long"}, // 14 code points, 28 bytes
		{"TooShortAfterNFKCComposition", def, strings.Repeat("e\u0301", 8), "password must be at least 15 characters long"},
		{"OKLigatureExpandsUnderNFKC", def, "\ufb01\ufb02\ufb03\ufb04\ufb00xyz", ""}, // 8 code points, 15 after NFKC
		{"TooLong", def, strings.Repeat("abcde", 25) + "wxyz", "password must be at most 128 characters long"},
		{"TooLongBytes", def, strings.Repeat("abcde", 205), "password must be at most 1024 bytes long"},
		{"InvalidUTF8", def, "valid prefix then \xff\xfe bytes", "password must be valid UTF-8 text"},
		{"ControlCharacterNUL", def, "correct horse\x00battery", "password must not contain control characters"},
		{"ControlCharacterNewline", def, "correct horse\nbattery", "password must not contain control characters"},
		{"ControlCharacterC1", def, "correct horse\u0085battery", "password must not contain control characters"},
		{"RepeatedCharacter", def, strings.Repeat("a", 20), repeatMsg},
		{"RepeatedSequence", def, strings.Repeat("abc1", 5), repeatMsg},
		{"RepeatedWord", def, "passwordpassword", repeatMsg},
		{"RepeatedWordFullWidth", def, "ｐａｓｓｗｏｒｄｐａｓｓｗｏｒｄ", repeatMsg},
		{"RepeatedWordNonLatin", def, "парольпарольпароль", repeatMsg},
		{"RepeatedWordCutShort", def, "letmeinletmeinlet", repeatMsg},
		{"Common", def, "mailcreated5240", "password is too common: it appears in lists of leaked passwords"},
		{"CommonCaseInsensitive", def, "MailCreated5240", "password is too common: it appears in lists of leaked passwords"},
		{"CommonFullWidth", def, "ｍａｉｌｃｒｅａｔｅｄ５２４０", "password is too common: it appears in lists of leaked passwords"},
		{"KnownPhrase", def, "correcthorsebatterystaple", phraseMsg},
		{"KnownPhraseSpaced", def, "correct horse battery staple", phraseMsg},
		{"KnownPhrasePunctuated", def, "Correct-Horse-Battery-Staple!", phraseMsg},
		{"KnownPhraseFullWidth", def, "ｉｌｏｖｅｙｏｕｆｏｒｅｖｅｒ", phraseMsg},
		{"KnownPhraseFromLeaks", def, "Catch me if you can", phraseMsg},
		{"OKKnownPhraseAndMore", def, "correct horse battery staple 8351 2209", ""},
		{"CommonWithLowerMinimum", short, "PASSWORD", "password is too common: it appears in lists of leaked passwords"},
		{"CommonQwerty", short, "qwertyuiop", "password is too common: it appears in lists of leaked passwords"},
		{"OKNotCommonWithLowerMinimum", short, "zebra-quilt", ""},
		{"TooShortWithLowerMinimum", short, "zq7", "password must be at least 8 characters long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.password, domain.PasswordContext{})
			assertPolicyOutcome(t, err, tt.password, tt.wantMsg)
		})
	}
}

func TestPolicyConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     passwords.PolicyConfig
		wantErr bool
	}{
		{"OKDefaults", passwords.PolicyConfig{}, false},
		{"OKMinEight", passwords.PolicyConfig{MinLength: 8}, false},
		{"OKMaxSixtyFour", passwords.PolicyConfig{MinLength: 8, MaxLength: 64}, false},
		{"MinBelowEight", passwords.PolicyConfig{MinLength: 6}, true},
		{"MaxBelowSixtyFour", passwords.PolicyConfig{MaxLength: 63}, true},
		{"MinAboveMax", passwords.PolicyConfig{MinLength: 100, MaxLength: 64}, true},
		{"MaxBytesTooSmallForMax", passwords.PolicyConfig{MaxLength: 300}, true},
		{"OKServiceName", passwords.PolicyConfig{ServiceName: "Zorvexia"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := passwords.NewPolicy(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Errorf("got error %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}

// TestPolicyCheckContext: a password may not be built from the account's own
// e-mail address.
func TestPolicyCheckContext(t *testing.T) {
	p := newPolicy(t, passwords.PolicyConfig{})
	tests := []struct {
		name     string
		email    domain.Email
		password string
		wantMsg  string // "" when the password is accepted
	}{
		{"EmailAddress", "ada.lovelace.example@example.com", "ada.lovelace.example@example.com", emailMsg},
		{"EmailAddressInside", "ada.lovelace.example@example.com", "my login: ada.lovelace.example@example.com!", emailMsg},
		{"EmailAddressOtherCase", "ada.lovelace.example@example.com", "ADA.Lovelace.Example@Example.COM", emailMsg},
		{"EmailAddressFullWidth", "ada.lovelace.example@example.com", "ａｄａ．ｌｏｖｅｌａｃｅ．ｅｘａｍｐｌｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", emailMsg},
		{"LocalPart", "ada.lovelace.example@example.com", "ada.lovelace.example", emailMsg},
		{"LocalPartInside", "ada.lovelace.example@example.com", "Ada.Lovelace.Example rides again", emailMsg},
		{"OKShortLocalPartInsideAWord", "ada@example.com", "canada geese fly south in winter", ""},
		{"OKOtherAccountsAddress", "bob@example.com", "ada.lovelace.example@example.com", ""},
		{"OKNoAddress", "", "ada.lovelace.example@example.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Check(tt.password, domain.PasswordContext{Email: tt.email})
			assertPolicyOutcome(t, err, tt.password, tt.wantMsg)
		})
	}
}

// assertPolicyOutcome checks that err accepts password when wantMsg is "",
// and otherwise is a CodeInvalid error for field "password" with message
// wantMsg that does not quote the password.
func assertPolicyOutcome(tb testing.TB, err error, password, wantMsg string) {
	tb.Helper()
	if wantMsg == "" {
		if err != nil {
			tb.Fatalf("got %v, want nil", err)
		}
		return
	}
	var de *domain.Error
	if !errors.As(err, &de) {
		tb.Fatalf("got %v, want a *domain.Error", err)
	}
	if de.Code != domain.CodeInvalid || de.Field != "password" || de.Message != wantMsg {
		tb.Errorf("got %s/%s %q, want %s/password %q", de.Code, de.Field, de.Message, domain.CodeInvalid, wantMsg)
	}
	assertNoSecrets(tb, err, password)
}

// TestPolicyRefusesEveryPassphrase: every entry of the embedded list is at
// least the default minimum length and is refused, in lower and upper case.
func TestPolicyRefusesEveryPassphrase(t *testing.T) {
	p := newPolicy(t, passwords.PolicyConfig{})
	data, err := os.ReadFile("passphrases.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		n++
		if len([]rune(line)) < passwords.DefaultMinLength {
			t.Errorf("entry %d is shorter than the default minimum: the length rule already refuses it", n)
		}
		for _, pw := range []string{line, strings.ToUpper(line)} {
			if err := p.Check(pw, domain.PasswordContext{}); domain.ErrorCode(err) != domain.CodeInvalid {
				t.Errorf("entry %d: got %v, want a CodeInvalid error", n, err)
			}
		}
	}
	if n < 100 {
		t.Errorf("got %d entries, want the few hundred of the list", n)
	}
}

// TestPolicyCheckGuessable: passwords that a guesser finds early (digits,
// keyboard walks, common words with digits, the service's name, the
// account's own words) are refused even when they are long enough and on no
// list; random and passphrase-like ones of any length are accepted.
func TestPolicyCheckGuessable(t *testing.T) {
	def := newPolicy(t, passwords.PolicyConfig{})
	short := newPolicy(t, passwords.PolicyConfig{MinLength: 8})
	zorvexia := newPolicy(t, passwords.PolicyConfig{ServiceName: "Zorvexia"})
	const ada = "ada.lovelace.example@example.com"
	tests := []struct {
		name     string
		policy   *passwords.Policy
		email    domain.Email
		password string
		wantMsg  string // "" when the password is accepted
	}{
		{"Digits", def, ada, "123456789012345", guessMsg},
		{"KeyboardWalk", def, ada, "poiuytrewqlkjhgf", guessMsg},
		{"KeyboardWalkFullWidth", def, ada, "ａｓｄｆｇｈｊｋｌｑｗｅｒｔｙ", guessMsg},
		{"Alphabet", def, ada, "ponmlkjihgfedcba", guessMsg},
		{"CommonWordAndDigits", def, ada, "Password123456!", guessMsg},
		{"CommonWordsAndYear", def, ada, "iloveyouforever2024", guessMsg},
		{"LeetWordAndDigits", def, ada, "P@ssw0rd12345678", guessMsg},
		{"DefaultServiceName", def, ada, "authworker2024!!", guessMsg},
		{"ConfiguredServiceName", zorvexia, ada, "zorvexia12345678", guessMsg},
		{"OKOtherServicesName", def, ada, "zorvexia12345678", ""},
		{"EmailWordsReordered", def, "zorvexia.quilbert@example.com", "quilbertzorvexia1", guessMsg},
		{"OKEmailWordsOfAnotherAccount", def, ada, "quilbertzorvexia1", ""},
		{"WeakStartOfLongPassword", def, ada, "passwordpassword" + "x7$Kq!9@Lm#2vB8&", guessMsg},
		{"TooEasyWithLowerMinimum", short, ada, "Password2024!", guessMsg},
		{"OKWithLowerMinimum", short, ada, "zebra-quilt", ""},
		{"OKPasswordManager", def, ada, "g7#Vq2!mZ9xL@4pR", ""},
		{"OKPasswordManager64", def, ada, "t8Jq#2vN!x5Lm@9Rz&4Wc$7Hb%1Fd^6Kp*3Gs(0Ye)8Ua_2Io+5Ql=9Tn~4Ev?7W", ""},
		{"OKLongPassphrase", def, ada, "I like to eat pancakes with maple syrup every sunday morning", ""},
		{"OKThreeRandomWords", def, ada, "sporty ditto blimp", ""},
		{"OKCyrillic", def, ada, "пароль-из-кириллицы", ""},
		{"OKGreek", def, ada, "καλημέρα κόσμε φίλε", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.password, domain.PasswordContext{Email: tt.email})
			assertPolicyOutcome(t, err, tt.password, tt.wantMsg)
		})
	}
}

// TestPolicyCheckConcurrent: one Policy serves many goroutines at once.
func TestPolicyCheckConcurrent(t *testing.T) {
	p := newPolicy(t, passwords.PolicyConfig{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 20 {
				if err := p.Check("plum kayak violet thunder", domain.PasswordContext{Email: "ada@example.com"}); err != nil {
					t.Errorf("goroutine %d: %v", i, err)
				}
				if err := p.Check("Password123456!", domain.PasswordContext{}); err == nil {
					t.Errorf("goroutine %d: weak password accepted", i)
				}
			}
		})
	}
	wg.Wait()
}

// TestPolicyRefusesTheReviewsExamples: the passwords that the security review
// found accepted at the default minimum length, for the account
// ada.lovelace.example@example.com.
func TestPolicyRefusesTheReviewsExamples(t *testing.T) {
	p := newPolicy(t, passwords.PolicyConfig{})
	const ada = "ada.lovelace.example@example.com"
	tests := []struct {
		name, password, wantMsg string
	}{
		{"RepeatedWord", "passwordpassword", repeatMsg},
		{"Digits", "123456789012345", guessMsg},
		{"KeyboardWalk", "qwertyuiopasdfgh", phraseMsg},
		{"WordAndDigits", "Password123456!", guessMsg},
		{"Passphrase", "correcthorsebatterystaple", phraseMsg},
		{"EmailAddress", ada, emailMsg},
		{"LocalPart", "ada.lovelace.example", emailMsg},
		{"RepeatedWordFullWidth", "ｐａｓｓｗｏｒｄｐａｓｓｗｏｒｄ", repeatMsg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Check(tt.password, domain.PasswordContext{Email: ada})
			assertPolicyOutcome(t, err, tt.password, tt.wantMsg)
		})
	}
}
