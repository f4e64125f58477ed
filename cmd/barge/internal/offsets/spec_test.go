package offsets

import (
	"errors"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	ms := func(t time.Time) int64 { return t.UnixMilli() }
	end := &Spec{Kind: End}
	for _, tc := range []struct {
		in   string
		want Range
	}{
		{"start", Range{From: Spec{Kind: Start}}},
		{"oldest", Range{From: Spec{Kind: Start}}},
		{"end", Range{From: Spec{Kind: End}}},
		{"newest", Range{From: Spec{Kind: End}}},
		{"0", Range{From: Spec{Kind: Exact, N: 0}}},
		{"47", Range{From: Spec{Kind: Exact, N: 47}}},
		{"+3", Range{From: Spec{Kind: AfterStart, N: 3}}},
		{"-3", Range{From: Spec{Kind: BeforeEnd, N: 3}}},
		{"@1717243200", Range{From: Spec{Kind: Time, Millis: 1717243200000}}},          // seconds
		{"@1717243200123", Range{From: Spec{Kind: Time, Millis: 1717243200123}}},       // millis
		{"@1717243200123456", Range{From: Spec{Kind: Time, Millis: 1717243200123}}},    // micros
		{"@1717243200123456789", Range{From: Spec{Kind: Time, Millis: 1717243200123}}}, // nanos
		{"@-1h", Range{From: Spec{Kind: Time, Millis: ms(now.Add(-time.Hour))}}},
		{"@-90s", Range{From: Spec{Kind: Time, Millis: ms(now.Add(-90 * time.Second))}}},
		{"@2024-06-01T10:00:00Z", Range{From: Spec{Kind: Time, Millis: ms(time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC))}}},
		{"@2024-06-01", Range{From: Spec{Kind: Time, Millis: ms(time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC))}}},
		{"start:end", Range{From: Spec{Kind: Start}, Until: end}},
		{":end", Range{From: Spec{Kind: Start}, Until: end}},
		{"-5:end", Range{From: Spec{Kind: BeforeEnd, N: 5}, Until: end}},
		{"10:20", Range{From: Spec{Kind: Exact, N: 10}, Until: &Spec{Kind: Exact, N: 20}}},
		{"@-1h:end", Range{From: Spec{Kind: Time, Millis: ms(now.Add(-time.Hour))}, Until: end}},
		{"@2024-06-01T10:00:00Z:end", Range{From: Spec{Kind: Time, Millis: ms(time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC))}, Until: end}},
	} {
		got, err := Parse(tc.in, now)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got.From != tc.want.From || (got.Until == nil) != (tc.want.Until == nil) || (got.Until != nil && *got.Until != *tc.want.Until) {
			t.Errorf("Parse(%q) = %+v until %v, want %+v until %v", tc.in, got.From, got.Until, tc.want.From, tc.want.Until)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"", "begin", "+", "-x", "@", "@yesterday", "@-1y", "1.5", "3:x", "99999999999999999999"} {
		if _, err := Parse(in, time.Now()); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) = %v, want ErrSyntax", in, err)
		}
	}
}

func TestResolve(t *testing.T) {
	b := Bounds{Start: 10, End: 100}
	for _, tc := range []struct {
		spec   Spec
		atTime int64
		want   int64
	}{
		{Spec{Kind: Start}, -1, 10},
		{Spec{Kind: End}, -1, 100},
		{Spec{Kind: Exact, N: 50}, -1, 50},
		{Spec{Kind: Exact, N: 5}, -1, 10},    // below the start: clamped
		{Spec{Kind: Exact, N: 500}, -1, 100}, // beyond the end: clamped
		{Spec{Kind: AfterStart, N: 5}, -1, 15},
		{Spec{Kind: AfterStart, N: 500}, -1, 100},
		{Spec{Kind: BeforeEnd, N: 5}, -1, 95},
		{Spec{Kind: BeforeEnd, N: 500}, -1, 10},
		{Spec{Kind: Time, Millis: 1}, 42, 42},
		{Spec{Kind: Time, Millis: 1}, -1, 100}, // nothing at or after: the end
	} {
		if got := tc.spec.Resolve(b, tc.atTime); got != tc.want {
			t.Errorf("%v.Resolve(%+v, %d) = %d, want %d", tc.spec, b, tc.atTime, got, tc.want)
		}
	}
	if !(Partition{From: 5, Until: 5}).Done() || (Partition{From: 5, Until: -1}).Done() || (Partition{From: 4, Until: 5}).Done() {
		t.Error("Done is wrong")
	}
}

func TestSpecStringRoundTrips(t *testing.T) {
	for _, s := range []Spec{{Kind: Start}, {Kind: End}, {Kind: Exact, N: 7}, {Kind: AfterStart, N: 2}, {Kind: BeforeEnd, N: 3}, {Kind: Time, Millis: 1717243200123}} {
		got, err := ParseSpec(s.String(), time.Now())
		if err != nil || got != s {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", s.String(), got, err, s)
		}
	}
}
