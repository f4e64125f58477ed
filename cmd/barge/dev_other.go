//go:build !linux

package main

import "syscall"

// devProcAttr puts a dev broker in its own process group, so that Ctrl-C
// in the terminal reaches only the dev process, which then stops the
// brokers in order. Without Linux's Pdeathsig, brokers outlive a dev
// process killed with SIGKILL.
func devProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
