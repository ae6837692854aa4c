package mempool

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

func newPool(t testing.TB, p Params, opts ...Option) *FIFO {
	t.Helper()
	pool, err := New(p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func mkTx(sender string, nonce uint64) ordering.Tx {
	return ordering.Tx{Sender: sender, Nonce: nonce, Data: []byte(fmt.Sprintf("%s/%d", sender, nonce))}
}

func add(t testing.TB, p Pool, txs ...ordering.Tx) {
	t.Helper()
	for _, tx := range txs {
		if err := p.Add(context.Background(), tx, OriginLocal); err != nil {
			t.Fatalf("Add(%s/%d): %v", tx.Sender, tx.Nonce, err)
		}
	}
}

func addErr(p Pool, tx ordering.Tx) error {
	return p.Add(context.Background(), tx, OriginLocal)
}

// names renders txs as "sender/nonce" strings.
func names(txs []ordering.Tx) []string {
	out := make([]string, 0, len(txs))
	for _, tx := range txs {
		out = append(out, fmt.Sprintf("%s/%d", tx.Sender, tx.Nonce))
	}
	return out
}

func eqStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func expectSelect(t *testing.T, p Pool, buckets []int, nb, maxTxs, maxBytes int, want ...string) {
	t.Helper()
	got, _ := p.Select(buckets, nb, maxTxs, maxBytes)
	if !eqStrings(names(got), want) {
		t.Fatalf("Select(%v, %d, %d, %d) = %v, want %v", buckets, nb, maxTxs, maxBytes, names(got), want)
	}
}

// sendersIn returns n distinct sender names whose bucket (of nb) is b.
func sendersIn(b, nb, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		s := fmt.Sprintf("s%d", i)
		if ordering.BucketOf(s, nb) == b {
			out = append(out, s)
		}
	}
	return out
}

func wantReason(t *testing.T, err error, r Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("admitted, want rejection %q", r)
	}
	got, ok := ReasonOf(err)
	if !ok || got != r {
		t.Fatalf("error %v, want reason %q", err, r)
	}
	if !errors.Is(err, r.Sentinel()) {
		t.Fatalf("errors.Is(%v, %v) = false", err, r.Sentinel())
	}
}

// all returns the bucket list 0..nb-1.
func all(nb int) []int {
	bs := make([]int, nb)
	for i := range bs {
		bs[i] = i
	}
	return bs
}
