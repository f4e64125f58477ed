package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
)

// The cluster secret (--cluster-secret) authenticates the brokers to each
// other on the control channels: gossip and the Raft port (Raft and
// command forwarding). It does not encrypt the Raft port and does not touch
// the Kafka listener; see the README's "Cluster secret".
//
// Keys are derived from the secret with SHA-256 under a different label for
// each use, so the gossip key and the handshake key are unrelated.

// gossipKey is memberlist's SecretKey: 32 bytes, so AES-256-GCM.
func gossipKey(secret string) []byte {
	if secret == "" {
		return nil
	}
	k := sha256.Sum256([]byte("barge gossip key v1\x00" + secret))
	return k[:]
}

// muxKey is the HMAC-SHA256 key of the Raft port's handshake.
func muxKey(secret string) []byte {
	if secret == "" {
		return nil
	}
	k := sha256.Sum256([]byte("barge raft port key v1\x00" + secret))
	return k[:]
}

// minSecretLen is the shortest cluster secret Config accepts: shorter ones
// are guessable offline from one recorded handshake.
const minSecretLen = 16

const nonceLen = 32

// authenticated turns a protocol byte into its authenticated variant:
// lower case. A connection opening with 'r' or 'f' runs the handshake
// before the protocol; one opening with 'R' or 'F' does not. The two
// spellings let each side say precisely what is wrong when only one of
// them has a secret, instead of failing later on garbled frames.
func authenticated(proto byte) byte { return proto | 0x20 }

// The handshake, after the client's protocol byte, is mutual
// challenge-response over HMAC-SHA256 with muxKey:
//
//	client → server: client nonce (32 random bytes)
//	server → client: server nonce (32), HMAC("server" | proto | cn | sn)
//	client → server: HMAC("client" | proto | cn | sn)
//
// Each side proves it knows the key on fresh nonces of both, so a recorded
// handshake cannot be replayed, and the server reads nothing of the
// protocol (so executes no command) until the client has proven itself.
// It authenticates the connection's start only: without TLS, someone on
// the path can still read or alter the bytes after it.
func handshakeMAC(key []byte, role string, proto byte, cn, sn []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(role))
	h.Write([]byte{proto})
	h.Write(cn)
	h.Write(sn)
	return h.Sum(nil)
}

// clientHandshake runs the client's side on conn, whose deadline the
// caller has set; proto is the plain protocol byte (muxRaft, muxForward).
func clientHandshake(conn net.Conn, key []byte, proto byte) error {
	msg := make([]byte, 1+nonceLen)
	msg[0] = authenticated(proto)
	cn := msg[1:]
	_, _ = rand.Read(cn)
	if _, err := conn.Write(msg); err != nil {
		return fmt.Errorf("send handshake: %w", err)
	}
	reply := make([]byte, nonceLen+sha256.Size)
	if _, err := io.ReadFull(conn, reply); err != nil {
		// A server without a secret closes at once after the
		// authenticated protocol byte.
		return errorf(ErrUnauthenticated, "%s closed the handshake (it may have no cluster secret, or another): %v", conn.RemoteAddr(), err)
	}
	sn, mac := reply[:nonceLen], reply[nonceLen:]
	if !hmac.Equal(mac, handshakeMAC(key, "server", proto, cn, sn)) {
		return errorf(ErrUnauthenticated, "%s does not know this cluster's secret", conn.RemoteAddr())
	}
	if _, err := conn.Write(handshakeMAC(key, "client", proto, cn, sn)); err != nil {
		return fmt.Errorf("send handshake: %w", err)
	}
	return nil
}

// serverHandshake runs the server's side after the authenticated protocol
// byte was read; proto is the plain protocol byte. The caller has set the
// deadline.
func serverHandshake(conn net.Conn, key []byte, proto byte) error {
	cn := make([]byte, nonceLen)
	if _, err := io.ReadFull(conn, cn); err != nil {
		return fmt.Errorf("read client nonce: %w", err)
	}
	msg := make([]byte, nonceLen, nonceLen+sha256.Size)
	_, _ = rand.Read(msg)
	sn := msg[:nonceLen]
	msg = append(msg, handshakeMAC(key, "server", proto, cn, sn)...)
	if _, err := conn.Write(msg); err != nil {
		return fmt.Errorf("send server nonce: %w", err)
	}
	mac := make([]byte, sha256.Size)
	if _, err := io.ReadFull(conn, mac); err != nil {
		return fmt.Errorf("read client proof: %w", err)
	}
	if !hmac.Equal(mac, handshakeMAC(key, "client", proto, cn, sn)) {
		return errorf(ErrUnauthenticated, "wrong proof of the cluster secret")
	}
	return nil
}
