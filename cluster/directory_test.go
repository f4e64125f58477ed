package cluster

import (
	"slices"
	"testing"
)

// TestRegisterWithReplacedDirectory: re-registering a broker with another
// directory id drops it from every ISR, even as the last member, and moves
// the leadership of the partitions it led (here it never was fenced: it
// came back within failure detection); the same directory, or one from a
// registration without a directory id, changes no ISR.
func TestRegisterWithReplacedDirectory(t *testing.T) {
	reg := func(id int32, dir string) RegisterBroker {
		r := registerCmd(id, "")
		r.DirectoryID, r.Incarnation = dir, dir+"-process"
		return r
	}
	for _, c := range []struct {
		name              string
		before, after     string // broker 2's directory ids
		wantLed, wantLast bool   // broker 2 still leads "led" / is in the ISR of "last"
	}{
		{"replaced", "d1", "d2", false, false},
		{"same directory", "d1", "d1", true, true},
		{"unknown before", "", "d2", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBuilder(t)
			for _, id := range []int32{1, 2, 3} {
				dir := "dir-of-" + string(rune('0'+id))
				if id == 2 {
					dir = c.before
				}
				b.must(reg(id, dir))
			}
			b.must(CreateTopic{Name: "led", Assignment: [][]int32{{2, 1, 3}}})
			b.must(CreateTopic{Name: "last", Assignment: [][]int32{{2, 3}}})
			// Leave broker 2 alone in the ISR of "last", and its only leader.
			p := b.part("last", 0)
			b.must(AlterPartition{Topic: "last", Partition: 0, Leader: 2, LeaderEpoch: p.LeaderEpoch,
				PartitionEpoch: p.PartitionEpoch, ISR: []int32{2}})
			led, last := b.part("led", 0), b.part("last", 0)

			b.must(reg(2, c.after))
			if br, _ := b.img.Broker(2); br.DirectoryID != c.after || br.Fenced {
				t.Fatalf("broker 2 registered as %+v", br)
			}
			gotLed, gotLast := b.part("led", 0), b.part("last", 0)
			if got := gotLed.Leader == 2 && slices.Contains(gotLed.ISR, 2); got != c.wantLed {
				t.Fatalf("led: %+v -> %+v", led, gotLed)
			}
			if got := slices.Contains(gotLast.ISR, 2); got != c.wantLast {
				t.Fatalf("last: %+v -> %+v", last, gotLast)
			}
			if !c.wantLed {
				// Leadership moved to the next ISR replica with a new
				// epoch; the partition with no other ISR member is offline.
				if gotLed.Leader != 1 || gotLed.LeaderEpoch <= led.LeaderEpoch || !slices.Equal(gotLed.ISR, []int32{1, 3}) {
					t.Fatalf("led after the wipe: %+v", gotLed)
				}
				if gotLast.Leader != NoLeader || len(gotLast.ISR) != 0 || gotLast.LeaderEpoch <= last.LeaderEpoch {
					t.Fatalf("last after the wipe: %+v", gotLast)
				}
			}
		})
	}
}
