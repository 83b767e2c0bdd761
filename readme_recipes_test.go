package authworker_test

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// recipeFiles are the files whose code the README's "Verifying tokens"
// shows, each run by `make interop` (scripts/interop.sh) against a real
// worker.
var recipeFiles = []string{
	"interop/java/src/main/resources/application.yml",
	"interop/java/src/main/java/authworker/recipes/AccessTokenValidation.java",
	"interop/java/src/main/java/authworker/recipes/NimbusAccessTokenVerifier.java",
	"interop/go/authworker.go",
	"interop/go/keyfunc.go",
	"interop/go/oidc.go",
	"interop/python/verify_token.py",
	"interop/node/verify-token.js",
}

// recipeBlock is a README code block marked as a copy of a file: the
// marker comment, then at once the fenced block.
var recipeBlock = regexp.MustCompile("(?s)<!-- recipe: ([^ ]+) -->\n```[a-z]*\n(.*?)```\n")

// TestREADMERecipes checks that every recipe the README shows is, byte for
// byte, the file that make interop runs, so that what users copy is what
// was tested.
func TestREADMERecipes(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var shown []string
	for _, m := range recipeBlock.FindAllStringSubmatch(string(readme), -1) {
		path, block := m[1], m[2]
		shown = append(shown, path)
		file, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("README shows %s: %v", path, err)
			continue
		}
		if block != string(file) {
			t.Errorf("README's block of %s differs from the file:\n%s", path, firstDifference(block, string(file)))
		}
	}
	if n := strings.Count(string(readme), "<!-- recipe:"); n != len(shown) {
		t.Errorf("%d recipe markers, %d followed at once by a code block", n, len(shown))
	}
	for _, path := range recipeFiles {
		if !slices.Contains(shown, path) {
			t.Errorf("README shows no block of %s", path)
		}
	}
	for _, path := range shown {
		if !slices.Contains(recipeFiles, path) {
			t.Errorf("README shows %s, which is not in recipeFiles", path)
		}
	}
}

// firstDifference names the first line where README and file part.
func firstDifference(readme, file string) string {
	a, b := strings.Split(readme, "\n"), strings.Split(file, "\n")
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n  README: %q\n  file:   %q", i+1, x, y)
		}
	}
	return "(same lines)"
}
