package group

// CommittedOffset is one committed offset of a group this coordinator
// serves: the next offset the group will read in Topic/Partition.
type CommittedOffset struct {
	Group     string
	Topic     string
	Partition int32
	Offset    int64
}

// CommittedOffsets returns a copy of every committed offset of the groups
// in the partitions this broker has loaded; partitions still loading are
// left out. The order is unspecified. Called at scrape time by the broker's
// consumer-group lag metric, from any goroutine: it takes the coordinator's
// read lock and each shard's lock in turn (never two shard locks at once),
// so it waits at most for one shard's current request.
func (c *Coordinator) CommittedOffsets() []CommittedOffset {
	shards, _ := c.loadedShards()
	var out []CommittedOffset
	for _, s := range shards {
		s.mu.Lock()
		if s.availableLocked() == 0 { // unloaded since loadedShards
			for _, g := range s.groups {
				for k, oc := range g.offsets {
					out = append(out, CommittedOffset{Group: g.id, Topic: k.topic, Partition: k.partition, Offset: oc.offset})
				}
			}
		}
		s.unlock()
	}
	return out
}
