//go:build !linux

package passwords

// lowerThreadPriority does nothing where priorities are not per thread.
func lowerThreadPriority() {}
