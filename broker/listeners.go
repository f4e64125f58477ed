package broker

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/barge-broker/barge/cluster"
)

// Listener is one named Kafka listener, NAME=host:port: an address to bind
// (--listeners) or to advertise (--advertised-listeners).
type Listener struct {
	Name string
	Addr string
}

func (l Listener) String() string { return l.Name + "=" + l.Addr }

// DefaultListenerName names the one listener of --kafka (and --advertise),
// the shorthand for a broker that clients and brokers reach the same way.
const DefaultListenerName = "PLAINTEXT"

// listenerName is what a listener may be called: Kafka's names are
// identifiers and case-insensitive, so Barge keeps them upper-case.
var listenerName = regexp.MustCompile(`^[A-Z][A-Z0-9_-]*$`)

// ParseListener reads NAME=host:port. The name is upper-cased; the port
// must be a number (0 picks a free port when binding).
func ParseListener(s string) (Listener, error) {
	name, addr, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return Listener{}, fmt.Errorf("listener %q: want NAME=host:port", s)
	}
	l := Listener{Name: strings.ToUpper(strings.TrimSpace(name)), Addr: strings.TrimSpace(addr)}
	if !listenerName.MatchString(l.Name) {
		return Listener{}, fmt.Errorf("listener %q: the name must be letters, digits, '_' or '-', starting with a letter", s)
	}
	if _, _, err := splitPort(l.Addr); err != nil {
		return Listener{}, fmt.Errorf("listener %s: %w", l.Name, err)
	}
	return l, nil
}

// splitPort splits host:port with a numeric port.
func splitPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: want host:port", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("address %q: bad port %q", addr, port)
	}
	return host, p, nil
}

// maxListenersBytes bounds the advertised listeners, as gossiped: the
// other fields of a broker's gossip metadata take about 200 of its 512
// bytes.
const maxListenersBytes = 280

// listenerSpec is one listener as the broker runs it: where it binds and
// what it advertises ("" until bound: the bound address).
type listenerSpec struct {
	name       string
	bind       string
	advertised string
}

// listenerPlan is the resolved listener configuration: the listeners in
// the order given, and the index of the inter-broker one.
type listenerPlan struct {
	specs       []listenerSpec
	interBroker int
	named       bool // --listeners was given (otherwise the --kafka shorthand)
}

// planListeners resolves --listeners, --advertised-listeners and
// --inter-broker-listener, or the --kafka/--advertise shorthand when
// --listeners is empty, and reports the first misconfiguration.
func (c Config) planListeners() (listenerPlan, error) {
	if len(c.Listeners) == 0 {
		if len(c.AdvertisedListeners) > 0 {
			return listenerPlan{}, fmt.Errorf("broker: --advertised-listeners needs --listeners (with --kafka, advertise with --advertise)")
		}
		if c.InterBrokerListener != "" && strings.ToUpper(c.InterBrokerListener) != DefaultListenerName {
			return listenerPlan{}, fmt.Errorf("broker: --inter-broker-listener %s is not a listener: without --listeners the one listener is --kafka, named %s", c.InterBrokerListener, DefaultListenerName)
		}
		if c.KafkaAddr == "" {
			return listenerPlan{}, fmt.Errorf("broker: --kafka must be host:port")
		}
		if _, _, err := splitPort(c.KafkaAddr); err != nil {
			return listenerPlan{}, fmt.Errorf("broker: --kafka: %w", err)
		}
		if c.AdvertisedKafkaAddr != "" {
			if err := checkAdvertised(c.AdvertisedKafkaAddr); err != nil {
				return listenerPlan{}, fmt.Errorf("broker: --advertise: %w", err)
			}
		}
		return listenerPlan{specs: []listenerSpec{{name: DefaultListenerName, bind: c.KafkaAddr, advertised: c.AdvertisedKafkaAddr}}}, nil
	}
	if c.AdvertisedKafkaAddr != "" {
		return listenerPlan{}, fmt.Errorf("broker: --advertise belongs to --kafka; with --listeners advertise with --advertised-listeners")
	}
	plan := listenerPlan{named: true, interBroker: -1}
	byName := map[string]int{}
	byPort := map[int]string{}
	for _, l := range c.Listeners {
		if _, dup := byName[l.Name]; dup {
			return listenerPlan{}, fmt.Errorf("broker: --listeners names %s twice", l.Name)
		}
		_, port, err := splitPort(l.Addr)
		if err != nil {
			return listenerPlan{}, fmt.Errorf("broker: --listeners %s: %w", l.Name, err)
		}
		// One port, one listener: the broker tells listeners apart by the
		// local port a connection arrived on.
		if other, dup := byPort[port]; dup && port != 0 {
			return listenerPlan{}, fmt.Errorf("broker: --listeners %s and %s both use port %d; each listener needs its own port", other, l.Name, port)
		}
		byPort[port] = l.Name
		byName[l.Name] = len(plan.specs)
		plan.specs = append(plan.specs, listenerSpec{name: l.Name, bind: l.Addr})
	}
	advertised := map[string]bool{}
	for _, a := range c.AdvertisedListeners {
		i, ok := byName[a.Name]
		if !ok {
			return listenerPlan{}, fmt.Errorf("broker: --advertised-listeners names %s, which --listeners does not listen on (listeners: %s)", a.Name, strings.Join(names(c.Listeners), ", "))
		}
		if advertised[a.Name] {
			return listenerPlan{}, fmt.Errorf("broker: --advertised-listeners names %s twice", a.Name)
		}
		advertised[a.Name] = true
		if err := checkAdvertised(a.Addr); err != nil {
			return listenerPlan{}, fmt.Errorf("broker: --advertised-listeners %s: %w", a.Name, err)
		}
		plan.specs[i].advertised = a.Addr
	}
	for _, s := range plan.specs {
		if s.advertised != "" {
			continue
		}
		// Not advertised: clients get the bound address, which must then
		// be one they can dial.
		host, _, _ := splitPort(s.bind)
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			return listenerPlan{}, fmt.Errorf("broker: listener %s binds %s, which clients cannot dial; give it an address in --advertised-listeners", s.name, s.bind)
		}
	}
	// Every broker gossips its advertised listeners in its node metadata,
	// which memberlist caps at 512 bytes for everything; past this share
	// the broker would be refused by its peers, not at start.
	size := 0
	for _, s := range plan.specs {
		size += len(s.name) + 1 + max(len(s.advertised), len(s.bind)) + 1
	}
	if size > maxListenersBytes {
		return listenerPlan{}, fmt.Errorf("broker: the advertised listeners take %d bytes of gossip metadata, at most %d: use fewer or shorter names and addresses", size, maxListenersBytes)
	}
	ib := strings.ToUpper(c.InterBrokerListener)
	if ib == "" {
		if len(plan.specs) > 1 {
			return listenerPlan{}, fmt.Errorf("broker: with %d listeners, --inter-broker-listener must say which one brokers replicate over (one of %s)", len(plan.specs), strings.Join(names(c.Listeners), ", "))
		}
		ib = plan.specs[0].name
	}
	i, ok := byName[ib]
	if !ok {
		return listenerPlan{}, fmt.Errorf("broker: --inter-broker-listener %s is not in --listeners (%s)", c.InterBrokerListener, strings.Join(names(c.Listeners), ", "))
	}
	plan.interBroker = i
	return plan, nil
}

