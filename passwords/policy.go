package passwords

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"

	"github.com/authworker/authworker/domain"
)

// Defaults of PolicyConfig: NIST SP 800-63B-4 asks for at least 15
// characters when a password is the only factor, and for accepting at least
// 64.
const (
	DefaultMinLength = 15
	DefaultMaxLength = 128
)

// DefaultServiceName is the default of PolicyConfig.ServiceName.
const DefaultServiceName = "authworker"

// Floors of PolicyConfig. NIST SP 800-63B-4 never allows a minimum below 8,
// and requires a maximum of at least 64.
const (
	minMinLength = 8
	minMaxLength = 64
)

// minContextRunes is the shortest local part of an e-mail address that a
// password may not contain: as long as the shortest password NIST allows, so
// a string that could be a password on its own. Shorter ones ("ada") turn up
// inside ordinary words ("Canada").
const minContextRunes = minMinLength

// blocklist holds common passwords, one a line; see the header of the file
// for its source. It is read once by each NewPolicy.
//
//go:embed blocklist.txt
var blocklist string

// passphrases holds long common passwords made of letters, most of them
// phrases, one a line; see the header of the file for its source. It is read
// once by each NewPolicy.
//
//go:embed passphrases.txt
var passphrases string

// PolicyConfig configures a Policy. Zero fields take the defaults.
type PolicyConfig struct {
	// MinLength is the minimum length in Unicode code points of the NFKC form.
	MinLength int
	// MaxLength is the maximum length in code points of the NFKC form. It must
	// be at least 64.
	MaxLength int
	// MaxBytes is the hard cap on the length in bytes, checked first. Keep it
	// equal to the Hasher's.
	MaxBytes int
	// ServiceName is the name users know the service by. A guesser tries it
	// early, so the guessability estimate counts it as one of the most
	// common words.
	ServiceName string
}

func (c *PolicyConfig) setDefaults() {
	if c.MinLength == 0 {
		c.MinLength = DefaultMinLength
	}
	if c.MaxLength == 0 {
		c.MaxLength = DefaultMaxLength
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.ServiceName == "" {
		c.ServiceName = DefaultServiceName
	}
}

// Validate reports whether c is usable. NewPolicy fills in the defaults
// before it calls Validate.
func (c PolicyConfig) Validate() error {
	switch {
	case c.MinLength < minMinLength:
		return fmt.Errorf("passwords: policy config: min length %d below %d", c.MinLength, minMinLength)
	case c.MaxLength < minMaxLength:
		return fmt.Errorf("passwords: policy config: max length %d below %d", c.MaxLength, minMaxLength)
	case c.MinLength > c.MaxLength:
		return fmt.Errorf("passwords: policy config: min length %d above max length %d", c.MinLength, c.MaxLength)
	case c.MaxBytes < 4*c.MaxLength:
		// Every password of MaxLength code points must fit.
		return fmt.Errorf("passwords: policy config: max bytes %d below 4 × max length %d", c.MaxBytes, c.MaxLength)
	}
	return nil
}

// Policy decides which passwords may be set, following NIST SP 800-63B:
// lengths counted in code points after NFKC normalisation, every printable
// character and space allowed, no composition rules, lists of common
// passwords and passphrases matched without regard to case, and a zxcvbn
// estimate of how many guesses a cracker needs. It is safe for concurrent
// use.
type Policy struct {
	cfg     PolicyConfig
	blocked map[string]struct{} // by fold(normalize(password))
	phrases map[string]struct{} // by phraseKey(fold(normalize(password)))
	// minGuessesLog10 is the estimate below which a password is refused.
	minGuessesLog10 float64
}

var _ domain.PasswordPolicy = (*Policy)(nil)

// NewPolicy returns a Policy built from cfg, with the embedded blocklist and
// list of passphrases.
func NewPolicy(cfg PolicyConfig) (*Policy, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Policy{
		cfg:             cfg,
		minGuessesLog10: float64(min(maxMinGuessesLog10, cfg.MinLength)),
		blocked:         readList(blocklist, func(s string) string { return s }),
		phrases:         readList(passphrases, phraseKey),
	}
	if len(p.blocked) == 0 || len(p.phrases) == 0 {
		return nil, errors.New("passwords: an embedded list of common passwords is empty")
	}
	return p, nil
}

// readList returns the set of key(fold(normalize(line))) for the lines of
// list, skipping empty lines and comments.
func readList(list string, key func(string) string) map[string]struct{} {
	set := make(map[string]struct{}, 4096)
	for line := range strings.Lines(list) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		set[key(fold(normalize(line)))] = struct{}{}
	}
	return set
}

