package itests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/client"
	"github.com/mirsubnet/mirsubnet/localnet"
)

// cluster is a running local subnet of validator processes and one client
// connection per validator.
type cluster struct {
	t  *testing.T
	nw *localnet.Network

	mu sync.Mutex
	// procs[i] is validator i's current process (nil while it is down).
	procs []*localnet.Proc
	// outs[i] collects validator i's stdout over all its processes.
	outs []*syncBuffer
	// clients[i] is the connection to validator i, nil until dialled or
	// after it broke; dialFailed[i] is when dialling last failed (redials
	// wait a little so a down node is not hammered).
	clients    []*client.Client
	dialFailed []time.Time
}

// startCluster generates n validators (tune adjusts their config), starts
// them and registers their shutdown; on failure it prints every node's logs.
func startCluster(t *testing.T, ctx context.Context, n int, tune func(*localnet.NodeConfig)) *cluster {
	t.Helper()
	nw, err := localnet.Generate(localnet.NetworkSpec{Dir: t.TempDir(), Nodes: n, Tune: tune})
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, nw: nw, procs: make([]*localnet.Proc, n), outs: make([]*syncBuffer, n),
		clients: make([]*client.Client, n), dialFailed: make([]time.Time, n)}
	for i := range c.outs {
		c.outs[i] = &syncBuffer{}
	}
	t.Cleanup(c.shutdown)
	for i := 0; i < n; i++ {
		c.start(ctx, i)
	}
	return c
}

// start starts validator i from its home and waits until it is ready.
func (c *cluster) start(ctx context.Context, i int) {
	c.t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := localnet.Start(sctx, binPath, c.nw.IDs[i], c.nw.Homes[i], c.outs[i])
	if err != nil {
		c.t.Fatalf("start %s: %v", c.nw.IDs[i], err)
	}
	c.mu.Lock()
	c.procs[i] = p
	c.mu.Unlock()
}

// kill SIGKILLs validator i and drops the connection to it.
func (c *cluster) kill(i int) {
	c.mu.Lock()
	p := c.procs[i]
	c.procs[i] = nil
	c.mu.Unlock()
	if p != nil {
		p.Kill()
	}
	c.dropClient(i, nil)
}

// shutdown stops every validator and client; after a failure it prints the
// nodes' output first.
func (c *cluster) shutdown() {
	c.mu.Lock()
	procs := append([]*localnet.Proc(nil), c.procs...)
	clients := append([]*client.Client(nil), c.clients...)
	c.mu.Unlock()
	for _, cl := range clients {
		if cl != nil {
			_ = cl.Close()
		}
	}
	for _, p := range procs {
		if p != nil {
			if err := p.Stop(10 * time.Second); err != nil {
				c.t.Logf("stop %s: %v", p.ID, err)
			}
		}
	}
	if c.t.Failed() {
		c.printLogs()
	}
}

// printLogs prints each node's stdout and the tail of its stderr.log.
func (c *cluster) printLogs() {
	for i, home := range c.nw.Homes {
		b, _ := os.ReadFile(filepath.Join(home, "stderr.log"))
		c.t.Logf("==== %s stdout:\n%s==== %s stderr (tail):\n%s", c.nw.IDs[i], c.outs[i].String(), c.nw.IDs[i], tail(string(b), 60))
	}
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// client returns a connection to validator i, dialling it if needed.
func (c *cluster) client(ctx context.Context, i int) (*client.Client, error) {
	c.mu.Lock()
	if cl := c.clients[i]; cl != nil {
		c.mu.Unlock()
		return cl, nil
	}
	if time.Since(c.dialFailed[i]) < 200*time.Millisecond {
		c.mu.Unlock()
		return nil, fmt.Errorf("%s: recently unreachable", c.nw.IDs[i])
	}
	// Dial under the lock: concurrent callers wait for one dial rather
	// than each creating a libp2p host.
	defer c.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cl, err := client.Dial(dctx, c.nw.Addrs[i], nil)
	if err != nil {
		c.dialFailed[i] = time.Now()
		return nil, err
	}
	c.clients[i] = cl
	return cl, nil
}

// dropClient closes the connection to validator i if it is still cl (or
// whatever it is, for cl nil), so that the next call redials.
func (c *cluster) dropClient(i int, cl *client.Client) {
	c.mu.Lock()
	cur := c.clients[i]
	if cur != nil && (cl == nil || cur == cl) {
		c.clients[i] = nil
	} else {
		cur = nil
	}
	c.mu.Unlock()
	if cur != nil {
		_ = cur.Close()
	}
}

// submitResult classifies one submission.
type submitResult int

const (
	resAdmitted  submitResult = iota // admitted into the node's mempool
	resPending                       // already pending there (duplicate, nonce taken)
	resCommitted                     // nonce too low: it (or another tx with its nonce) committed
	resRefused                       // refused (full, nonce too high, ...) or node unreachable
)

// submit sends tx to validator i and classifies the answer; reason is the
// rejection reason or "unreachable".
func (c *cluster) submit(ctx context.Context, i int, tx txSpec) (submitResult, string) {
	cl, err := c.client(ctx, i)
	if err != nil {
		return resRefused, "unreachable"
	}
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err = cl.Submit(sctx, tx.Tx)
	if err == nil {
		return resAdmitted, ""
	}
	var rej *client.Rejection
	if !errors.As(err, &rej) {
		c.dropClient(i, cl)
		return resRefused, "unreachable"
	}
	switch rej.Reason {
	case "duplicate", "nonce taken":
		return resPending, rej.Reason
	case "nonce too low":
		return resCommitted, rej.Reason
	}
	return resRefused, rej.Reason
}

// status asks validator i for its status.
func (c *cluster) status(ctx context.Context, i int) (client.StatusReply, error) {
	cl, err := c.client(ctx, i)
	if err != nil {
		return client.StatusReply{}, err
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := cl.Status(sctx)
	if err != nil {
		c.dropClient(i, cl)
	}
	return st, err
}

// statuses asks the given validators for their status concurrently, so the
// replies describe (nearly) the same moment.
func (c *cluster) statuses(ctx context.Context, nodes []int) ([]client.StatusReply, error) {
	out := make([]client.StatusReply, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for k, i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[k], errs[k] = c.status(ctx, i)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// all returns 0..n-1.
func (c *cluster) all() []int {
	s := make([]int, len(c.nw.IDs))
	for i := range s {
		s[i] = i
	}
	return s
}

// describe formats statuses for failure messages.
func describe(sts []client.StatusReply) string {
	var b strings.Builder
	for _, st := range sts {
		fmt.Fprintf(&b, "[%s h=%d epoch=%d stable=%d delivered=%d peers=%d pool=%d root=%x] ",
			st.Node, st.Height, st.Epoch, st.StableEpoch, st.Delivered, st.Peers, st.PoolTxs, shortRoot(st.StateRoot))
	}
	return b.String()
}

func shortRoot(r []byte) []byte {
	if len(r) > 6 {
		return r[:6]
	}
	return r
}

// waitFor polls cond every period until it holds or the deadline passes;
// it returns the last error cond reported.
func waitFor(ctx context.Context, timeout, period time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %v: %w", timeout, err)
		case <-t.C:
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
