package peers

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal kills the peer if the test process dies without stopping it, so
// no peer outlives a crashed or killed test run.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
