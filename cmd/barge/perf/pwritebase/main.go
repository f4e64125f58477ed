// Command pwritebase is the CPU baseline of bench-partitions.sh: it writes
// the bytes a produce run carries to one fresh file with positional writes
// of one producer batch each, and prints the CPU seconds (user + system)
// the process spent per GB, counted as a broker's are: every thread, the Go
// runtime's included. With -tcp it first receives each batch over a
// loopback TCP connection (from a sender process, not counted, as a
// producer is not) and checks its CRC-32C, as a broker must: the least any
// broker in Go can spend on a produced byte. With -tcp -splice the bytes go
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
	"os/exec"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// processCPU is this process's user + system time, all its threads: the
// Go runtime's own (sysmon, the collector, the netpoller) count, as they do
// for a broker.
func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
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
	sendTo := flag.String("send-to", "", "internal: connect to this address and send -bytes of payload in -write-bytes writes (the sender process of -tcp)")
	spliced := flag.Bool("splice", false, "with -tcp: splice each batch from the socket through a pipe into the file, then check its CRC-32C through a mapping of the file")
	flag.Parse()
	if *sendTo != "" {
		if err := send(*sendTo, *total, *chunk); err != nil {
			fmt.Fprintln(os.Stderr, "pwritebase sender:", err)
			os.Exit(1)
		}
		return
	}
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
	start := processCPU()
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
	cpu := processCPU() - start
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
		conn, stop, err := sender(total, chunk)
		if err != nil {
			return err
		}
		defer stop()
		src = conn
	}
	table := crc32.MakeTable(crc32.Castagnoli)
	buf := make([]byte, chunk)
	var sum uint32
	start := processCPU()
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
	cpu := processCPU() - start
	_ = sum
	fmt.Printf("%.2f\n", cpu.Seconds()/(float64(pos)/1e9))
	return nil
}

// sender starts a sender process (this program with -send-to) that
// connects over loopback and writes total bytes of payload in chunks, and
// returns the accepted connection; its CPU is not this process's, as a
// producer's is not the broker's. stop closes the connection and waits for
// the process.
func sender(total int64, chunk int) (net.Conn, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	cmd := exec.Command(os.Args[0], "-send-to", ln.Addr().String(), "-bytes", strconv.FormatInt(total, 10), "-write-bytes", strconv.Itoa(chunk))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start the sender: %w", err)
	}
	// The sender exits on its own once it has written everything, or on
	// an error; a listener that nothing dials is closed by the timeout.
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	in, err := ln.Accept()
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, nil, fmt.Errorf("accept the sender: %w", err)
	}
	return in, func() { in.Close(); cmd.Wait() }, nil
}

// send is the sender process: random payload, written until total.
func send(addr string, total int64, chunk int) error {
	payload := make([]byte, chunk)
	for i := range payload {
		payload[i] = byte(rand.Uint32())
	}
	out, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer out.Close()
	for sent := int64(0); sent < total; {
		n, err := out.Write(payload[:min(int64(chunk), total-sent)])
		if err != nil {
			return err
		}
		sent += int64(n)
	}
	return nil
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
	conn, stop, err := sender(total, chunk)
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
	table := crc32.MakeTable(crc32.Castagnoli)
	var sum uint32
	start := processCPU()
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
	cpu := processCPU() - start
	_ = sum
	fmt.Printf("%.2f\n", cpu.Seconds()/(float64(pos)/1e9))
	return nil
}
