package passwords

import "syscall"

// hashNice is the nice value of the threads that hash: below every thread
// at the default 0, which CFS then gives about nine times its share.
const hashNice = 10

// lowerThreadPriority lowers the scheduling priority of the calling thread
// alone (Linux keeps a nice value per thread). Failing to is harmless: the
// hash then competes as an equal.
func lowerThreadPriority() {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), hashNice)
}
