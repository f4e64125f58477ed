package cluster

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// NoLeader is the Leader of an offline partition.
const NoLeader int32 = -1

// TopicID is a topic's 16-byte UUID, as Kafka's. It prints, and marshals to
// text, in Kafka's URL-safe base64 form.
type TopicID [16]byte

// String returns the id in Kafka's base64 form.
func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// IsZero reports whether id is the all-zero id, which names no topic.
func (id TopicID) IsZero() bool { return id == TopicID{} }

// MarshalText implements encoding.TextMarshaler.
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *TopicID) UnmarshalText(b []byte) error {
	raw, err := base64.RawURLEncoding.DecodeString(string(b))
	if err != nil || len(raw) != len(id) {
		return fmt.Errorf("bad topic id %q", b)
	}
	copy(id[:], raw)
	return nil
}

// newTopicID returns a random version-4 UUID. Only the controller calls it,
// while preparing a CreateTopic, so the FSM stays deterministic.
func newTopicID() TopicID {
	var id TopicID
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails on Linux
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// Broker is one registered broker in the image.
type Broker struct {
	ID         int32  `json:"id"`
	KafkaAddr  string `json:"kafka_addr"`
	RaftAddr   string `json:"raft_addr"`
	GossipAddr string `json:"gossip_addr,omitempty"`
	HTTPAddr   string `json:"http_addr,omitempty"`
	Rack       string `json:"rack,omitempty"`
	// Incarnation identifies the broker process that registered.
	Incarnation string `json:"incarnation,omitempty"`
	// DirectoryID identifies the data directory it registered with.
	DirectoryID string `json:"directory_id,omitempty"`
	// Fenced brokers are not alive: they lead nothing and are in no ISR
	// (except as the last member of an offline partition's ISR).
	Fenced bool `json:"fenced"`
	// Epoch is the broker epoch: the Raft index of its latest registration.
	Epoch int64 `json:"epoch"`
	// UncleanRestart says the running process started after an unclean
	// shutdown (see RegisterBroker.UncleanShutdown); health reports use it
	// to explain offline partitions.
	UncleanRestart bool `json:"unclean_restart,omitempty"`
	// Listeners are the broker's advertised named Kafka listeners
	// (--advertised-listeners) as FormatListeners writes them; empty for a
	// broker with the one unnamed --kafka listener, whose address is
	// KafkaAddr. A string rather than a slice keeps Broker comparable.
	Listeners string `json:"listeners,omitempty"`
	// Decommissioning says the operator asked for the broker to be
	// removed: it gets no new replicas, the controller moves its replicas
	// away, then unregisters it (see decommission.go).
	Decommissioning bool `json:"decommissioning,omitempty"`
	// StorageHeld says the broker's storage refuses writes (its disk is
	// below the free-space reserve): it is in no ISR as a follower, and no
	// leader adds it to one (see storagehold.go).
	StorageHeld bool `json:"storage_held,omitempty"`
}

// ListenerAddr is the address clients that came in on listener name reach
// this broker at. A broker without named listeners answers KafkaAddr for
// any name; one with them answers false for a name it does not have.
func (b Broker) ListenerAddr(name string) (string, bool) {
	if b.Listeners == "" {
		return b.KafkaAddr, b.KafkaAddr != ""
	}
	for item := range strings.SplitSeq(b.Listeners, ",") {
		if n, addr, ok := strings.Cut(item, "="); ok && n == name {
			return addr, true
		}
	}
	return "", false
}

// FormatListeners writes named listener addresses as Broker.Listeners
// holds them: NAME=host:port, comma-separated, in the order given.
func FormatListeners(names, addrs []string) string {
	var sb strings.Builder
	for i := range names {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(names[i] + "=" + addrs[i])
	}
	return sb.String()
}

// Partition is the replication state of one partition. Its slices are shared
// by every reader of the image and must not be modified.
type Partition struct {
	Index    int32   `json:"index"`
	Replicas []int32 `json:"replicas"`
	ISR      []int32 `json:"isr"`
	// ELR holds the eligible leader replicas (KIP-966): replicas that left
	// the ISR while it was below min.insync.replicas and have not restarted
	// uncleanly since. The high watermark does not move while the ISR is
	// below the minimum, so each holds every committed record; one may lead
	// when no ISR member is live. Disjoint from ISR, in replica order, empty
	// whenever the ISR has min.insync.replicas members.
	ELR []int32 `json:"elr,omitempty"`
	// Leader is NoLeader (-1) while the partition is offline.
	Leader int32 `json:"leader"`
	// LeaderEpoch grows by one on every change of leader (KRaft semantics).
	LeaderEpoch int32 `json:"leader_epoch"`
	// PartitionEpoch grows by one on every change of the partition: ISR,
	// leader or replicas.
	PartitionEpoch int32 `json:"partition_epoch"`
	// AddingReplicas and RemovingReplicas describe a move in flight
	// (KIP-455): Replicas is then the union of the target replicas (first,
	// in target order) and the original ones; the adding replicas copy the
	// log by ordinary follower fetches, and once every target replica is
	// in the ISR the move completes and Replicas becomes the target. Both
	// are empty when no move is in flight (see reassign.go).
	AddingReplicas   []int32 `json:"adding_replicas,omitempty"`
	RemovingReplicas []int32 `json:"removing_replicas,omitempty"`
}

// Topic is one topic of the image. Its map and slices are shared by every
// reader of the image and must not be modified.
type Topic struct {
	Name       string            `json:"name"`
	ID         TopicID           `json:"id"`
	Configs    map[string]string `json:"configs,omitempty"`
	Partitions []Partition       `json:"partitions"`
}

// ReplicationFactor returns the number of replicas of partition 0: of its
// target replicas while it is being moved, not of the union it has then.
func (t Topic) ReplicationFactor() int {
	if len(t.Partitions) == 0 {
		return 0
	}
	return len(t.Partitions[0].TargetReplicas())
}

// Image is an immutable snapshot of the cluster metadata: what the FSM held
// after applying the log up to Index. Node.Image returns the latest one with
// one atomic load; an Image never changes after it is published, so any
// goroutine may read it without locks for as long as it likes.
type Image struct {
	index     uint64
	clusterID string
	brokers   map[int32]Broker
	topics    map[string]*Topic
	topicIDs  map[TopicID]string
	// retired holds the ids of brokers decommissioned and unregistered:
	// the controller registers none of them again until a recommission.
	retired map[int32]bool
	// brokerConfigs are the dynamic broker configs every broker applies
	// (Kafka's cluster-wide default broker configs, the resource with an
	// empty name): the replication throttle rates.
	brokerConfigs map[string]string
	// owned names the topics whose Topic and partition slice this image
	// copied while it is being built by apply, so several partition changes
	// copy them once; nil once the image is published.
	owned map[string]bool
}

// emptyImage returns the image of a cluster with an empty log.
func emptyImage() *Image {
	return &Image{
		brokers:  map[int32]Broker{},
		topics:   map[string]*Topic{},
		topicIDs: map[TopicID]string{},
		retired:  map[int32]bool{},
	}
}

// Index returns the Raft index of the last command that changed the image.
func (img *Image) Index() uint64 { return img.index }

// ClusterID returns the cluster id, empty until the controller set it.
func (img *Image) ClusterID() string { return img.clusterID }

// Broker returns the broker with that id.
func (img *Image) Broker(id int32) (Broker, bool) {
	b, ok := img.brokers[id]
	return b, ok
}

// Brokers returns every registered broker, fenced or not, by id.
func (img *Image) Brokers() []Broker {
	out := make([]Broker, 0, len(img.brokers))
	for _, b := range img.brokers {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// LiveBrokers returns the unfenced brokers by id.
func (img *Image) LiveBrokers() []Broker {
	out := img.Brokers()
	return slices.DeleteFunc(out, func(b Broker) bool { return b.Fenced })
}

// Topic returns the topic of that name.
func (img *Image) Topic(name string) (Topic, bool) {
	t, ok := img.topics[name]
	if !ok {
		return Topic{}, false
	}
	return *t, true
}

// TopicByID returns the topic of that id.
func (img *Image) TopicByID(id TopicID) (Topic, bool) {
	name, ok := img.topicIDs[id]
	if !ok {
		return Topic{}, false
	}
	return img.Topic(name)
}

// TopicNames returns the names of all topics, sorted.
func (img *Image) TopicNames() []string {
	out := slices.Collect(maps.Keys(img.topics))
	slices.Sort(out)
	return out
}

// Topics returns all topics, sorted by name.
func (img *Image) Topics() []Topic {
	out := make([]Topic, 0, len(img.topics))
	for _, name := range img.TopicNames() {
		out = append(out, *img.topics[name])
	}
	return out
}

// Partition returns one partition of a topic.
func (img *Image) Partition(topic string, partition int32) (Partition, bool) {
	t, ok := img.topics[topic]
	if !ok || partition < 0 || int(partition) >= len(t.Partitions) {
		return Partition{}, false
	}
	return t.Partitions[partition], true
}

// isLive reports whether broker id is registered and unfenced.
func (img *Image) isLive(id int32) bool {
	b, ok := img.brokers[id]
	return ok && !b.Fenced
}

// Equal reports whether two images hold the same metadata at the same index.
// Nil and empty maps and slices count as equal.
func (img *Image) Equal(o *Image) bool {
	if img.index != o.index || img.clusterID != o.clusterID ||
		!maps.Equal(img.brokers, o.brokers) || !maps.Equal(img.topicIDs, o.topicIDs) ||
		!maps.Equal(img.retired, o.retired) || !maps.Equal(img.brokerConfigs, o.brokerConfigs) ||
		len(img.topics) != len(o.topics) {
		return false
	}
	for name, t := range img.topics {
		u, ok := o.topics[name]
		if !ok || !topicEqual(t, u) {
			return false
		}
	}
	return true
}

func topicEqual(a, b *Topic) bool {
	if a.Name != b.Name || a.ID != b.ID || !maps.Equal(a.Configs, b.Configs) ||
		len(a.Partitions) != len(b.Partitions) {
		return false
	}
	for i := range a.Partitions {
		if !partitionEqual(a.Partitions[i], b.Partitions[i]) {
			return false
		}
	}
	return true
}

func partitionEqual(a, b Partition) bool {
	return a.Index == b.Index && a.Leader == b.Leader && a.LeaderEpoch == b.LeaderEpoch &&
		a.PartitionEpoch == b.PartitionEpoch && slices.Equal(a.Replicas, b.Replicas) &&
		slices.Equal(a.ISR, b.ISR) && slices.Equal(a.ELR, b.ELR) &&
		slices.Equal(a.AddingReplicas, b.AddingReplicas) && slices.Equal(a.RemovingReplicas, b.RemovingReplicas)
}

// String summarises the image for logs and test failures.
func (img *Image) String() string {
	return fmt.Sprintf("image{index=%d cluster=%q brokers=%d topics=%d}",
		img.index, img.clusterID, len(img.brokers), len(img.topics))
}

// clone returns a shallow copy whose maps may be modified; the Topic values
// they point to are still shared and must be replaced, not modified.
func (img *Image) clone(index uint64) *Image {
	return &Image{
		index:     index,
		clusterID: img.clusterID,
		brokers:   maps.Clone(img.brokers),
		topics:    maps.Clone(img.topics),
		topicIDs:  maps.Clone(img.topicIDs),
		retired:   maps.Clone(img.retired),
		// Replaced, never modified: AlterBrokerConfigs builds a new map.
		brokerConfigs: img.brokerConfigs,
	}
}

// setPartition replaces one partition of a topic in an image under
// construction (a clone), copying the topic and its partition slice.
func (img *Image) setPartition(topic string, p Partition) {
	if img.owned[topic] {
		img.topics[topic].Partitions[p.Index] = p
		return
	}
	old := img.topics[topic]
	t := *old
	t.Partitions = slices.Clone(old.Partitions)
	t.Partitions[p.Index] = p
	img.topics[topic] = &t
	if img.owned == nil {
		img.owned = map[string]bool{}
	}
	img.owned[topic] = true
}

// imageDoc is the serialised form of an Image, in snapshots and for
// debugging: brokers and topics as sorted lists so the bytes are stable.
type imageDoc struct {
	Index     uint64   `json:"index"`
	ClusterID string   `json:"cluster_id"`
	Brokers   []Broker `json:"brokers"`
	Topics    []Topic  `json:"topics"`
	// Retired and BrokerConfigs are new in command version 3; older
	// snapshots lack them, which reads as none.
	Retired       []int32           `json:"retired_brokers,omitempty"`
	BrokerConfigs map[string]string `json:"broker_configs,omitempty"`
}

func (img *Image) doc() imageDoc {
	return imageDoc{Index: img.index, ClusterID: img.clusterID, Brokers: img.Brokers(), Topics: img.Topics(),
		Retired: img.RetiredBrokers(), BrokerConfigs: img.brokerConfigs}
}

// imageFromDoc rebuilds an image and checks the invariants that the FSM keeps,
// so a corrupt snapshot fails loudly at restore instead of later.
func imageFromDoc(d imageDoc) (*Image, error) {
	img := emptyImage()
	img.index, img.clusterID = d.Index, d.ClusterID
	for _, id := range d.Retired {
		img.retired[id] = true
	}
	if len(d.BrokerConfigs) > 0 {
		img.brokerConfigs = d.BrokerConfigs
	}
	for _, b := range d.Brokers {
		if _, dup := img.brokers[b.ID]; dup {
			return nil, fmt.Errorf("duplicate broker %d", b.ID)
		}
		img.brokers[b.ID] = b
	}
	for i := range d.Topics {
		t := d.Topics[i]
		if _, dup := img.topics[t.Name]; dup {
			return nil, fmt.Errorf("duplicate topic %q", t.Name)
		}
		if _, dup := img.topicIDs[t.ID]; dup {
			return nil, fmt.Errorf("duplicate topic id %s", t.ID)
		}
		img.topics[t.Name] = &t
		img.topicIDs[t.ID] = t.Name
	}
	if err := img.checkInvariants(); err != nil {
		return nil, err
	}
	return img, nil
}

// checkInvariants verifies what every image must satisfy: partitions
// indexed by position, distinct replicas, leader ∈ ISR ⊆ replicas, ELR ⊆
// replicas disjoint from the ISR, ISR ∪ ELR not empty, no fenced leader, and the topic id index matching the topics. It returns the first
// violation. The FSM runs it after each apply in race-enabled builds.
func (img *Image) checkInvariants() error {
	if len(img.topicIDs) != len(img.topics) {
		return fmt.Errorf("%d topic ids for %d topics", len(img.topicIDs), len(img.topics))
	}
	for id := range img.retired {
		if _, ok := img.brokers[id]; ok {
			return fmt.Errorf("broker %d both registered and retired", id)
		}
	}
	for name, t := range img.topics {
		if t.Name != name || img.topicIDs[t.ID] != name || t.ID.IsZero() {
			return fmt.Errorf("topic %q: name or id index inconsistent", name)
		}
		if len(t.Partitions) == 0 {
			return fmt.Errorf("topic %q: no partitions", name)
		}
		for i, p := range t.Partitions {
			if p.Index != int32(i) {
				return fmt.Errorf("topic %q: partition at %d has index %d", name, i, p.Index)
			}
			if err := checkPartition(img, p); err != nil {
				return fmt.Errorf("topic %q partition %d: %w", name, i, err)
			}
		}
	}
	return nil
}

func checkPartition(img *Image, p Partition) error {
	if len(p.Replicas) == 0 || hasDuplicates(p.Replicas) || hasDuplicates(p.ISR) {
		return fmt.Errorf("replicas %v or isr %v empty or with duplicates", p.Replicas, p.ISR)
	}
	for _, r := range p.Replicas {
		if _, ok := img.brokers[r]; !ok {
			return fmt.Errorf("replica %d is not a registered broker", r)
		}
	}
	for _, r := range p.ISR {
		if !slices.Contains(p.Replicas, r) {
			return fmt.Errorf("isr %v not a subset of replicas %v", p.ISR, p.Replicas)
		}
	}
	if err := checkELR(p); err != nil {
		return err
	}
	if err := checkReassignment(p); err != nil {
		return err
	}
	if p.Leader != NoLeader {
		if !slices.Contains(p.ISR, p.Leader) {
			return fmt.Errorf("leader %d not in isr %v", p.Leader, p.ISR)
		}
		if !img.isLive(p.Leader) {
			return fmt.Errorf("leader %d is fenced", p.Leader)
		}
	}
	if p.LeaderEpoch < 0 || p.PartitionEpoch < p.LeaderEpoch {
		return fmt.Errorf("epochs leader=%d partition=%d", p.LeaderEpoch, p.PartitionEpoch)
	}
	return nil
}

func hasDuplicates(ids []int32) bool {
	for i := range ids {
		if slices.Contains(ids[i+1:], ids[i]) {
			return true
		}
	}
	return false
}
