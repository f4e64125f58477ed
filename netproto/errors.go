package netproto

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers test them with errors.Is; netproto wraps them with
// the connection, key and version involved.
var (
	// ErrServerClosed is returned by Serve after Shutdown or Close.
	ErrServerClosed = errors.New("netproto: server closed")
	// ErrInvalidConfig: NewServer was given an unusable ServerConfig.
	ErrInvalidConfig = errors.New("netproto: invalid server config")
	// ErrFrameTooLarge: a request's size prefix is above
	// socket.request.max.bytes. The connection is closed.
	ErrFrameTooLarge = errors.New("netproto: request larger than socket.request.max.bytes")
	// ErrFrameTooSmall: a request's size prefix cannot even hold a header.
	// The connection is closed.
	ErrFrameTooSmall = errors.New("netproto: request smaller than a request header")
	// ErrMalformedRequest: a header or body that kmsg cannot decode at its
	// version (truncated, negative lengths, garbage). The connection is
	// closed.
	ErrMalformedRequest = errors.New("netproto: malformed request")
	// ErrUnsupportedRequest: an API key that is not advertised or that kmsg
	// does not know. The connection is closed, as Kafka does.
	ErrUnsupportedRequest = errors.New("netproto: unsupported api key")
	// ErrUnsupportedVersion: a version outside the advertised range of its
	// key. ApiVersions gets a v0 answer with UNSUPPORTED_VERSION (35); any
	// other key closes the connection.
	ErrUnsupportedVersion = errors.New("netproto: unsupported api version")
	// ErrInvalidResponse: a Handler answered with a Response that cannot be
	// written (nothing set, a response kind that does not match the
	// request, a Fetch outside v4..v12). This is a broker bug; the
	// connection is closed.
	ErrInvalidResponse = errors.New("netproto: invalid response from handler")
	// ErrShortRegion: a FileRegion's file ended before the region did (it
	// was truncated after the region was frozen). The response on the wire
	// is broken, so the connection is closed.
	ErrShortRegion = errors.New("netproto: file region shorter than its size")
)

// headerError wraps a decode failure with the request header fields known
// at that point, for logs.
func headerError(err error, key, version int16, detail string) error {
	if detail == "" {
		return fmt.Errorf("%w: key %d version %d", err, key, version)
	}
	return fmt.Errorf("%w: key %d version %d: %s", err, key, version, detail)
}

// Internal reasons a connection stops; never returned to callers.
var (
	// errReadStopped: Shutdown asked the connection to stop reading, or it
	// was closed.
	errReadStopped = errors.New("netproto: connection stopped reading")
	// errIdle: nothing was read, pending or written for IdleTimeout.
	errIdle = errors.New("netproto: connection idle")
	// errConnClosed: the connection was closed while the writer waited.
	errConnClosed = errors.New("netproto: connection closed")
	// errDrained: reading stopped and every response was written.
	errDrained = errors.New("netproto: connection drained")
	// errCloseRequested: a Handler answered with Response.Close.
	errCloseRequested = errors.New("netproto: handler closed the connection")
)
