// Package domain holds the heart of authworker: users, sessions and refresh
// tokens, the rules they obey, the one error type every layer speaks, and the
// ports through which use cases reach storage, hashing and token signing.
//
// It imports the standard library only. Adapters (postgres, redis, passwords,
// tokens) implement the ports; handlers orchestrate them; consumers and
// producers carry requests and replies over Kafka.
package domain
