package group

import "unicode/utf16"

// PartitionFor is the __consumer_offsets partition that holds a group, and so
// the partition whose leader coordinates it: Kafka's
// Utils.abs(groupId.hashCode()) % partitions, so Barge and Kafka tools agree
// on where a group lives. partitions must be positive.
func PartitionFor(group string, partitions int32) int32 {
	h := javaStringHashCode(group)
	if h == -1<<31 {
		h = 0 // Kafka's Utils.abs maps Integer.MIN_VALUE to 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}

// javaStringHashCode is Java's String.hashCode: s[0]*31^(n-1) + ... + s[n-1]
// over UTF-16 code units, wrapping at 32 bits. Kafka decodes group ids from
// the wire as UTF-8, and so does this (invalid bytes become U+FFFD).
func javaStringHashCode(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			h = 31*h + hi
			h = 31*h + lo
			continue
		}
		h = 31*h + r
	}
	return h
}
