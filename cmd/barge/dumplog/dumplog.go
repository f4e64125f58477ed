// Package dumplog is `barge dump-log`: the RecordBatch headers of segment
// files, for debugging storage and replication (kafka-dump-log's job). It
// reads files directly and needs no broker.
package dumplog

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/storage"
)

// Segment is the dump of one segment file.
type Segment struct {
	File    string  `json:"file"`
	Size    int64   `json:"size"`
	Batches []Batch `json:"batches"`
	// ValidBytes is where the last good batch ends; Error says why the
	// walk stopped before Size (a torn or corrupt tail), empty otherwise.
	ValidBytes int64  `json:"valid_bytes"`
	Error      string `json:"error"`
}

// Batch is one RecordBatch header.
type Batch struct {
	Position      int64  `json:"position"`
	BaseOffset    int64  `json:"base_offset"`
	LastOffset    int64  `json:"last_offset"`
	Records       int32  `json:"records"`
	Length        int32  `json:"length"`
	LeaderEpoch   int32  `json:"leader_epoch"`
	BaseTimestamp int64  `json:"base_timestamp"`
	MaxTimestamp  int64  `json:"max_timestamp"`
	TimestampType string `json:"timestamp_type"`
	ProducerID    int64  `json:"producer_id"`
	ProducerEpoch int16  `json:"producer_epoch"`
	BaseSequence  int32  `json:"base_sequence"`
	Compression   string `json:"compression"`
	Transactional bool   `json:"transactional"`
	Control       bool   `json:"control"`
	CRC           uint32 `json:"crc"`
	CRCValid      bool   `json:"crc_valid"`
	// Error is the first validation failure of the batch (CRC, record
	// count), empty when valid.
	Error string `json:"error"`
}

var codecs = [...]string{"none", "gzip", "snappy", "lz4", "zstd"}

// NewCommand builds `barge dump-log`.
func NewCommand(deps *cli.Deps) *cobra.Command {
	out := cli.NewOutput(cli.FormatTable)
	cmd := &cobra.Command{
		Use:   "dump-log SEGMENT_FILE...",
		Short: "Print the record batch headers of segment files",
		Long: `Print the RecordBatch headers of partition segment files
(<data>/<topic>-<partition>/<base offset>.log): offsets, record counts,
timestamps, producer id, epoch and sequence, compression, and whether the
CRC is valid. Reading stops at a torn or corrupt tail, which is reported.
Records themselves are not decoded.

Exit code 1 when a file cannot be read or holds an invalid batch.`,
		Example: `  barge dump-log barge-data/orders-0/00000000000000000000.log
  barge dump-log barge-data/orders-0/*.log -o json | jq '.segments[].batches[] | select(.crc_valid | not)'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			res := struct {
				Segments []Segment `json:"segments"`
			}{}
			bad := 0
			for _, f := range files {
				seg, err := dump(f)
				if err != nil {
					return err
				}
				if seg.Error != "" || hasInvalid(seg.Batches) {
					bad++
				}
				res.Segments = append(res.Segments, seg)
			}
			if err := cli.Print(deps.Stdout, out.Format, res, func(w io.Writer) error { return table(w, res.Segments) }); err != nil {
				return err
			}
			return cli.Failed(bad, len(files), "segments")
		},
	}
	cli.AddOutputFlag(cmd.Flags(), out, "o")
	return cmd
}

func hasInvalid(bs []Batch) bool {
	for _, b := range bs {
		if b.Error != "" {
			return true
		}
	}
	return false
}

// dump walks one segment file batch by batch, holding one batch in memory
// at a time.
func dump(path string) (Segment, error) {
	f, err := os.Open(path)
	if err != nil {
		return Segment{}, fmt.Errorf("dump-log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Segment{}, fmt.Errorf("dump-log: %w", err)
	}
	seg := Segment{File: path, Size: st.Size(), Batches: []Batch{}}
	var buf []byte
	for pos := int64(0); pos < seg.Size; {
		head := make([]byte, min(storage.BatchHeaderSize, seg.Size-pos))
		if _, err := f.ReadAt(head, pos); err != nil {
			return seg, fmt.Errorf("dump-log: read %s at %d: %w", path, pos, err)
		}
		h, err := storage.ParseBatchHeader(head)
		if err != nil {
			seg.Error = fmt.Sprintf("at position %d: %v", pos, err)
			break
		}
		if int64(h.Length) > seg.Size-pos {
			seg.Error = fmt.Sprintf("at position %d: batch of %d bytes, only %d left (torn write?)", pos, h.Length, seg.Size-pos)
			break
		}
		if cap(buf) < int(h.Length) {
			buf = make([]byte, h.Length)
		}
		raw := buf[:h.Length]
		if _, err := f.ReadAt(raw, pos); err != nil {
			return seg, fmt.Errorf("dump-log: read %s at %d: %w", path, pos, err)
		}
		b := Batch{
			Position: pos, BaseOffset: h.BaseOffset, LastOffset: h.LastOffset(), Records: h.RecordCount,
			Length: h.Length, LeaderEpoch: h.LeaderEpoch, BaseTimestamp: h.BaseTimestamp, MaxTimestamp: h.MaxTimestamp,
			TimestampType: "create_time", ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch,
			BaseSequence: h.BaseSequence, Compression: fmt.Sprint(h.Compression()),
			Transactional: h.Transactional(), Control: h.Control(), CRC: h.CRC,
			CRCValid: storage.CRCValid(raw, h),
		}
		if h.LogAppendTime() {
			b.TimestampType = "log_append_time"
		}
		if c := h.Compression(); c < len(codecs) {
			b.Compression = codecs[c]
		}
		if _, err := storage.ValidateBatches(raw, 0); err != nil {
			var be *storage.BatchError
			if errors.As(err, &be) {
				err = be.Err
			}
			b.Error = err.Error()
		}
		seg.Batches = append(seg.Batches, b)
		pos += int64(h.Length)
		seg.ValidBytes = pos
	}
	return seg, nil
}

func table(w io.Writer, segs []Segment) error {
	for i, s := range segs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s: %d bytes, %d batches\n", s.File, s.Size, len(s.Batches))
		t := cli.NewTable(w, "POSITION", "BASE-OFFSET", "LAST-OFFSET", "RECORDS", "BYTES", "EPOCH", "BASE-TIMESTAMP", "MAX-TIMESTAMP",
			"PRODUCER-ID", "PRODUCER-EPOCH", "SEQUENCE", "CODEC", "CRC", "ERROR")
		for _, b := range s.Batches {
			crc := fmt.Sprintf("%08x ok", b.CRC)
			if !b.CRCValid {
				crc = fmt.Sprintf("%08x BAD", b.CRC)
			}
			t.Row(b.Position, b.BaseOffset, b.LastOffset, b.Records, b.Length, b.LeaderEpoch, b.BaseTimestamp, b.MaxTimestamp,
				b.ProducerID, b.ProducerEpoch, b.BaseSequence, b.Compression, crc, b.Error)
		}
		if err := t.Flush(); err != nil {
			return err
		}
		if s.Error != "" {
			fmt.Fprintf(w, "stopped at position %d: %s\n", s.ValidBytes, s.Error)
		}
	}
	return nil
}
