package passwords

import (
	"math"
	"strings"
	"unicode"

	"github.com/trustelem/zxcvbn"
	"github.com/trustelem/zxcvbn/match"
	"github.com/trustelem/zxcvbn/scoring"

	"github.com/authworker/authworker/domain"
)

// The guessability estimate is zxcvbn's (Wheeler, "zxcvbn: Low-Budget
// Password Strength Estimation", USENIX Security 2016), in the Go port
// github.com/trustelem/zxcvbn, which gives the same numbers as zxcvbn 4.4.2.
// It finds the patterns a cracker tries first (30,000 leaked passwords,
// English words, names, keyboard walks, sequences, repeats, dates, l33t
// spellings, and the context words it is given) and counts the guesses a
// cracker needs to reach the password through them.

// estimateWindow is how many code points, from the start of the password,
// the estimate sees. zxcvbn's cost grows faster than the square of the
// length: measured on this machine, a 64-character random password costs
// 19 ms and one dense in l33t symbols 140 ms, against 1.5 ms and 8 ms for 20
// characters. Guessing a password is at least as hard as guessing its start,
// so a start judged hard vouches for the whole; and on 811 popular long
// phrases, 5,000 leaked passwords of 15 or more characters and samples of
// random passwords and passphrases, the window of 20 changed the share
// refused by under one point against the whole password. The cost is that
// a long password that opens with 20 easy characters is refused.
const estimateWindow = 20

// maxMinGuessesLog10 is the estimate below which a password is refused:
// 10^10 guesses, zxcvbn's score 4 ("strong protection from an offline
// attack on a slow hash", as ours is). Measured with the window above: it
// refuses 51% of the 811 popular phrases and 27% of the leaked passwords of
// 15 or more characters, against 32% and 7% at 10^8 (score 3), while it
// refuses under 3% of random three-word passphrases from the EFF list and
// none of 1,000 random strings of 15 lower-case letters; 10^12 would refuse
// 30% of those passphrases and 14% of random 15-digit strings.
//
// zxcvbn charges 10 guesses for each character it finds no pattern in, so a
// deployment that lowers MinLength below 10 gets 10^MinLength instead: a
// higher bar would refuse random passwords of the minimum length.
const maxMinGuessesLog10 = 10

// guessesLog10 returns log10 of zxcvbn's estimate of the guesses needed to
// find the first estimateWindow code points of password, which is NFKC
// text, counting words as the most common ones.
func guessesLog10(password string, words []string) float64 {
	window := password
	n := 0
	for i := range password {
		if n == estimateWindow {
			window = password[:i]
			break
		}
		n++
	}
	r := zxcvbn.PasswordStrength(window, words)
	return math.Log10(sequenceGuesses(r.Sequence))
}

// sequenceGuesses returns zxcvbn's count of guesses for a password that it
// matched as seq: l! × the product of the guesses of the l matches, plus
// 10^4^(l-1) for the shorter sequences a cracker tries first. zxcvbn 4.4.2
// computes the same, but this port reads the total at a byte index, and for
// text with multi-byte characters it can read an empty cell and report 0
// ("пароль-из-кириллицы"); the sequence itself is sound.
func sequenceGuesses(seq []*match.Match) float64 {
	if len(seq) == 0 {
		return 1
	}
	product := 1.0
	for i, m := range seq {
		product *= float64(i+1) * m.Guesses
	}
	return product + math.Pow(scoring.MinGuessesBeforeGrowingSequence, float64(len(seq)-1))
}

// contextWords returns the words a guesser who knows the account tries
// first: the service's name, the e-mail address, its local part, and the
// words of each part.
func contextWords(service string, email domain.Email) []string {
	words := []string{service}
	if email == "" {
		return words
	}
	local, host, _ := strings.Cut(email.String(), "@")
	words = append(words, email.String(), local)
	notAlnum := func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }
	words = append(words, strings.FieldsFunc(local, notAlnum)...)
	return append(words, strings.FieldsFunc(host, notAlnum)...)
}
