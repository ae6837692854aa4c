package main

import (
	"fmt"
	"strings"

	"github.com/mirsubnet/mirsubnet/consensus/eventlog"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/sample"
)

// Header metadata keys written by the commands that record event logs.
const (
	metaMembers  = "members"  // comma-separated node IDs
	metaProtocol = "protocol" // what the node ran
)

func init() {
	eventlog.RegisterFactory(string(sample.ModRBC), func(node mir.NodeID, meta map[string]string) (mir.PassiveModule, error) {
		members, err := membersFromMeta(meta)
		if err != nil {
			return nil, err
		}
		return sample.NewRBC(node, members), nil
	})
	eventlog.RegisterFactory(string(sample.ModApp), func(mir.NodeID, map[string]string) (mir.PassiveModule, error) {
		return sample.NewCollector(), nil
	})
}

// membersFromMeta reads the membership a recording command stored.
func membersFromMeta(meta map[string]string) ([]mir.NodeID, error) {
	s := meta[metaMembers]
	if s == "" {
		return nil, fmt.Errorf("the log header has no %q metadata (was it written by mirsubnet sample?)", metaMembers)
	}
	var members []mir.NodeID
	for _, m := range strings.Split(s, ",") {
		if m == "" {
			return nil, fmt.Errorf("bad %q metadata %q", metaMembers, s)
		}
		members = append(members, mir.NodeID(m))
	}
	return members, nil
}

// membersMeta is the inverse of membersFromMeta.
func membersMeta(members []mir.NodeID) string {
	s := make([]string, len(members))
	for i, m := range members {
		s[i] = string(m)
	}
	return strings.Join(s, ",")
}
