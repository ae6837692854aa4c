package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/mirsubnet/mirsubnet/localnet"
)

func init() { registerCommand(initCommand()) }

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "generate the home directories (keys, config.toml, genesis.json) of a local subnet on 127.0.0.1",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "directory to create the nodes' homes in", Required: true},
			&cli.IntFlag{Name: "nodes", Value: 4, Usage: "number of validators"},
			&cli.BoolFlag{Name: "record-events", Usage: "record every node's event log"},
		},
		Action: func(c *cli.Context) error {
			nw, err := localnet.Generate(localnet.NetworkSpec{Dir: c.String("dir"), Nodes: c.Int("nodes"), RecordEvents: c.Bool("record-events")})
			if err != nil {
				return cli.Exit(err.Error(), exitError)
			}
			for i, h := range nw.Homes {
				fmt.Fprintf(c.App.Writer, "%s: %s (dial %s)\n  start with: mirsubnet run --home %s\n", nw.IDs[i], h, nw.Addrs[i], h)
			}
			return nil
		},
	}
}
