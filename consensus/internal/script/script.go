// Package script runs golden interaction scripts in the style of etcd-raft's
// datadriven tests: a command line, "----", the expected output up to a
// blank line. Tests pass -rewrite to regenerate the expected output.
package script

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rewrite regenerates the expected output of the interaction scripts:
//
//	go test ./consensus/pbft -run TestInteraction -rewrite
var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the interaction scripts in testdata")

// Cmd is one command of an interaction script: a name, positional
// arguments and key=value arguments, in the etcd-raft datadriven style.
type Cmd struct {
	Name string
	Pos  []string
	KV   map[string]string
	Line int
}

// Arg returns the value of key, or def.
func (c Cmd) Arg(key, def string) string {
	if v, ok := c.KV[key]; ok {
		return v
	}
	return def
}

// Run executes the script at path: every command line is followed by
// "----" and its expected output, up to a blank line. Lines starting with #
// and blank lines between commands are comments. exec returns the output of
// one command (no blank lines; empty output is shown as "ok"). With -rewrite
// the expected outputs are replaced by the actual ones.
func Run(t *testing.T, path string, exec func(c Cmd) string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	var out strings.Builder
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			out.WriteString(line + "\n")
			continue
		}
		cmdLine := i + 1
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s:%d: command %q not followed by ----", path, cmdLine, line)
		}
		i += 2
		var want []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		c := ParseCmd(trimmed)
		c.Line = cmdLine
		got := strings.TrimRight(exec(c), "\n")
		if got == "" {
			got = "ok"
		}
		if !*rewrite && got != strings.Join(want, "\n") {
			t.Errorf("%s:%d: %s\n--- want:\n%s\n--- got:\n%s", path, cmdLine, trimmed, strings.Join(want, "\n"), got)
		}
		out.WriteString(line + "\n----\n" + got + "\n")
		if i < len(lines) {
			out.WriteString("\n")
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// ParseCmd parses one command line.
func ParseCmd(line string) Cmd {
	f := strings.Fields(line)
	c := Cmd{Name: f[0], KV: map[string]string{}}
	for _, a := range f[1:] {
		if k, v, ok := strings.Cut(a, "="); ok {
			c.KV[k] = v
		} else {
			c.Pos = append(c.Pos, a)
		}
	}
	return c
}

// Files returns the scripts in testdata (*.txt), failing if none.
func Files(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no interaction scripts in testdata: %v", err)
	}
	return files
}
