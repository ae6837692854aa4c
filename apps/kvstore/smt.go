package kvstore

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
)

// PathBits is the depth of the sparse Merkle tree: paths are SHA-256
// digests.
const PathBits = 256

// Hash is a SHA-256 digest: a path, a node hash or a root.
type Hash = [32]byte

// Domain-separation prefixes. Node hashes use 0x00/0x01; paths use 0x1x so
// that no path preimage is ever a node-hash preimage.
const (
	tagLeaf  = 0x00
	tagInner = 0x01
	tagKey   = 0x10
	tagNonce = 0x11
	tagMeta  = 0x12
)

// emptyHashes[h] is the hash of an empty subtree of height h.
var emptyHashes = func() (e [PathBits + 1]Hash) {
	for h := 1; h <= PathBits; h++ {
		e[h] = innerHash(&e[h-1], &e[h-1])
	}
	return e
}()

// EmptyHash returns the hash of an empty subtree of height h (0..PathBits);
// EmptyHash(PathBits) is the root of an empty tree.
func EmptyHash(h int) Hash { return emptyHashes[h] }

func leafHash(path, valueHash *Hash) Hash {
	var b [1 + 64]byte
	b[0] = tagLeaf
	copy(b[1:], path[:])
	copy(b[33:], valueHash[:])
	return sha256.Sum256(b[:])
}

func innerHash(l, r *Hash) Hash {
	var b [1 + 64]byte
	b[0] = tagInner
	copy(b[1:], l[:])
	copy(b[33:], r[:])
	return sha256.Sum256(b[:])
}

// taggedPath returns SHA-256(tag || s).
func taggedPath(tag byte, s string) Hash {
	var buf [1 + MaxKeyLen]byte
	if len(s) < len(buf) {
		return sha256.Sum256(append(append(buf[:0], tag), s...))
	}
	h := sha256.New()
	h.Write([]byte{tag})
	h.Write([]byte(s))
	var p Hash
	h.Sum(p[:0])
	return p
}

// KeyPath returns the tree path of a key.
func KeyPath(key string) Hash { return taggedPath(tagKey, key) }

// NoncePath returns the tree path of a sender's nonce.
func NoncePath(sender string) Hash { return taggedPath(tagNonce, sender) }

// bit returns bit i (0 = most significant) of a path.
func bit(p *Hash, i int) byte { return p[i>>3] >> (7 - i&7) & 1 }

// leaf is a leaf's content; its hash is leafHash(path, valueHash).
type leaf struct {
	path      Hash
	valueHash Hash
}

// node is a tree node: a leaf (leaf != nil, no children) or an inner node
// with at least two leaves below it (at most one child nil, and a nil
// child's sibling is an inner node).
type node struct {
	// hash is the node's hash; valid unless dirty.
	hash Hash
	// left and right are an inner node's children (nil = empty subtree).
	left, right *node
	// leaf is non-nil exactly for leaves.
	leaf *leaf
	// dirty marks a node whose hash must be recomputed: an inner node with
	// a changed subtree, or a leaf whose value changed.
	dirty bool
}

// leafNode is a leaf and its node, allocated together.
type leafNode struct {
	n node
	l leaf
}

// newLeaf returns a dirty leaf node.
func newLeaf(path, valueHash *Hash) *node {
	ln := &leafNode{l: leaf{path: *path, valueHash: *valueHash}}
	ln.n.leaf, ln.n.dirty = &ln.l, true
	return &ln.n
}

// tree is a compact sparse Merkle tree (see the package documentation).
// A dirty node's ancestors are dirty, except above the leaves in touched,
// whose paths rootHash marks first. Once rootHash has run no node is dirty,
// and readers may walk the tree concurrently until the next change.
type tree struct {
	// root is the root node, nil for an empty tree.
	root *node
	// touched holds the leaves update changed since the last rootHash.
	touched []*node
}

// set inserts the leaf l, or updates the value of the leaf at l.path in
// place, and returns l's leaf node: it stays the node of l.path until the
// path is removed, so later changes of its value can go through update.
// The leaf's hash is computed by the next rootHash, once however often the
// leaf changed before it.
func (t *tree) set(l leaf) *node {
	var ln *node
	t.root = set(t.root, 0, &l, &ln)
	return ln
}