// checkAdvertised refuses an address no client can dial.
func checkAdvertised(addr string) error {
	host, port, err := splitPort(addr)
	switch {
	case err != nil:
		return err
	case host == "":
		return fmt.Errorf("address %q has no host; advertise a name or address clients can dial", addr)
	case net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified():
		return fmt.Errorf("address %q is a wildcard that only a listener can bind; advertise a name or address clients can dial", addr)
	case port == 0:
		return fmt.Errorf("address %q has port 0; advertise the port clients dial", addr)
	}
	return nil
}

func names(ls []Listener) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Name
	}
	return out
}

// boundListener is a listening Kafka listener.
type boundListener struct {
	name       string
	ln         net.Listener
	port       int    // the bound port, which identifies the listener of a connection
	advertised string // what clients are told, the bound address when not configured
}

// listen binds every listener of the plan, or none: on an error the ones
// already bound are closed again.
func (b *Broker) listen() error {
	plan, err := b.cfg.planListeners()
	if err != nil {
		return err
	}
	for _, s := range plan.specs {
		ln, err := net.Listen("tcp", s.bind)
		if err != nil {
			b.closeListeners()
			b.listeners = nil
			if !plan.named {
				return fmt.Errorf("broker: listen on --kafka %s: %w", s.bind, err)
			}
			return fmt.Errorf("broker: listen on listener %s (%s): %w", s.name, s.bind, err)
		}
		l := boundListener{name: s.name, ln: ln, advertised: s.advertised}
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
			l.port = tcp.Port
		}
		if l.advertised == "" {
			l.advertised = ln.Addr().String()
		}
		b.listeners = append(b.listeners, l)
	}
	b.interBroker, b.listenersNamed = plan.interBroker, plan.named
	return nil
}

// closeListeners closes the listeners a server is not serving yet.
func (b *Broker) closeListeners() {
	for _, l := range b.listeners {
		l.ln.Close()
	}
	if b.httpLn != nil {
		b.httpLn.Close()
	}
}

// listenerFor names the listener a connection with local address local
// arrived on. Every listener has its own port (planListeners), so the port
// tells. "" when the broker runs no listener (handler tests).
func (b *Broker) listenerFor(local net.Addr) string {
	switch {
	case len(b.listeners) == 0:
		return ""
	case len(b.listeners) == 1:
		return b.listeners[0].name
	}
	if tcp, ok := local.(*net.TCPAddr); ok {
		for _, l := range b.listeners {
			if l.port == tcp.Port {
				return l.name
			}
		}
	}
	return b.listeners[b.interBroker].name
}

// advertisedAddr is the address of broker br that a client which came in on
// listener name is told, and whether br has that listener (Kafka leaves
// brokers without it out of the answer).
func advertisedAddr(br cluster.Broker, listener string) (host string, port int32, ok bool) {
	addr, ok := br.ListenerAddr(listener)
	if !ok {
		return "", 0, false
	}
	host, port = splitHostPort(addr)
	return host, port, true
}

// listenerSummary is NAME=bound->advertised for the start-up log line.
func (b *Broker) listenerSummary() string {
	parts := make([]string, len(b.listeners))
	for i, l := range b.listeners {
		parts[i] = l.name + "=" + l.ln.Addr().String() + "->" + l.advertised
	}
	return strings.Join(parts, ",")
}
