// Package authworker_test checks the dependency rules of the layout: the
// domain at the centre, use cases that know only the domain, an application
// service that knows the wire but not Kafka, adapters that do not know each
// other, and a Go SDK that pulls in none of the worker.
package authworker_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/authworker/authworker/"

// pkg is what `go list -json` says of one package.
type pkg struct {
	ImportPath string
	Imports    []string
}

func listPackages(t *testing.T, args ...string) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	cmd.Dir = "."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[strings.TrimPrefix(p.ImportPath, module)] = p
	}
	return pkgs
}

// isStd reports whether path is a standard-library package: its first
// element has no dot.
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// The adapters: each wraps one thing, and none imports another.
var adapters = []string{"consumers", "producers", "postgres", "redis", "httpapi", "metrics", "passwords", "tokens", "inmem"}

func TestDependencyRules(t *testing.T) {
	pkgs := listPackages(t, "./...")
	rules := []struct {
		pkg     string
		allowed func(imp string) bool
		why     string
	}{
		{"domain", oneOf(), "the domain imports the standard library only"},
		{"handlers", oneOf("domain"), "use cases import the domain only: no adapter, no Kafka, no wire types"},
		{"app", oneOf("domain", "handlers", "schemas"), "the application service knows the wire types but no adapter and no Kafka"},
		{"health", oneOf("domain"), "the stores' health knows the domain's errors and pings it is given, no adapter"},
		{"kafkalog", func(imp string) bool {
			return oneOf()(imp) || strings.HasPrefix(imp, "github.com/confluentinc/confluent-kafka-go/")
		},
			"the Kafka clients' log forwarder knows the Kafka client and slog, nothing of the worker"},
		{"schemas", func(imp string) bool { return oneOf("domain")(imp) || strings.HasPrefix(imp, "github.com/hamba/avro/") },
			"the wire contract is the domain's errors and Avro, nothing else"},
		{"client", func(imp string) bool {
			return oneOf("domain", "schemas")(imp) || strings.HasPrefix(imp, "github.com/confluentinc/confluent-kafka-go/")
		}, "the Go SDK imports the wire contract and Kafka, no worker package"},
	}
	for _, r := range rules {
		p, ok := pkgs[r.pkg]
		if !ok {
			t.Errorf("package %s not found", r.pkg)
			continue
		}
		for _, imp := range p.Imports {
			if !r.allowed(imp) {
				t.Errorf("%s imports %s: %s", r.pkg, imp, r.why)
			}
		}
	}
	for _, a := range adapters {
		for _, imp := range pkgs[a].Imports {
			other, ok := strings.CutPrefix(imp, module)
			if ok && other != a && slices.Contains(adapters, other) {
				t.Errorf("adapter %s imports adapter %s: adapters meet only in cmd", a, other)
			}
		}
	}
	for path, p := range pkgs {
		if strings.HasPrefix(path, "cmd/") || path == "testenv" || path == "storagetest" {
			continue
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module+"cmd/") {
				t.Errorf("%s imports %s: nothing depends on a command", path, imp)
			}
		}
	}
}

// oneOf allows the standard library and the named packages of the module.
func oneOf(names ...string) func(string) bool {
	return func(imp string) bool {
		if isStd(imp) {
			return true
		}
		name, ok := strings.CutPrefix(imp, module)
		return ok && slices.Contains(names, name)
	}
}

// TestSDKPullsInNoWorkerDependency: a service that imports the client
// compiles none of the worker's stores, hashing or test machinery, so the
// SDK can stay in this module.
func TestSDKPullsInNoWorkerDependency(t *testing.T) {
	client := listPackages(t, "-deps", "./client")
	forbidden := []string{
		"github.com/jackc/pgx", "github.com/redis/go-redis", "golang.org/x/crypto",
		"github.com/pressly/goose", "github.com/testcontainers", "github.com/golang-jwt",
	}
	for _, p := range client {
		for _, f := range forbidden {
			if strings.HasPrefix(p.ImportPath, f) {
				t.Errorf("the client depends on %s", p.ImportPath)
			}
		}
		if name, ok := strings.CutPrefix(p.ImportPath, module); ok && !slices.Contains([]string{"client", "schemas", "domain"}, name) {
			t.Errorf("the client depends on the worker's package %s", name)
		}
	}
}