func set(n *node, depth int, l *leaf, ln **node) *node {
	if n == nil {
		*ln = newLeaf(&l.path, &l.valueHash)
		return *ln
	}
	if n.leaf != nil {
		if n.leaf.path == l.path {
			n.leaf.valueHash = l.valueHash
			n.dirty = true
			*ln = n
			return n
		}
		*ln = newLeaf(&l.path, &l.valueHash)
		return split(n, *ln, depth)
	}
	n.dirty = true
	if bit(&l.path, depth) == 0 {
		n.left = set(n.left, depth+1, l, ln)
	} else {
		n.right = set(n.right, depth+1, l, ln)
	}
	return n
}

// update sets the value hash of ln, a leaf node set returned and that is
// still in the tree, without walking down to it: rootHash marks its
// ancestors, once however often the leaf changed.
func (t *tree) update(ln *node, valueHash *Hash) {
	ln.leaf.valueHash = *valueHash
	if !ln.dirty {
		ln.dirty = true
		t.touched = append(t.touched, ln)
	}
}

// split returns the subtree at depth holding two leaves with different
// paths that agree on their first depth bits.
func split(a, b *node, depth int) *node {
	in := &node{dirty: true}
	ba, bb := bit(&a.leaf.path, depth), bit(&b.leaf.path, depth)
	switch {
	case ba != bb && ba == 0:
		in.left, in.right = a, b
	case ba != bb:
		in.left, in.right = b, a
	case ba == 0:
		in.left = split(a, b, depth+1)
	default:
		in.right = split(a, b, depth+1)
	}
	return in
}

// remove deletes the leaf at path if there is one.
func (t *tree) remove(path *Hash) { t.root, _ = remove(t.root, 0, path) }

func remove(n *node, depth int, path *Hash) (*node, bool) {
	if n == nil {
		return nil, false
	}
	if n.leaf != nil {
		if n.leaf.path == *path {
			return nil, true
		}
		return n, false
	}
	var removed bool
	if bit(path, depth) == 0 {
		n.left, removed = remove(n.left, depth+1, path)
	} else {
		n.right, removed = remove(n.right, depth+1, path)
	}
	if !removed {
		return n, false
	}
	// Keep the representation canonical: a subtree with one leaf is that leaf.
	switch {
	case n.left == nil && n.right == nil:
		return nil, true
	case n.left == nil && n.right.leaf != nil:
		return n.right, true
	case n.right == nil && n.left.leaf != nil:
		return n.left, true
	}
	n.dirty = true
	return n, true
}

// rootHash rehashes the dirty nodes and returns the root.
func (t *tree) rootHash() Hash {
	for _, ln := range t.touched {
		// Mark the inner nodes on the leaf's path. (A leaf removed since
		// it was touched marks a path that exists no longer, or part of
		// another: harmless, those nodes are only hashed again.)
		path := &ln.leaf.path
		for n, depth := t.root, 0; n != nil && n.leaf == nil; depth++ {
			n.dirty = true
			if bit(path, depth) == 0 {
				n = n.left
			} else {
				n = n.right
			}
		}
	}
	clear(t.touched)
	t.touched = t.touched[:0]
	return rehash(t.root, 0)
}

func rehash(n *node, depth int) Hash {
	if n == nil {
		return emptyHashes[PathBits-depth]
	}
	if n.dirty {
		if n.leaf != nil {
			n.hash = leafHash(&n.leaf.path, &n.leaf.valueHash)
		} else {
			l, r := rehash(n.left, depth+1), rehash(n.right, depth+1)
			n.hash = innerHash(&l, &r)
		}
		n.dirty = false
	}
	return n.hash
}

// hashAt returns a clean node's hash.
func hashAt(n *node, depth int) Hash {
	if n == nil {
		return emptyHashes[PathBits-depth]
	}
	return n.hash
}

// nodeSlab hands out nodes from chunks, for building large trees with few
// allocations.
type nodeSlab struct{ free []node }

func (a *nodeSlab) alloc() *node {
	if len(a.free) == 0 {
		a.free = make([]node, 4096)
	}
	n := &a.free[0]
	a.free = a.free[1:]
	return n
}

// build returns the tree holding leaves, which are sorted by path without
// duplicates; the inner nodes are dirty.
func build(leaves []leaf) *node {
	var a nodeSlab
	return buildAt(&a, leaves, 0)
}

func buildAt(a *nodeSlab, leaves []leaf, depth int) *node {
	switch len(leaves) {
	case 0:
		return nil
	case 1:
		n := a.alloc()
		n.leaf = &leaves[0]
		n.hash = leafHash(&n.leaf.path, &n.leaf.valueHash)
		return n
	}
	i := sort.Search(len(leaves), func(i int) bool { return bit(&leaves[i].path, depth) == 1 })
	n := a.alloc()
	n.dirty = true
	n.left, n.right = buildAt(a, leaves[:i], depth+1), buildAt(a, leaves[i:], depth+1)
	return n
}

