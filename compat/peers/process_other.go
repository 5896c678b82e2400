//go:build !linux

package peers

import "os/exec"

// setParentDeathSignal has no portable equivalent off Linux; Close still stops the peer.
func setParentDeathSignal(*exec.Cmd) {}
