// Package recipes holds the Go recipes of the README's "Verifying tokens":
// the project's own verifier (authworker.go), golang-jwt with keyfunc
// (keyfunc.go) and go-oidc, from the discovery document (oidc.go). Each is a file a service can copy; recipes_test.go runs
// them against a real worker in `make interop`. This is a module of its
// own so that the project's go.mod does not take on a recipe's
// dependencies.
package recipes
