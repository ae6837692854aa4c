package itests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// binPath is the mirsubnet binary TestMain built for the tests.
var binPath string

// TestMain builds the mirsubnet binary once, without -race even when the
// tests run with it (the validators are ordinary processes; the race
// detector would only slow them down), and removes it afterwards.
func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mirsubnet-itests-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "itests: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "mirsubnet")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	cmd := exec.Command(gobin, "build", "-o", binPath, "github.com/mirsubnet/mirsubnet/cmd/mirsubnet")
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "itests: building mirsubnet: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}