// Check returns nil when password may be set, and otherwise a CodeInvalid
// error for field "password" whose message names the rule it breaks, checked
// in this order: longer than MaxBytes; not valid UTF-8; shorter than
// MinLength; longer than MaxLength; containing a control character (Unicode
// Cc: no one types those on purpose, and they are how broken clients and
// injected input show up); one character or a sequence written twice or
// more; holding c.Email, or its local part when that is at least 8 code
// points long; on the blocklist; on the list of passphrases, comparing
// letters and digits only; estimated to fall to fewer than 10^10 guesses
// (10^MinLength when MinLength is below 10), judging by its first 20 code
// points and counting the service's name and c.Email's words among the most
// common words.
func (p *Policy) Check(password string, c domain.PasswordContext) error {
	if len(password) > p.cfg.MaxBytes {
		return domain.Invalid("password", "password must be at most %d bytes long", p.cfg.MaxBytes)
	}
	if !utf8.ValidString(password) {
		return domain.Invalid("password", "password must be valid UTF-8 text")
	}
	n := normalize(password)
	runes := []rune(n)
	if len(runes) < p.cfg.MinLength {
		return domain.Invalid("password", "password must be at least %d characters long", p.cfg.MinLength)
	}
	if len(runes) > p.cfg.MaxLength {
		return domain.Invalid("password", "password must be at most %d characters long", p.cfg.MaxLength)
	}
	for _, r := range runes {
		if unicode.IsControl(r) {
			return domain.Invalid("password", "password must not contain control characters")
		}
	}
	if repeated(runes) {
		return domain.Invalid("password", "password must not be one character or a sequence repeated")
	}
	folded := fold(n)
	if containsEmail(folded, c.Email) {
		return domain.Invalid("password", "password must not contain your e-mail address or the part before the @")
	}
	if _, ok := p.blocked[folded]; ok {
		return domain.Invalid("password", "password is too common: it appears in lists of leaked passwords")
	}
	if _, ok := p.phrases[phraseKey(folded)]; ok {
		return domain.Invalid("password", "password is too common: it is a well-known phrase")
	}
	if guessesLog10(n, contextWords(p.cfg.ServiceName, c.Email)) < p.minGuessesLog10 {
		return domain.Invalid("password", "password is too easy to guess")
	}
	return nil
}

// phraseKey returns the letters and digits of s, so that one phrase written
// with spaces, hyphens or a final "!" meets its entry in the list.
func phraseKey(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return -1
	}, s)
}

// containsEmail reports whether the folded password holds the address, or
// its local part when that is at least minContextRunes long.
func containsEmail(folded string, email domain.Email) bool {
	if email == "" {
		return false
	}
	addr := fold(normalize(email.String()))
	if strings.Contains(folded, addr) {
		return true
	}
	local, _, _ := strings.Cut(addr, "@")
	return utf8.RuneCountInString(local) >= minContextRunes && strings.Contains(folded, local)
}

// fold returns the Unicode case folding of s, so that "PassWord" and
// "password" meet in the blocklist. A Caser is not safe for concurrent use,
// so each call makes its own.
func fold(s string) string {
	return cases.Fold().String(s)
}

// repeated reports whether runes is one unit written at least twice, the
// last time possibly cut short: "aaaa…", "abab…", "passwordpass…". Such a
// password is about as easy to guess as its unit, in any script.
func repeated(runes []rune) bool {
	n := len(runes)
	if n < 2 {
		return false
	}
	// border[i] is the length of the longest proper prefix of runes[:i+1]
	// that is also its suffix (the Knuth-Morris-Pratt failure function); the
	// shortest period of runes is then n - border[n-1].
	border := make([]int, n)
	for i := 1; i < n; i++ {
		k := border[i-1]
		for k > 0 && runes[i] != runes[k] {
			k = border[k-1]
		}
		if runes[i] == runes[k] {
			k++
		}
		border[i] = k
	}
	return 2*(n-border[n-1]) <= n
}
