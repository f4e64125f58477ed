// Package offsets parses and resolves the offset specs of the admin CLI,
// rpk's syntax: `consume -o`, `topic trim -o`, and later `group seek --to`.
//
//	start          the log start offset (also: oldest, beginning)
//	end            the high watermark, where new records go (also: newest, latest)
//	47             offset 47
//	+3             3 after the start
//	-3             3 before the end
//	@1717171717    the first record at or after a time: unix seconds,
//	               milliseconds, microseconds or nanoseconds (told apart
//	               by magnitude), an RFC 3339 time (2024-06-01T10:00:00Z)
//	               or date (2024-06-01), or a duration before now (@-1h)
//	SPEC:end       from SPEC up to the high watermark seen at the start
//	SPEC:N         from SPEC up to offset N, exclusive
//
// Resolved offsets are clamped to [log start, high watermark].
package offsets

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kind is the form of one offset spec.
type Kind int8

const (
	Start      Kind = iota + 1 // the log start offset
	End                        // the high watermark
	Exact                      // offset N
	AfterStart                 // N after the start
	BeforeEnd                  // N before the end
	Time                       // the first record at or after Millis
)

// Spec is one parsed offset spec.
type Spec struct {
	Kind   Kind
	N      int64 // Exact, AfterStart, BeforeEnd
	Millis int64 // Time: unix milliseconds
}

// Range is a parsed -o value: where to start and, optionally, where to stop.
type Range struct {
	From Spec
	// Until is where to stop (exclusive): End or Exact; nil means never.
	Until *Spec
}

// Parse parses an offset spec with an optional ":end" or ":N" stop. now
// anchors relative times (@-1h).
func Parse(s string, now time.Time) (Range, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Range{}, fmt.Errorf("%w: empty (want start, end, N, +N, -N, @time, with an optional :end)", ErrSyntax)
	}
	from, until := s, ""
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		suffix := s[i+1:]
		// An RFC 3339 time holds colons too: only "end", or digits after
		// a spec that is not a time, stop a range.
		if suffix == "end" || (isDigits(suffix) && !strings.HasPrefix(s, "@")) {
			from, until = s[:i], suffix
		}
	}
	var r Range
	if from == "" {
		r.From = Spec{Kind: Start} // ":end" reads everything there is
	} else {
		spec, err := ParseSpec(from, now)
		if err != nil {
			return Range{}, err
		}
		r.From = spec
	}
	switch {
	case until == "end":
		r.Until = &Spec{Kind: End}
	case until != "":
		n, err := strconv.ParseInt(until, 10, 64)
		if err != nil {
			return Range{}, fmt.Errorf("%w: %q: stop offset %q", ErrSyntax, s, until)
		}
		r.Until = &Spec{Kind: Exact, N: n}
	}
	return r, nil
}

// ParseSpec parses one offset spec, without a range stop.
func ParseSpec(s string, now time.Time) (Spec, error) {
	switch strings.ToLower(s) {
	case "start", "oldest", "beginning", "earliest":
		return Spec{Kind: Start}, nil
	case "end", "newest", "latest":
		return Spec{Kind: End}, nil
	}
	bad := func(why string) (Spec, error) {
		return Spec{}, fmt.Errorf("%w: %q: %s", ErrSyntax, s, why)
	}
	switch {
	case strings.HasPrefix(s, "@"):
		ms, err := parseTime(s[1:], now)
		if err != nil {
			return bad(err.Error())
		}
		return Spec{Kind: Time, Millis: ms}, nil
	case strings.HasPrefix(s, "+"), strings.HasPrefix(s, "-"):
		if !isDigits(s[1:]) {
			return bad("want +N or -N with N a number of records")
		}
		n, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil {
			return bad(err.Error())
		}
		if s[0] == '+' {
			return Spec{Kind: AfterStart, N: n}, nil
		}
		return Spec{Kind: BeforeEnd, N: n}, nil
	case isDigits(s):
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return bad(err.Error())
		}
		return Spec{Kind: Exact, N: n}, nil
	}
	return bad("want start, end, N, +N, -N or @time")
}

// parseTime reads the part after '@' as unix milliseconds.
func parseTime(s string, now time.Time) (int64, error) {
	switch {
	case s == "":
		return 0, errors.New("empty time after @")
	case strings.HasPrefix(s, "-"):
		d, err := time.ParseDuration(s[1:])
		if err != nil {
			return 0, fmt.Errorf("want a duration before now like @-1h or @-30m: %v", err)
		}
		return now.Add(-d).UnixMilli(), nil
	case isDigits(s):
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		// Seconds, milliseconds, microseconds and nanoseconds of any date
		// between 1973 and 5138 fall in separate ranges.
		switch {
		case n < 1e11:
			return n * 1000, nil
		case n < 1e14:
			return n, nil
		case n < 1e17:
			return n / 1e3, nil
		default:
			return n / 1e6, nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, errors.New("want unix seconds or milliseconds, an RFC 3339 time (2024-06-01T10:00:00Z), a date (2024-06-01) or -duration (@-1h)")
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Bounds are a partition's log start offset and high watermark.
type Bounds struct {
	Start, End int64
}

// Resolve returns the offset spec s names in a partition with bounds b.
// atTime is the answer of ListOffsets for a Time spec (-1: no record at or
// after the time, which resolves to the end). The result is clamped to
// [b.Start, b.End].
func (s Spec) Resolve(b Bounds, atTime int64) int64 {
	var o int64
	switch s.Kind {
	case Start:
		o = b.Start
	case End:
		o = b.End
	case Exact:
		o = s.N
	case AfterStart:
		o = b.Start + s.N
	case BeforeEnd:
		o = b.End - s.N
	case Time:
		o = atTime
		if o < 0 {
			o = b.End
		}
	}
	return min(max(o, b.Start), b.End)
}

// String renders s in the syntax Parse reads (times as unix milliseconds).
func (s Spec) String() string {
	switch s.Kind {
	case Start:
		return "start"
	case End:
		return "end"
	case Exact:
		return strconv.FormatInt(s.N, 10)
	case AfterStart:
		return "+" + strconv.FormatInt(s.N, 10)
	case BeforeEnd:
		return "-" + strconv.FormatInt(s.N, 10)
	case Time:
		return "@" + strconv.FormatInt(s.Millis, 10)
	}
	return "?"
}
