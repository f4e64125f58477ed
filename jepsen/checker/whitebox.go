package checker

import (
	"strconv"
	"strings"

	"github.com/barge-broker/barge/jepsen/history"
)

// checkWhitebox checks the samples an outside observer took of each
// broker's Metadata and of each self-declared leader's high watermark:
//
//   - multiple-leaders: two brokers named leader of one partition in one
//     leader epoch (by anyone's metadata);
//   - epoch-regression: one broker's metadata gave a partition a lower
//     leader epoch than it gave before (a broker that a fault restarted
//     starts afresh: it may answer from its own older log until it
//     catches up, which is allowed);
//   - hw-regression: a leader reported a high watermark below one
//     reported before at the same or an older epoch (Kafka's KIP-207: a
//     new leader must not show a lower end than the old one did). A stale
//     leader at an older epoch is exempt: epoch fencing handles it.
//
// It returns the number of samples.
func checkWhitebox(ops []history.Op, add func(string, string)) int {
	type pe struct {
		partition int32
		epoch     int32
	}
	type bp struct {
		broker    int32
		partition int32
	}
	type hw struct {
		hw    int64
		epoch int32
	}
	leaders := map[pe]int32{}
	epochs := map[bp]int32{}
	hws := map[int32]hw{}
	n := 0
	for _, op := range ops {
		if op.Process == history.NemesisProcess {
			for _, b := range brokersIn(op.Target) {
				for k := range epochs {
					if k.broker == b {
						delete(epochs, k)
					}
				}
			}
			continue
		}
		if op.F != history.FObserve || op.Type != history.OK {
			continue
		}
		for _, o := range op.Observations {
			n++
			if o.Leader >= 0 && o.Epoch >= 0 {
				k := pe{o.Partition, o.Epoch}
				if l, ok := leaders[k]; ok && l != o.Leader {
					add(MultipleLeaders, sprintf("partition %d epoch %d: leader %d, and leader %d per broker %d (op %d)",
						o.Partition, o.Epoch, l, o.Leader, o.Broker, op.Index))
				} else if !ok {
					leaders[k] = o.Leader
				}
			}
			if o.Epoch >= 0 {
				k := bp{o.Broker, o.Partition}
				if e, ok := epochs[k]; ok && o.Epoch < e {
					add(EpochRegression, sprintf("broker %d: partition %d leader epoch %d after %d (op %d)", o.Broker, o.Partition, o.Epoch, e, op.Index))
				}
				epochs[k] = max(epochs[k], o.Epoch)
			}
			if o.HW >= 0 && o.Leader == o.Broker {
				prev, ok := hws[o.Partition]
				switch {
				case ok && o.Epoch >= prev.epoch && o.HW < prev.hw:
					add(HWRegression, sprintf("partition %d: leader %d at epoch %d reported high watermark %d after %d at epoch %d (op %d)",
						o.Partition, o.Broker, o.Epoch, o.HW, prev.hw, prev.epoch, op.Index))
				case !ok || o.HW > prev.hw:
					hws[o.Partition] = hw{o.HW, o.Epoch}
				}
			}
		}
	}
	return n
}

// brokersIn returns the broker ids named in a nemesis target such as
// "n2", "n1,n3" or "kill n2" (node nI is broker I).
func brokersIn(target string) []int32 {
	var out []int32
	for _, f := range strings.FieldsFunc(target, func(r rune) bool { return r == ',' || r == ' ' || r == '>' || r == '|' }) {
		if id, err := strconv.Atoi(strings.TrimPrefix(f, "n")); err == nil && strings.HasPrefix(f, "n") {
			out = append(out, int32(id))
		}
	}
	return out
}
