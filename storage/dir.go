package storage

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// PartitionDir is where a partition's log lives: <data>/<topic>-<partition>,
// Kafka's layout. Topic names cannot contain '/', so the last '-' always
// separates the partition number.
func PartitionDir(dataDir, topic string, partition int32) string {
	return filepath.Join(dataDir, fmt.Sprintf("%s-%d", topic, partition))
}

// ParsePartitionDir splits a directory name made by PartitionDir.
func ParsePartitionDir(name string) (topic string, partition int32, ok bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 || i == len(name)-1 {
		return "", 0, false
	}
	p, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || p < 0 {
		return "", 0, false
	}
	return name[:i], int32(p), true
}
