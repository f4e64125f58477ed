package connect

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// AcksOpts parses an --acks value (all or -1, 1, 0) into producer options.
// acks other than all need the idempotent producer off, as in Kafka.
func AcksOpts(s string) ([]kgo.Opt, error) {
	switch strings.ToLower(s) {
	case "all", "-1":
		return []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}, nil
	case "1", "leader":
		return []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}, nil
	case "0", "none":
		return []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}, nil
	}
	return nil, cli.Usagef("--acks %q: want all (-1), 1 or 0", s)
}

// CompressionOpt parses a --compression value: none, gzip, snappy, lz4 or
// zstd.
func CompressionOpt(s string) (kgo.Opt, error) {
	var c kgo.CompressionCodec
	switch strings.ToLower(s) {
	case "none", "":
		c = kgo.NoCompression()
	case "gzip":
		c = kgo.GzipCompression()
	case "snappy":
		c = kgo.SnappyCompression()
	case "lz4":
		c = kgo.Lz4Compression()
	case "zstd":
		c = kgo.ZstdCompression()
	default:
		return nil, cli.Usagef("compression %q: want none, gzip, snappy, lz4 or zstd", s)
	}
	return kgo.ProducerBatchCompression(c), nil
}
