package record

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestParseFormatErrors(t *testing.T) {
	for _, tc := range []struct{ format, says string }{
		{`%x`, "unknown field %x"},
		{`%v\q`, `unknown escape \q`},
		{`%v\`, "trailing backslash"},
		{`%v%`, "trailing %"},
		{`%o %v`, "unknown field %o"}, // consume's fields are not produce's
	} {
		if _, err := ParseFormat(tc.format, "kvp"); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("ParseFormat(%q) = %v, want an error saying %q", tc.format, err, tc.says)
		}
	}
	for _, tc := range []struct{ format, says string }{
		{`%k%v`, "need text between them"},
		{`just text\n`, "no field"},
	} {
		f, err := ParseFormat(tc.format, "kvp")
		if err != nil {
			t.Fatalf("ParseFormat(%q): %v", tc.format, err)
		}
		if _, err := NewReader(f, strings.NewReader("")); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("NewReader(%q) = %v, want an error saying %q", tc.format, err, tc.says)
		}
	}
}

func TestReader(t *testing.T) {
	type rec struct {
		key, value string
		hasKey     bool
		partition  int32
	}
	for _, tc := range []struct {
		name, format, input string
		want                []rec
		err                 string // in the error after the records
	}{
		{name: "lines", format: `%v\n`, input: "a\nb\n", want: []rec{{value: "a", partition: -1}, {value: "b", partition: -1}}},
		{name: "last newline missing", format: `%v\n`, input: "a\nb", want: []rec{{value: "a", partition: -1}, {value: "b", partition: -1}}},
		{name: "empty input", format: `%v\n`, input: "", want: nil},
		{name: "empty lines are empty values", format: `%v\n`, input: "\n\n", want: []rec{{partition: -1}, {partition: -1}}},
		{name: "key and value", format: `%k %v\n`, input: "k1 v 1\nk2 v2\n",
			want: []rec{{key: "k1", value: "v 1", hasKey: true, partition: -1}, {key: "k2", value: "v2", hasKey: true, partition: -1}}},
		{name: "multi-byte delimiters", format: `%k::%v||`, input: "a::b||c::d||",
			want: []rec{{key: "a", value: "b", hasKey: true, partition: -1}, {key: "c", value: "d", hasKey: true, partition: -1}}},
		{name: "leading literal and partition", format: `[%p] %v\n`, input: "[2] x\n[0] y\n",
			want: []rec{{value: "x", partition: 2}, {value: "y", partition: 0}}},
		{name: "whole input", format: `%v`, input: "line1\nline2\n", want: []rec{{value: "line1\nline2\n", partition: -1}}},
		{name: "tab escape", format: `%k\t%v\n`, input: "k\tv\n", want: []rec{{key: "k", value: "v", hasKey: true, partition: -1}}},
		{name: "missing delimiter", format: `%k %v\n`, input: "k1 v1\nnospace\n",
			want: []rec{{key: "k1", value: "v1", hasKey: true, partition: -1}}, err: `record 2: input does not match the format: input ends before " "`},
		{name: "bad leading literal", format: `[%p] %v\n`, input: "(1) x\n", err: `want "[", got "("`},
		{name: "bad partition", format: `%p %v\n`, input: "x y\n", err: `partition "x" is not a number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFormat(tc.format, "kvp")
			if err != nil {
				t.Fatal(err)
			}
			rd, err := NewReader(f, strings.NewReader(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			var got []rec
			for {
				p, err := rd.Next()
				if err == io.EOF {
					if tc.err != "" {
						t.Errorf("no error, want %q", tc.err)
					}
					break
				}
				if err != nil {
					if tc.err == "" || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrFormat) {
						t.Errorf("error %v, want %q", err, tc.err)
					}
					break
				}
				got = append(got, rec{string(p.Key), string(p.Value), p.HasKey, p.Partition})
			}
			if len(got) != len(tc.want) {
				t.Fatalf("records %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("record %d: %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestAppend(t *testing.T) {
	r := &kgo.Record{
		Topic: "t", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("v"),
		Timestamp: time.UnixMilli(1717243200123),
		Headers:   []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}},
	}
	f, err := ParseFormat(`%t/%p@%o %d %k=%v [%h] 100%%\n`, "tpodkvh")
	if err != nil {
		t.Fatal(err)
	}
	want := "t/3@42 1717243200123 k=v [a=1,b=2] 100%\n"
	if got := string(f.Append(nil, r)); got != want {
		t.Errorf("Append = %q, want %q", got, want)
	}
}

// FuzzReader checks that any input through any readable format ends in
// records and then io.EOF or an error, never a panic or a loop.
func FuzzReader(f *testing.F) {
	f.Add(`%k %v\n`, "a b\nc d\n")
	f.Add(`[%p] %v\n`, "[1] x\n")
	f.Add(`%v`, "")
	f.Fuzz(func(t *testing.T, format, input string) {
		fm, err := ParseFormat(format, "kvp")
		if err != nil {
			return
		}
		rd, err := NewReader(fm, strings.NewReader(input))
		if err != nil {
			return
		}
		for i := 0; i <= len(input)+1; i++ {
			if _, err := rd.Next(); err != nil {
				return
			}
		}
		t.Fatalf("more records than input bytes from %q through %q", input, format)
	})
}
