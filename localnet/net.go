package localnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// NetworkSpec describes a generated local subnet.
type NetworkSpec struct {
	Dir          string
	Nodes        int
	RecordEvents bool
	Tune         func(*NodeConfig)
}

// Network is a generated local subnet: one home directory per validator.
type Network struct {
	Dir   string
	Homes []string
	IDs   []string
	Addrs []string // client dial addresses (multiaddr with /p2p/)
}

// Generate creates keys, configs and a shared genesis for n
// validators on 127.0.0.1 with OS-assigned ports.
func Generate(spec NetworkSpec) (*Network, error) {
	if spec.Nodes < 1 {
		return nil, fmt.Errorf("need at least one node, got %d", spec.Nodes)
	}
	if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
		return nil, err
	}
	ports, err := FreePorts(spec.Nodes)
	if err != nil {
		return nil, err
	}
	nw := &Network{Dir: spec.Dir}
	g := Genesis{ChainID: "mirsubnet-local", ConfigOffset: 2, Created: time.Now().UTC()}
	for i := 0; i < spec.Nodes; i++ {
		id := fmt.Sprintf("n%d", i)
		home := filepath.Join(spec.Dir, id)
		if err := os.MkdirAll(home, 0o755); err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(home, ConfigFile)); err == nil {
			return nil, fmt.Errorf("%s already holds a node; use a fresh --dir", home)
		}
		_, pid, err := NewKey(home)
		if err != nil {
			return nil, err
		}
		listen := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ports[i])
		cfg := NodeConfig{ID: id, Listen: []string{listen}, RecordEvents: spec.RecordEvents}
		if spec.Tune != nil {
			spec.Tune(&cfg)
		}
		if err := SaveConfig(home, cfg); err != nil {
			return nil, err
		}
		g.Validators = append(g.Validators, GenesisMember{ID: id, PeerID: pid.String(), Addrs: []string{listen}, Weight: "1"})
		nw.Homes = append(nw.Homes, home)
		nw.IDs = append(nw.IDs, id)
		nw.Addrs = append(nw.Addrs, listen+"/p2p/"+pid.String())
	}
	for _, home := range nw.Homes {
		if err := SaveGenesis(filepath.Join(home, GenesisFile), g); err != nil {
			return nil, err
		}
	}
	if _, err := g.Set(); err != nil {
		return nil, err
	}
	return nw, nil
}

// Proc is a validator process.
type Proc struct {
	ID    string
	Home  string
	Cmd   *exec.Cmd
	ready chan struct{}
	done  chan struct{}
	err   error
	mu    sync.Mutex
	lines []string
}

// Start starts `mirsubnet run --home home` and waits until it is ready.
func Start(ctx context.Context, bin, id, home string, logTo io.Writer, extra ...string) (*Proc, error) {
	args := append([]string{"run", "--home", home}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "MIRSUBNET_LOG_LEVEL=error")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	errf, err := os.Create(filepath.Join(home, "stderr.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stderr = errf
	p := &Proc{ID: id, Home: home, Cmd: cmd, ready: make(chan struct{}), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		errf.Close()
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.mu.Unlock()
			if logTo != nil {
				fmt.Fprintf(logTo, "[%s] %s\n", id, line)
			}
			if strings.HasPrefix(line, "ready ") {
				once.Do(func() { close(p.ready) })
			}
		}
	}()
	go func() {
		p.err = cmd.Wait()
		errf.Close()
		close(p.done)
	}()
	select {
	case <-p.ready:
		return p, nil
	case <-p.done:
		b, _ := os.ReadFile(filepath.Join(home, "stderr.log"))
		return nil, fmt.Errorf("node %s exited before it was ready: %v: %s", id, p.err, strings.TrimSpace(string(b)))
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return nil, ctx.Err()
	}
}

// Stop sends SIGTERM and waits (SIGKILL after the grace period).
func (p *Proc) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
	var ee *exec.ExitError
	if p.err != nil && !errors.As(p.err, &ee) {
		return p.err
	}
	return nil
}

// Kill sends SIGKILL and waits.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Done is closed when the process exited.
func (p *Proc) Done() <-chan struct{} { return p.done }
