// Command pwritebase is the CPU baseline of bench-partitions.sh: it writes
// the bytes a produce run carries to one fresh file with positional writes
// of one producer batch each, and prints the CPU seconds (user + system)
// the writing thread spent per GB. With -tcp the same thread first receives
// each batch over a loopback TCP connection (from a sender on another
// thread, not counted) and checks its CRC-32C, as a broker must: the least
// any broker can spend on a produced byte. With -tcp -splice the bytes go
// from the socket through a pipe into the file without entering user space,
// and the CRC is read through a mapping of the file: what a broker that
// spliced produce requests into its segments could spend at least. With
// -files N the writes go round-robin to N files, as a broker's appends to N
// partitions do.
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
	path := flag.String("file", "", "file to write (created, removed at the end); with -files N, the prefix of N files")
	total := flag.Int64("bytes", 512<<20, "bytes to write")
	chunk := flag.Int("write-bytes", 1<<20, "bytes per pwrite (a producer batch)")
	files := flag.Int("files", 1, "files written round-robin, one write each in turn (partitions)")
	overTCP := flag.Bool("tcp", false, "receive each batch over loopback TCP and check its CRC-32C before writing it")
	spliced := flag.Bool("splice", false, "with -tcp: splice each batch from the socket through a pipe into the file, then check its CRC-32C through a mapping of the file")
	flag.Parse()
	if *path == "" || *total <= 0 || *chunk <= 0 || *files <= 0 || (*spliced && !*overTCP) || (*files > 1 && *overTCP) {
		fmt.Fprintln(os.Stderr, "usage: pwritebase -file PATH [-bytes N] [-write-bytes N] [-files N | -tcp [-splice]]")
		os.Exit(2)
	}
	var err error
	switch {
	case *spliced:
		err = runSpliced(*path, *total, *chunk)
	case *files > 1:
		err = runFiles(*path, *files, *total, *chunk)
	default:
		err = run(*path, *total, *chunk, *overTCP)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pwritebase:", err)
		os.Exit(1)
	}
}

// runFiles writes total bytes in chunks to n files in turn.
func runFiles(prefix string, n int, total int64, chunk int) error {
	fs := make([]*os.File, n)
	for i := range fs {
		f, err := os.OpenFile(fmt.Sprintf("%s.%d", prefix, i), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		fs[i] = f
	}
	payload := make([]byte, chunk)
	for i := range payload {
		payload[i] = byte(rand.Uint32())
	}
	ends := make([]int64, n)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	var pos int64
	for i := 0; pos < total; i = (i + 1) % n {
		b := payload[:min(int64(chunk), total-pos)]
		w, err := fs[i].WriteAt(b, ends[i])
		if err != nil {
			return err
		}
		ends[i] += int64(w)
		pos += int64(w)
	}
	cpu := threadCPU() - start
	fmt.Printf("%.2f\n", cpu.Seconds()/(float64(pos)/1e9))
	return nil
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

// runSpliced is the -tcp -splice floor: no batch byte enters user space
// except through a read-only mapping of the page cache, for the CRC.
func runSpliced(path string, total int64, chunk int) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	defer f.Close()
	if err := f.Truncate(total); err != nil {
		return err
	}
	mapped, err := unix.Mmap(int(f.Fd()), 0, int(total), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	defer unix.Munmap(mapped)
	payload := make([]byte, chunk)
	for i := range payload {
		payload[i] = byte(rand.Uint32())
	}
	conn, stop, err := sender(payload, total)
	if err != nil {
		return err
	}
	defer stop()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return err
	}
	defer unix.Close(pipe[0])
	defer unix.Close(pipe[1])
	if _, err := unix.FcntlInt(uintptr(pipe[1]), unix.F_SETPIPE_SZ, chunk); err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	table := crc32.MakeTable(crc32.Castagnoli)
	var sum uint32
	start := threadCPU()
	var pos int64
	for pos < total {
		want := int(min(int64(chunk), total-pos))
		inPipe := 0
		for inPipe < want {
			var n int64
			var serr error
			err := raw.Read(func(fd uintptr) bool {
				n, serr = unix.Splice(int(fd), nil, pipe[1], nil, want-inPipe, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
				return serr != unix.EAGAIN
			})
			if err != nil {
				return err
			}
			if serr != nil {
				return serr
			}
			if n == 0 {
				return io.ErrUnexpectedEOF
			}
			inPipe += int(n)
		}
		for off := pos; inPipe > 0; {
			n, err := unix.Splice(pipe[0], nil, int(f.Fd()), &off, inPipe, unix.SPLICE_F_MOVE)
			if err != nil {
				return err
			}
			inPipe -= int(n)
		}
		sum ^= crc32.Checksum(mapped[pos:pos+int64(want)], table)
		pos += int64(want)
	}
	cpu := threadCPU() - start
	_ = sum
	fmt.Printf("%.2f\n", cpu.Seconds()/(float64(pos)/1e9))
	return nil
}
