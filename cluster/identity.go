package cluster

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/raft"
)

// metaPropertiesFile names the identity file at the top of a data
// directory. Its role is that of Kafka's meta.properties (the format is our
// own): it ties the directory to one broker id and, once known, one cluster
// id, and names the directory itself with a random id chosen when the file
// is created. A directory that lost its contents (a new disk, an rm -rf)
// gets a new directory id at its next start, which is how the controller
// tells a broker that kept its data from one that comes back empty.
const metaPropertiesFile = "meta.properties"

// metaPropertiesVersion is the version key of the file this Barge writes.
const metaPropertiesVersion = 1

// dirIdentity is the content of meta.properties.
type dirIdentity struct {
	BrokerID    int32
	DirectoryID string
	// ClusterID is empty until the broker has bootstrapped a cluster or
	// learned the id of the cluster it joined.
	ClusterID string
}

// loadIdentity reads dataDir/meta.properties, or creates it with a new
// directory id for brokerID when it does not exist (created reports that).
// A file naming another broker id is ErrIdentityMismatch: the directory
// belongs to another broker, and starting on it would replicate that
// broker's partitions under the wrong id.
func loadIdentity(dataDir string, brokerID int32) (id dirIdentity, created bool, err error) {
	path := filepath.Join(dataDir, metaPropertiesFile)
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		id = dirIdentity{BrokerID: brokerID, DirectoryID: newTopicID().String()}
		if err := writeIdentity(dataDir, id); err != nil {
			return dirIdentity{}, false, err
		}
		return id, true, nil
	}
	if err != nil {
		return dirIdentity{}, false, fmt.Errorf("cluster: read %s: %w", path, err)
	}
	id, err = parseIdentity(data)
	if err != nil {
		return dirIdentity{}, false, fmt.Errorf("cluster: %s: %w", path, err)
	}
	if id.BrokerID != brokerID {
		return dirIdentity{}, false, errorf(ErrIdentityMismatch,
			"%s says the data directory belongs to broker %d, this broker is --id %d; start it with --id %d or give it its own --data",
			path, id.BrokerID, brokerID, id.BrokerID)
	}
	return id, false, nil
}

// parseIdentity reads key=value lines; '#' starts a comment line. Unknown
// keys are ignored so that a newer Barge may add some.
func parseIdentity(data []byte) (dirIdentity, error) {
	var id dirIdentity
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok {
			return id, fmt.Errorf("line %d: want key=value, have %q", line, text)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		seen[k] = true
		switch k {
		case "version":
			if n, err := strconv.Atoi(v); err != nil || n < 1 || n > metaPropertiesVersion {
				return id, fmt.Errorf("line %d: version %q is not one this Barge reads (1..%d)", line, v, metaPropertiesVersion)
			}
		case "broker.id":
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 0 {
				return id, fmt.Errorf("line %d: broker.id %q is not a broker id", line, v)
			}
			id.BrokerID = int32(n)
		case "directory.id":
			id.DirectoryID = v
		case "cluster.id":
			id.ClusterID = v
		}
	}
	if err := sc.Err(); err != nil {
		return id, err
	}
	for _, k := range []string{"version", "broker.id", "directory.id"} {
		if !seen[k] || (k == "directory.id" && id.DirectoryID == "") {
			return id, fmt.Errorf("missing %s", k)
		}
	}
	return id, nil
}

// writeIdentity replaces dataDir/meta.properties atomically and durably:
// a crash leaves the old file or the new one, never a torn one.
func writeIdentity(dataDir string, id dirIdentity) error {
	var b strings.Builder
	b.WriteString("# Identity of this Barge data directory. Do not copy it to another broker's directory.\n")
	fmt.Fprintf(&b, "version=%d\nbroker.id=%d\ndirectory.id=%s\n", metaPropertiesVersion, id.BrokerID, id.DirectoryID)
	if id.ClusterID != "" {
		fmt.Fprintf(&b, "cluster.id=%s\n", id.ClusterID)
	}
	path := filepath.Join(dataDir, metaPropertiesFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("cluster: write %s: %w", tmp, err)
	}
	_, err = f.WriteString(b.String())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("cluster: write %s: %w", path, err)
	}
	// The rename is durable only once the directory is synced.
	d, err := os.Open(dataDir)
	if err != nil {
		return fmt.Errorf("cluster: sync %s: %w", dataDir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cluster: sync %s: %w", dataDir, err)
	}
	return nil
}

// maxClusterIDScan bounds how many log entries storedClusterID reads: the
// controller writes InitCluster among the first entries of a new log.
const maxClusterIDScan = 1024

