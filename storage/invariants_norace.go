//go:build !race

package storage

const invariantsPanic = false