// Proof is a Merkle proof that a key holds a value (inclusion) or holds
// none (absence) under a state root.
type Proof struct {
	_ struct{} `cbor:",toarray"`
	// Siblings are the hashes of the siblings of the nodes on the key's path,
	// from depth 1 down to the depth of the subtree that holds the key's
	// position (a leaf or an empty subtree); each is 32 bytes.
	Siblings [][]byte
	// OtherPath and OtherValueHash describe, in an absence proof, the one leaf
	// that occupies the key's subtree (its path differs from the key's); both
	// are empty when that subtree is empty.
	OtherPath      []byte
	OtherValueHash []byte
}

// ErrBadProof is returned when a proof does not verify.
var ErrBadProof = errors.New("kvstore: proof does not verify")

// prove returns the siblings down to path's position and the leaf found
// there (nil if the position is empty).
func (t *tree) prove(path *Hash) (Proof, *leaf) {
	var p Proof
	hashes := make([]Hash, 0, 64)
	n := t.root
	for depth := 0; n != nil && n.leaf == nil; depth++ {
		var sib *node
		if bit(path, depth) == 0 {
			n, sib = n.left, n.right
		} else {
			n, sib = n.right, n.left
		}
		hashes = append(hashes, hashAt(sib, depth+1))
	}
	p.Siblings = make([][]byte, len(hashes))
	for i := range hashes {
		p.Siblings[i] = hashes[i][:]
	}
	if n == nil {
		return p, nil
	}
	return p, n.leaf
}

// foldProof computes the root from the hash of the subtree at depth
// len(siblings) on path.
func foldProof(path *Hash, h Hash, siblings [][]byte) (Hash, error) {
	if len(siblings) >= PathBits {
		return Hash{}, fmt.Errorf("%w: %d siblings", ErrBadProof, len(siblings))
	}
	for i := len(siblings) - 1; i >= 0; i-- {
		if len(siblings[i]) != 32 {
			return Hash{}, fmt.Errorf("%w: sibling %d has %d bytes", ErrBadProof, i, len(siblings[i]))
		}
		s := Hash(siblings[i])
		if bit(path, i) == 0 {
			h = innerHash(&h, &s)
		} else {
			h = innerHash(&s, &h)
		}
	}
	return h, nil
}

func checkRoot(root []byte, got Hash) error {
	if len(root) != 32 || Hash(root) != got {
		return fmt.Errorf("%w: root mismatch", ErrBadProof)
	}
	return nil
}

// VerifyProof checks that key holds value in the state with the given root.
func VerifyProof(root []byte, key string, value []byte, p Proof) error {
	if len(p.OtherPath) != 0 || len(p.OtherValueHash) != 0 {
		return fmt.Errorf("%w: absence proof used for inclusion", ErrBadProof)
	}
	path := KeyPath(key)
	vh := sha256.Sum256(value)
	got, err := foldProof(&path, leafHash(&path, &vh), p.Siblings)
	if err != nil {
		return err
	}
	return checkRoot(root, got)
}

// VerifyAbsence checks that key holds no value in the state with the given
// root.
func VerifyAbsence(root []byte, key string, p Proof) error {
	path := KeyPath(key)
	depth := len(p.Siblings)
	if depth >= PathBits {
		return fmt.Errorf("%w: %d siblings", ErrBadProof, depth)
	}
	var h Hash
	switch {
	case len(p.OtherPath) == 0 && len(p.OtherValueHash) == 0:
		h = emptyHashes[PathBits-depth]
	case len(p.OtherPath) == 32 && len(p.OtherValueHash) == 32:
		op, ovh := Hash(p.OtherPath), Hash(p.OtherValueHash)
		if op == path {
			return fmt.Errorf("%w: the other leaf is the key's", ErrBadProof)
		}
		// The other leaf must lie in the key's subtree: same first depth bits.
		for i := range depth {
			if bit(&op, i) != bit(&path, i) {
				return fmt.Errorf("%w: the other leaf is outside the key's subtree", ErrBadProof)
			}
		}
		h = leafHash(&op, &ovh)
	default:
		return fmt.Errorf("%w: malformed other leaf", ErrBadProof)
	}
	got, err := foldProof(&path, h, p.Siblings)
	if err != nil {
		return err
	}
	return checkRoot(root, got)
}
