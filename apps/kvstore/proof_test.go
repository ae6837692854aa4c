package kvstore

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

func cloneProof(p Proof) Proof {
	q := Proof{OtherPath: bytes.Clone(p.OtherPath), OtherValueHash: bytes.Clone(p.OtherValueHash)}
	for _, s := range p.Siblings {
		q.Siblings = append(q.Siblings, bytes.Clone(s))
	}
	return q
}

func TestProofs(t *testing.T) {
	s := New()
	g := newOpGen(11, 300, 6)
	for range 20 {
		mustApply(t, s, g.batch(50).Txs...)
	}
	if s.Len() < 50 {
		t.Fatalf("only %d keys", s.Len())
	}
	var present, absent int
	for i := range 400 {
		key := fmt.Sprintf("k%d", i)
		v, ok, p, root := s.Prove(key)
		if !bytes.Equal(root, s.Root()) {
			t.Fatal("Prove's root is not the current root")
		}
		// Proofs survive encoding.
		enc, err := mir.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var dec Proof
		if err := mir.Unmarshal(enc, &dec); err != nil {
			t.Fatal(err)
		}
		if ok {
			present++
			if err := VerifyProof(root, key, v, dec); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			if VerifyAbsence(root, key, p) == nil {
				t.Fatalf("%s: absence verified for a present key", key)
			}
			tamperInclusion(t, root, key, v, p)
			continue
		}
		absent++
		if err := VerifyAbsence(root, key, dec); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if VerifyProof(root, key, nil, p) == nil || VerifyProof(root, key, []byte{}, p) == nil {
			t.Fatalf("%s: inclusion verified for an absent key", key)
		}
		tamperAbsence(t, root, key, p)
	}
	if present == 0 || absent == 0 {
		t.Fatalf("present %d, absent %d: test covers one case only", present, absent)
	}
}

func tamperInclusion(t *testing.T, root []byte, key string, v []byte, p Proof) {
	t.Helper()
	bad := func(what string, root []byte, key string, v []byte, p Proof) {
		t.Helper()
		if err := VerifyProof(root, key, v, p); !errors.Is(err, ErrBadProof) {
			t.Fatalf("%s: tampered proof of %s: %v", what, key, err)
		}
	}
	bad("value", root, key, append(bytes.Clone(v), 'x'), p)
	bad("key", root, key+"x", v, p)
	r := bytes.Clone(root)
	r[0] ^= 1
	bad("root", r, key, v, p)
	bad("short root", root[:31], key, v, p)
	for i := range p.Siblings {
		q := cloneProof(p)
		q.Siblings[i][i%32] ^= 0x10
		bad(fmt.Sprintf("sibling %d", i), root, key, v, q)
	}
	q := cloneProof(p)
	q.Siblings = q.Siblings[:len(q.Siblings)-1]
	bad("dropped sibling", root, key, v, q)
	q = cloneProof(p)
	e := EmptyHash(PathBits - len(q.Siblings) - 1)
	q.Siblings = append(q.Siblings, e[:])
	bad("extra sibling", root, key, v, q)
	q = cloneProof(p)
	q.Siblings[0] = q.Siblings[0][:31]
	bad("short sibling", root, key, v, q)
	q = cloneProof(p)
	q.OtherPath = make([]byte, 32)
	bad("other leaf", root, key, v, q)
}

func tamperAbsence(t *testing.T, root []byte, key string, p Proof) {
	t.Helper()
	bad := func(what string, p Proof) {
		t.Helper()
		if err := VerifyAbsence(root, key, p); !errors.Is(err, ErrBadProof) {
			t.Fatalf("%s: tampered absence proof of %s: %v", what, key, err)
		}
	}
	if len(p.OtherPath) > 0 {
		q := cloneProof(p)
		q.OtherValueHash[3] ^= 1
		bad("other value hash", q)
		q = cloneProof(p)
		q.OtherPath[31] ^= 1
		bad("other path", q)
		q = cloneProof(p)
		q.OtherPath, q.OtherValueHash = nil, nil
		bad("dropped other leaf", q)
		q = cloneProof(p)
		kp := KeyPath(key)
		q.OtherPath = kp[:]
		bad("other leaf is the key", q)
	} else {
		q := cloneProof(p)
		q.OtherPath, q.OtherValueHash = make([]byte, 32), make([]byte, 32)
		bad("invented other leaf", q)
	}
	for i := range p.Siblings {
		q := cloneProof(p)
		q.Siblings[i][0] ^= 0x80
		bad(fmt.Sprintf("sibling %d", i), q)
	}
	if len(p.Siblings) > 0 {
		q := cloneProof(p)
		q.Siblings = q.Siblings[1:]
		bad("dropped sibling", q)
	}
	q := cloneProof(p)
	q.Siblings = make([][]byte, PathBits)
	bad("too many siblings", q)
}

// TestAbsenceOtherLeafOutsideSubtree checks that an absence proof cannot
// name, as the leaf occupying the key's position, a leaf of the tree that
// lies elsewhere.
func TestAbsenceOtherLeafOutsideSubtree(t *testing.T) {
	s := New()
	mustApply(t, s, setTx("a", 0, "present", "v"))
	_, _, pp, root := s.Prove("present")
	pk := KeyPath("present")
	vh := sha256.Sum256([]byte("v"))
	forged := Proof{Siblings: pp.Siblings, OtherPath: pk[:], OtherValueHash: vh[:]}
	tried := 0
	for i := 0; tried < 20; i++ {
		key := fmt.Sprintf("absent%d", i)
		kp := KeyPath(key)
		shares := true
		for d := range len(pp.Siblings) {
			shares = shares && bit(&kp, d) == bit(&pk, d)
		}
		if shares {
			continue // the present leaf really is the key's neighbour
		}
		tried++
		if VerifyAbsence(root, key, forged) == nil {
			t.Fatalf("%s: forged absence proof verified", key)
		}
	}
}
