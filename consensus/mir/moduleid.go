package mir

import "strings"

// ModuleID names a module by a slash-separated path such as "iss/pbft/3".
// The node routes on the first element (Top); a module dispatches the rest
// (Sub) to its submodules.
type ModuleID string

// NodeID identifies a node (a validator) in the system.
type NodeID string

// Top returns the first path element of id.
func (id ModuleID) Top() ModuleID {
	if i := strings.IndexByte(string(id), '/'); i >= 0 {
		return id[:i]
	}
	return id
}

// Sub returns id without its first path element ("" if id has only one).
func (id ModuleID) Sub() ModuleID {
	if i := strings.IndexByte(string(id), '/'); i >= 0 {
		return id[i+1:]
	}
	return ""
}

// Then returns the path id/child.
func (id ModuleID) Then(child ModuleID) ModuleID {
	if id == "" {
		return child
	}
	if child == "" {
		return id
	}
	return id + "/" + child
}

// Valid reports whether id is a non-empty path of non-empty elements.
func (id ModuleID) Valid() bool {
	if id == "" {
		return false
	}
	for _, el := range strings.Split(string(id), "/") {
		if el == "" {
			return false
		}
	}
	return true
}
