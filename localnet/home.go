package localnet

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mirsubnet/mirsubnet/consensus/iss"
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// Files of a node's home directory.
const (
	ConfigFile  = "config.toml"
	KeyFile     = "node.key"
	GenesisFile = "genesis.json"
	DataDir     = "data"
)

// NodeConfig is config.toml: one validator's settings. Environment variables
// MIRSUBNET_<FIELD> (e.g. MIRSUBNET_LISTEN) and flags override it.
type NodeConfig struct {
	// ID is the validator's ID in the genesis validator set.
	ID string `toml:"id"`
	// Listen are the libp2p listen multiaddrs.
	Listen []string `toml:"listen"`
	// RecordEvents records the event log under data/eventlog.
	RecordEvents bool `toml:"record_events"`
	// MetricsAddr serves Prometheus /metrics (host:port; empty: off).
	MetricsAddr string `toml:"metrics_addr"`
	// BatchTimeoutMS is the mempool's batch timeout in milliseconds.
	BatchTimeoutMS int `toml:"batch_timeout_ms"`
	// ISS protocol tunables (zero: defaults).
	SegmentLength      int `toml:"segment_length"`
	MaxBatchTxs        int `toml:"max_batch_txs"`
	MaxInFlight        int `toml:"max_in_flight"`
	EmptyProposalMS    int `toml:"empty_proposal_ms"`
	ViewChangeTimeoutS int `toml:"view_change_timeout_s"`
	// MempoolMaxTxs bounds the mempool (zero: default).
	MempoolMaxTxs int `toml:"mempool_max_txs"`
}

// Genesis is genesis.json: the validator set every node starts from.
type Genesis struct {
	ChainID      string           `json:"chain_id"`
	ConfigOffset int              `json:"config_offset"`
	Validators   []GenesisMember  `json:"validators"`
	Created      time.Time        `json:"created"`
	Params       *json.RawMessage `json:"params,omitempty"`
}

// GenesisMember is one validator of the genesis set.
type GenesisMember struct {
	ID     string   `json:"id"`
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
	Weight string   `json:"weight"`
}

// Set returns the validated validator set.
func (g Genesis) Set() (*membership.Set, error) {
	vals := make([]membership.Validator, 0, len(g.Validators))
	for _, v := range g.Validators {
		w, err := membership.ParseWeight(v.Weight)
		if err != nil {
			return nil, fmt.Errorf("validator %q: weight %q: %w", v.ID, v.Weight, err)
		}
		vals = append(vals, membership.Validator{ID: mir.NodeID(v.ID), PeerID: v.PeerID, Addrs: v.Addrs, Weight: w})
	}
	return membership.NewSet(vals)
}

// LoadConfig reads config.toml, then applies MIRSUBNET_* environment
// overrides. Unknown keys are an error (a typo must not pass silently).
func LoadConfig(home string) (NodeConfig, error) {
	var c NodeConfig
	path := filepath.Join(home, ConfigFile)
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		return c, fmt.Errorf("%s: unknown settings %v", path, undec)
	}
	if v := os.Getenv("MIRSUBNET_LISTEN"); v != "" {
		c.Listen = strings.Split(v, ",")
	}
	if v := os.Getenv("MIRSUBNET_RECORD_EVENTS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("MIRSUBNET_RECORD_EVENTS=%q: %w", v, err)
		}
		c.RecordEvents = b
	}
	if v := os.Getenv("MIRSUBNET_METRICS_ADDR"); v != "" {
		c.MetricsAddr = v
	}
	if c.ID == "" {
		return c, fmt.Errorf("%s: id is required", path)
	}
	if len(c.Listen) == 0 {
		return c, fmt.Errorf("%s: listen is required", path)
	}
	return c, nil
}

func SaveConfig(home string, c NodeConfig) error {
	f, err := os.OpenFile(filepath.Join(home, ConfigFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	return toml.NewEncoder(f).Encode(c)
}

func LoadGenesis(home string) (Genesis, *membership.Set, error) {
	var g Genesis
	path := filepath.Join(home, GenesisFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return g, nil, err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return g, nil, fmt.Errorf("%s: %w", path, err)
	}
	set, err := g.Set()
	if err != nil {
		return g, nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, set, nil
}

func SaveGenesis(path string, g Genesis) error {
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// NewKey creates a fresh Ed25519 identity key and writes it to home/node.key.
func NewKey(home string) (ic.PrivKey, peer.ID, error) {
	priv, _, err := ic.GenerateEd25519Key(nil)
	if err != nil {
		return nil, "", err
	}
	b, err := ic.MarshalPrivateKey(priv)
	if err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(filepath.Join(home, KeyFile), b, 0o600); err != nil {
		return nil, "", err
	}
	pid, err := peer.IDFromPrivateKey(priv)
	return priv, pid, err
}

func LoadKey(home string) (ic.PrivKey, error) {
	path := filepath.Join(home, KeyFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ic.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ISSParams applies the config's overrides to the default parameters.
func ISSParams(c NodeConfig) iss.Params {
	p := iss.DefaultParams()
	if c.SegmentLength > 0 {
		p.SegmentLength = c.SegmentLength
	}
	if c.MaxBatchTxs > 0 {
		p.MaxBatchTxs = c.MaxBatchTxs
	}
	if c.MaxInFlight > 0 {
		p.MaxInFlight = c.MaxInFlight
	}
	if c.EmptyProposalMS > 0 {
		p.EmptyProposalPeriod = time.Duration(c.EmptyProposalMS) * time.Millisecond
	}
	if c.ViewChangeTimeoutS > 0 {
		p.ViewChangeTimeout = time.Duration(c.ViewChangeTimeoutS) * time.Second
	}
	return p
}

// FreePorts returns n TCP ports on 127.0.0.1 that the OS assigned (each was
// free when probed; a node that fails to bind reports a clear error).
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
