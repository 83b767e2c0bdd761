//go:build !unix

package testenv

import (
	"errors"
	"os/exec"
	"os/user"
)

func runAs(*exec.Cmd, *user.User) error {
	return errors.New("running the server as another user is supported on Unix only")
}
