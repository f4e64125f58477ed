package main

import "syscall"

// devProcAttr puts a dev broker in its own process group, so that Ctrl-C
// in the terminal reaches only the dev process, which then stops the
// brokers in order; and asks the kernel to SIGTERM the broker if the dev
// process dies without stopping it (kill -9), so that none is left behind.
func devProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