// storedClusterID returns the cluster id in this broker's Raft state: the
// restored snapshot's (img) or, before the first snapshot, that of the
// first InitCluster in the log, which is the one the FSM applies. It
// returns "" when the state holds none yet.
func storedClusterID(img *Image, logs raft.LogStore) (string, error) {
	if id := img.ClusterID(); id != "" {
		return id, nil
	}
	first, err := logs.FirstIndex()
	if err != nil {
		return "", fmt.Errorf("cluster: raft log first index: %w", err)
	}
	last, err := logs.LastIndex()
	if err != nil {
		return "", fmt.Errorf("cluster: raft log last index: %w", err)
	}
	if first == 0 {
		return "", nil
	}
	for i := first; i <= last && i < first+maxClusterIDScan; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			return "", fmt.Errorf("cluster: raft log entry %d: %w", i, err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		cmd, err := decodeCommand(l.Data)
		if err != nil {
			continue // refused by the FSM as well
		}
		if p, ok := cmd.Payload.(InitCluster); ok && p.ClusterID != "" {
			return p.ClusterID, nil
		}
	}
	return "", nil
}

// checkClusterID compares the cluster id of the data directory with the one
// in its Raft state, at start. A directory whose meta.properties names
// another cluster than its Raft log was mixed up with another cluster's
// files (a copied meta.properties, a restored backup of the wrong broker).
func checkClusterID(dataDir string, meta dirIdentity, stored string) error {
	if meta.ClusterID == "" || stored == "" || meta.ClusterID == stored {
		return nil
	}
	return errorf(ErrIdentityMismatch,
		"%s names cluster %s, but the raft state in %s belongs to cluster %s; this data directory mixes two clusters' files",
		filepath.Join(dataDir, metaPropertiesFile), meta.ClusterID, filepath.Join(dataDir, "raft"), stored)
}

func (n *Node) setIdentity(id dirIdentity) {
	n.identMu.Lock()
	n.ident = id
	n.identMu.Unlock()
}

func (n *Node) identity() dirIdentity {
	n.identMu.Lock()
	defer n.identMu.Unlock()
	return n.ident
}

// DirectoryID returns the id of this broker's data directory, from its
// meta.properties (valid after Start).
func (n *Node) DirectoryID() string { return n.identity().DirectoryID }

// proposedClusterID is the id the controller writes with InitCluster: the
// one a lone broker chose before it bootstrapped, or a new one.
func (n *Node) proposedClusterID() string {
	if id := n.identity().ClusterID; id != "" {
		return id
	}
	return newTopicID().String()
}

// ownClusterMembers leaves out of members the brokers of other clusters,
// for the controller. Gossip refuses them once both sides know their
// cluster ids, but right after a cluster forms its brokers do not gossip
// its id yet, and memberlist may then have let in a broker of another
// cluster; the controller must still never register it or add it to Raft.
// Foreign are: a broker that gossips another cluster id (before the image
// has one, only this broker may have one: a lone broker chooses it before
// it bootstraps), and a broker that belongs to a formed cluster
// (Bootstrapped) without saying which, unless this cluster knows it
// already (registered, or in the Raft configuration: brokers that
// bootstrapped together, before they learned the id).
func (n *Node) ownClusterMembers(members []Member, servers []raft.Server) []Member {
	img := n.Image()
	ours := img.ClusterID()
	if ours == "" {
		ours = n.identity().ClusterID
	}
	known := func(id int32) bool {
		if _, ok := img.brokers[id]; ok {
			return true
		}
		return slices.ContainsFunc(servers, func(s raft.Server) bool { return s.ID == raftID(id) })
	}
	return slices.DeleteFunc(members, func(m Member) bool {
		foreign := m.ID != n.cfg.ID && ((m.ClusterID != "" && m.ClusterID != ours) ||
			(m.ClusterID == "" && m.Bootstrapped && !known(m.ID)))
		if foreign {
			n.log.Debug("ignoring a member of another cluster", "member", m.ID, "member_cluster_id", m.ClusterID, "cluster_id", ours)
		}
		return foreign
	})
}

// adoptClusterID stores the cluster id of the metadata image in
// meta.properties and in the gossip metadata once the image has one and
// the directory does not. The joinLoop goroutine and the controller call
// it; adoptMu serialises them.
func (n *Node) adoptClusterID() {
	n.adoptMu.Lock()
	defer n.adoptMu.Unlock()
	id := n.Image().ClusterID()
	cur := n.identity()
	switch {
	case id == "" || id == cur.ClusterID:
		return
	case cur.ClusterID != "":
		if n.conflictLogged.Swap(true) {
			return
		}
		// Gossip keeps brokers of other clusters out, and Start refuses a
		// directory whose Raft state names another cluster, so only a
		// broker whose seeds were of two clusters at once could get here.
		n.log.Error("the metadata log names another cluster than the data directory; this broker will not take the new id",
			"log_cluster_id", id, "directory_cluster_id", cur.ClusterID)
		return
	}
	cur.ClusterID = id
	if err := writeIdentity(n.cfg.DataDir, cur); err != nil {
		n.log.Error("cannot store the cluster id in the data directory; retrying", "cluster_id", id, "err", err)
		return
	}
	n.setIdentity(cur)
	n.members.setClusterID(id)
	n.log.Info("cluster id stored in the data directory", "cluster_id", id)
}
