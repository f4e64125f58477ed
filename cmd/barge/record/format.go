// Package record is `barge produce` and `barge consume`: records from
// stdin to a topic, and from a topic to stdout, shaped by rpk-style
// format strings (format.go).
package record

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A format string is literal text with %-fields and backslash escapes, as
// rpk's: `%k %v\n` is a key, a space, a value and a newline.
//
//	%t topic       %p partition   %o offset     %d timestamp (unix ms)
//	%k key         %v value       %h headers (k=v,k=v)
//	%% a percent sign; \n \r \t \\ and \0 are escapes
//
// produce reads %k, %v and %p; consume writes all of them.

// maxFieldBytes bounds one field read from stdin, so a format whose
// delimiter never comes fails instead of reading all of stdin into memory.
const maxFieldBytes = 64 << 20

// token is one piece of a format: a literal, or a field letter.
type token struct {
	lit   string
	field byte // 0 for a literal
}

// Format is a parsed format string.
type Format struct {
	src  string
	toks []token
}

// ParseFormat parses s, accepting only the field letters in allowed.
func ParseFormat(s, allowed string) (*Format, error) {
	f := &Format{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			f.toks = append(f.toks, token{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 == len(s) {
				return nil, fmt.Errorf("format %q: trailing backslash", s)
			}
			i++
			switch s[i] {
			case 'n':
				lit.WriteByte('\n')
			case 'r':
				lit.WriteByte('\r')
			case 't':
				lit.WriteByte('\t')
			case '\\':
				lit.WriteByte('\\')
			case '0':
				lit.WriteByte(0)
			default:
				return nil, fmt.Errorf("format %q: unknown escape \\%c (want \\n, \\r, \\t, \\\\ or \\0)", s, s[i])
			}
		case '%':
			if i+1 == len(s) {
				return nil, fmt.Errorf("format %q: trailing %%", s)
			}
			i++
			if s[i] == '%' {
				lit.WriteByte('%')
				continue
			}
			if !strings.ContainsRune(allowed, rune(s[i])) {
				return nil, fmt.Errorf("format %q: unknown field %%%c (want one of %s)", s, s[i], fieldList(allowed))
			}
			flush()
			f.toks = append(f.toks, token{field: s[i]})
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return f, nil
}

func fieldList(allowed string) string {
	parts := make([]string, len(allowed))
	for i := range allowed {
		parts[i] = "%" + allowed[i:i+1]
	}
	return strings.Join(parts, " ")
}

// Has reports whether the format holds the field letter.
func (f *Format) Has(field byte) bool {
	for _, t := range f.toks {
		if t.field == field {
			return true
		}
	}
	return false
}

// String returns the source of the format.
func (f *Format) String() string { return f.src }

// Parsed is one record read from stdin through a format.
type Parsed struct {
	Key, Value []byte
	HasKey     bool
	// Partition is -1 unless the format has %p.
	Partition int32
}

// Reader reads records from r through a format.
type Reader struct {
	f *Format
	r *bufio.Reader
	n int // records read, for errors
}

// NewReader checks that f can be read (a literal between any two fields,
// at least one field) and returns a reader of r.
func NewReader(f *Format, r io.Reader) (*Reader, error) {
	fields := 0
	for i, t := range f.toks {
		if t.field == 0 {
			continue
		}
		fields++
		if i+1 < len(f.toks) && f.toks[i+1].field != 0 {
			return nil, fmt.Errorf("format %q: %%%c and %%%c need text between them to tell where one ends", f.src, t.field, f.toks[i+1].field)
		}
	}
	if fields == 0 {
		return nil, fmt.Errorf("format %q: no field to read (want %%v, %%k or %%p)", f.src)
	}
	return &Reader{f: f, r: bufio.NewReaderSize(r, 64<<10)}, nil
}

// Next reads one record. It returns io.EOF at the end of the input between
// records. A final record whose closing newline is missing is accepted.
func (rd *Reader) Next() (Parsed, error) {
	p := Parsed{Partition: -1}
	if _, err := rd.r.Peek(1); err == io.EOF {
		return p, io.EOF
	}
	rd.n++
	toks := rd.f.toks
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.field == 0 {
			got := make([]byte, len(t.lit))
			if n, err := io.ReadFull(rd.r, got); err != nil {
				if isTrailingNewline(toks[i:]) && n == 0 && err == io.EOF {
					break // the last record's newline is missing
				}
				return p, fmt.Errorf("record %d: %w: input ends where %q should be", rd.n, ErrFormat, t.lit)
			}
			if string(got) != t.lit {
				return p, fmt.Errorf("record %d: %w: want %q, got %q", rd.n, ErrFormat, t.lit, got)
			}
			continue
		}
		var val []byte
		var err error
		if i+1 < len(toks) {
			delim := toks[i+1].lit
			val, err = rd.readUntil(delim)
			if err == io.EOF && isTrailingNewline(toks[i+1:]) {
				err = nil // the last record's newline is missing
			} else if err == io.EOF {
				return p, fmt.Errorf("record %d: %w: input ends before %q", rd.n, ErrFormat, delim)
			}
			i++ // the delimiter is read
		} else {
			val, err = io.ReadAll(io.LimitReader(rd.r, maxFieldBytes+1))
			if len(val) > maxFieldBytes {
				err = fmt.Errorf("record %d: %w: field larger than %d bytes", rd.n, ErrFormat, maxFieldBytes)
			}
		}
		if err != nil {
			return p, err
		}
		switch t.field {
		case 'k':
			p.Key, p.HasKey = val, true
		case 'v':
			p.Value = val
		case 'p':
			n, err := strconv.ParseInt(string(val), 10, 32)
			if err != nil || n < 0 {
				return p, fmt.Errorf("record %d: %w: partition %q is not a number", rd.n, ErrFormat, val)
			}
			p.Partition = int32(n)
		}
	}
	return p, nil
}

// isTrailingNewline reports whether toks is just the closing "\n".
func isTrailingNewline(toks []token) bool {
	return len(toks) == 1 && toks[0].field == 0 && toks[0].lit == "\n"
}

// readUntil reads up to and including delim and returns what came before
// it. At the end of the input it returns what it read and io.EOF.
func (rd *Reader) readUntil(delim string) ([]byte, error) {
	last := delim[len(delim)-1]
	var buf []byte
	for {
		chunk, err := rd.r.ReadSlice(last)
		buf = append(buf, chunk...)
		if len(buf) > maxFieldBytes {
			return nil, fmt.Errorf("record %d: %w: no %q within %d bytes", rd.n, ErrFormat, delim, maxFieldBytes)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err != nil:
			return buf, err
		case bytes.HasSuffix(buf, []byte(delim)):
			return buf[:len(buf)-len(delim)], nil
		}
	}
}

// Append writes r through the format to dst.
func (f *Format) Append(dst []byte, r *kgo.Record) []byte {
	for _, t := range f.toks {
		switch t.field {
		case 0:
			dst = append(dst, t.lit...)
		case 't':
			dst = append(dst, r.Topic...)
		case 'p':
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case 'o':
			dst = strconv.AppendInt(dst, r.Offset, 10)
		case 'd':
			dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		case 'k':
			dst = append(dst, r.Key...)
		case 'v':
			dst = append(dst, r.Value...)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = append(dst, h.Value...)
			}
		}
	}
	return dst
}
