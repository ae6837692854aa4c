package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	logging "github.com/ipfs/go-log/v2"
	"github.com/urfave/cli/v2"
)

var log = logging.Logger("mirsubnet")

// Exit codes.
const (
	exitOK       = 0
	exitError    = 1 // bad input, failed command
	exitMismatch = 2 // replay found a mismatch
	exitInternal = 70
)

// commands holds the subcommands registered by the files of this package.
var commands []*cli.Command

// registerCommand adds a subcommand; call it from an init function.
func registerCommand(c *cli.Command) { commands = append(commands, c) }

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// newApp builds the CLI application writing to stdout and stderr.
func newApp(stdout, stderr io.Writer) *cli.App {
	cmds := append([]*cli.Command(nil), commands...)
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	return &cli.App{
		Name:                 "mirsubnet",
		Usage:                "a BFT consensus service for blockchain subnets (Mir-style node, ISS-PBFT, libp2p)",
		Writer:               stdout,
		ErrWriter:            stderr,
		Commands:             cmds,
		EnableBashCompletion: true,
		Suggest:              true,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:    "log-level",
				Usage:   "log level of every subsystem (debug, info, warn, error)",
				Value:   "warn",
				EnvVars: []string{"MIRSUBNET_LOG_LEVEL"},
			},
		},
		Before: func(c *cli.Context) error {
			lvl, err := logging.LevelFromString(c.String("log-level"))
			if err != nil {
				return cli.Exit(fmt.Sprintf("bad --log-level %q: %v", c.String("log-level"), err), exitError)
			}
			logging.SetAllLoggers(lvl)
			return nil
		},
		// Errors are printed and turned into exit codes by run, never by
		// os.Exit inside the app (tests run the app in-process).
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

// run runs the app and returns the process exit code. Errors are printed as
// one line on stderr; a panic (a bug) is reported without a stack trace.
func run(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "mirsubnet: internal error: %v (this is a bug; please report it)\n", r)
			code = exitInternal
		}
	}()
	err := newApp(stdout, stderr).Run(args)
	if err == nil {
		return exitOK
	}
	code = exitError
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "mirsubnet: %s\n", msg)
	}
	return code
}
