// Command pwritebase is the CPU baseline of bench-partitions.sh: it writes
// the bytes a produce run carries to one fresh file with positional writes
// of one producer batch each, and prints the CPU seconds (user + system)
// the writing thread spent per GB. With -tcp the same thread first receives
// each batch over a loopback TCP connection (from a sender on another
// thread, not counted) and checks its CRC-32C, as a broker must: the least
// any broker can spend on a produced byte.
package main

import (
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU is the calling thread's user + system time.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	path := flag.String("file", "", "file to write (created, removed at the end)")
	total := flag.Int64("bytes", 512<<20, "bytes to write")
	chunk := flag.Int("write-bytes", 1<<20, "bytes per pwrite (a producer batch)")
	overTCP := flag.Bool("tcp", false, "receive each batch over loopback TCP and check its CRC-32C before writing it")
	flag.Parse()
	if *path == "" || *total <= 0 || *chunk <= 0 {
		fmt.Fprintln(os.Stderr, "usage: pwritebase -file PATH [-bytes N] [-write-bytes N] [-tcp]")
		os.Exit(2)
	}
	if err := run(*path, *total, *chunk, *overTCP); err != nil {
		fmt.Fprintln(os.Stderr, "pwritebase:", err)
		os.Exit(1)
	}
}

func run(path string, total int64, chunk int, overTCP bool) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	defer f.Close()
	payload := make([]byte, chunk)
	for i := range payload {
		payload[i] = byte(rand.Uint32()) // incompressible, like record payloads
	}
	var src io.Reader
	if overTCP {
		conn, stop, err := sender(payload, total)
		if err != nil {
			return err
		}
		defer stop()
		src = conn
	}
	runtime.LockOSThread() // threadCPU counts this goroutine only
	defer runtime.UnlockOSThread()
	table := crc32.MakeTable(crc32.Castagnoli)
	buf := make([]byte, chunk)
	var sum uint32
	start := threadCPU()
	var pos int64
	for pos < total {
		b := buf[:min(int64(chunk), total-pos)]
		if src != nil {
			if _, err := io.ReadFull(src, b); err != nil {
				return err
			}
			sum ^= crc32.Checksum(b, table)
		} else {
			b = payload[:len(b)]
		}
		n, err := f.WriteAt(b, pos)
		if err != nil {
			return err
		}
		pos += int64(n)
	}
	cpu := threadCPU() - start
	_ = sum
	fmt.Printf("%.2f\n", cpu.Seconds()/(float64(pos)/1e9))
	return nil
}

// sender connects a loopback socket pair and writes total bytes of payload
// into it from another goroutine; stop closes both ends and waits.
func sender(payload []byte, total int64) (net.Conn, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	out, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	in, err := ln.Accept()
	if err != nil {
		out.Close()
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sent := int64(0); sent < total; {
			n, err := out.Write(payload[:min(int64(len(payload)), total-sent)])
			if err != nil {
				return
			}
			sent += int64(n)
		}
	}()
	return in, func() { in.Close(); out.Close(); <-done }, nil
}
