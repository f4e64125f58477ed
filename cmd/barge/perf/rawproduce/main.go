// Command rawproduce is a minimal producer for bench-partitions.sh: it
// encodes one produce request (one record batch of 1 KiB records per
// partition) once and sends it over one connection again and again with
// acks=1, a few requests in flight, reading and checking each answer. It
// spends almost no CPU of its own, so the broker's CPU per GB is measured
// without a client competing with it for this VM's two cores.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	addr := flag.String("broker", "127.0.0.1:9092", "broker address")
	topic := flag.String("topic", "t", "topic")
	partitions := flag.Int("partitions", 10, "partitions written, in turn")
	perRequest := flag.Int("per-request", 0, "partitions (one batch each) per request, the next ones in turn; 0: all")
	batchBytes := flag.Int("batch-bytes", 1<<20, "record bytes per batch")
	total := flag.Int64("bytes", 512<<20, "record bytes to send in all")
	inFlight := flag.Int("in-flight", 5, "requests sent before the first answer is read")
	flag.Parse()
	if *perRequest <= 0 || *perRequest > *partitions {
		*perRequest = *partitions
	}
	if *partitions <= 0 || *batchBytes <= 0 || *total <= 0 || *inFlight <= 0 {
		fmt.Fprintln(os.Stderr, "usage: rawproduce -broker ADDR -topic T -partitions N [-per-request K] [-batch-bytes B] [-bytes TOTAL] [-in-flight N]")
		os.Exit(2)
	}
	if err := run(*addr, *topic, *partitions, *perRequest, *batchBytes, *total, *inFlight); err != nil {
		fmt.Fprintln(os.Stderr, "rawproduce:", err)
		os.Exit(1)
	}
}

// batch is one v2 record batch of n records of size bytes each.
func batch(n, size int) []byte {
	var records []byte
	value := make([]byte, size)
	for i := range value {
		value[i] = byte(i*131 + 7)
	}
	for i := 0; i < n; i++ {
		r := kmsg.Record{OffsetDelta: int32(i), Key: nil, Value: value}
		body := r.AppendTo(nil)
		records = append(records, body...)
	}
	b := kmsg.RecordBatch{
		FirstOffset: 0, PartitionLeaderEpoch: -1, Magic: 2,
		LastOffsetDelta: int32(n - 1), FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n), Records: records,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

func run(addr, topic string, partitions, perRequest, batchBytes int, total int64, inFlight int) error {
	recs := max(1, batchBytes/1024)
	one := batch(recs, 1024)
	// The requests, encoded once: the i-th holds partitions i*perRequest up
	// to the next request's first (the last may hold fewer), so one round
	// of them gives every partition one batch.
	var encoded [][]byte
	var roundBytes int64
	for first := 0; first < partitions; first += perRequest {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 9, 1, 30000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		for p := first; p < min(first+perRequest, partitions); p++ {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition, rp.Records = int32(p), one
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		encoded = append(encoded, frame(req))
		roundBytes += int64(len(rt.Partitions) * recs * 1024)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	rounds := int((total + roundBytes - 1) / roundBytes)
	requests := rounds * len(encoded)
	start := time.Now()
	sent, answered := 0, 0
	for answered < requests {
		for sent < requests && sent-answered < inFlight {
			f := encoded[sent%len(encoded)]
			binary.BigEndian.PutUint32(f[8:], uint32(sent)) // correlation id
			if _, err := conn.Write(f); err != nil {
				return err
			}
			sent++
		}
		var size [4]byte
		if _, err := io.ReadFull(br, size[:]); err != nil {
			return err
		}
		body := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(br, body); err != nil {
			return err
		}
		resp := kmsg.NewPtrProduceResponse()
		resp.Version = 9
		if err := resp.ReadFrom(body[5:]); err != nil { // correlation id, header tags
			return fmt.Errorf("decode answer: %w", err)
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return fmt.Errorf("partition %d: error code %d", p.Partition, p.ErrorCode)
				}
			}
		}
		answered++
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("{\"bytes\": %d, \"mib_per_sec\": %.1f}\n", int64(rounds)*roundBytes, float64(int64(rounds)*roundBytes)/secs/(1<<20))
	return nil
}

// frame is req as a size-prefixed request (header v2: flexible Produce),
// with correlation id 0 for the sender to overwrite.
func frame(req *kmsg.ProduceRequest) []byte {
	out := binary.BigEndian.AppendUint32(nil, 0) // size, set below
	out = binary.BigEndian.AppendUint16(out, uint16(req.Key()))
	out = binary.BigEndian.AppendUint16(out, uint16(req.Version))
	out = binary.BigEndian.AppendUint32(out, 0)
	out = binary.BigEndian.AppendUint16(out, 3)
	out = append(out, "raw"...)
	out = append(out, 0) // no header tags
	out = req.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}
