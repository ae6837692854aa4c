package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/mirsubnet/mirsubnet/consensus/eventlog"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

func init() { registerCommand(mircatCommand()) }

func mircatCommand() *cli.Command {
	return &cli.Command{
		Name:      "mircat",
		Usage:     "list, filter and replay event logs",
		ArgsUsage: "LOG...",
		Description: "LOG is an event log file (*.mirlog), a directory of them, or a directory of\n" +
			"per-node log directories (as `mirsubnet sample --eventlog` writes them).\n" +
			"A log cut short by a crash is read up to its last complete record (a warning\n" +
			"says where it stops); a corrupt record stops the log and fails the command.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "node", Usage: "only records of this node"},
			&cli.StringFlag{Name: "module", Usage: "only records of this module, or events to or from it (path prefix: iss covers iss/pbft/3)"},
			&cli.StringFlag{Name: "type", Usage: "only events with this payload type (events.SendMessage or SendMessage)"},
			&cli.StringFlag{Name: "kind", Usage: "only records of this kind: dispatch or inbound"},
			&cli.Uint64Flag{Name: "from", Usage: "first record index"},
			&cli.Uint64Flag{Name: "to", Usage: "last record index (0: no limit)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per event"},
		},
		Action: mircat,
		Subcommands: []*cli.Command{
			{
				Name:      "replay",
				Usage:     "replay a log into fresh passive modules and check they produce exactly the logged outputs",
				ArgsUsage: "LOG...",
				Description: "Modules are built by registered factories from each log's header metadata.\n" +
					"A spec is a factory name (also the module ID) or ID=FACTORY.\n" +
					"Exit status: 0 when every output matches, 2 on a mismatch, 1 on other errors.",
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "modules", Usage: "modules to replay, comma-separated (factories: rbc, app)", Required: true},
					&cli.StringFlag{Name: "node", Usage: "replay only this node's log"},
				},
				Action: mircatReplay,
			},
			{
				Name:      "hash",
				Usage:     "print the SHA-256 of each node's records (equal for runs that dispatched the same events)",
				ArgsUsage: "LOG...",
				Action:    mircatHash,
			},
		},
	}
}

func needLogs(c *cli.Context) ([]string, error) {
	if c.NArg() == 0 {
		return nil, cli.Exit(fmt.Sprintf("%s: give the event log (file or directory) to read", c.Command.FullName()), exitError)
	}
	return c.Args().Slice(), nil
}

func mircat(c *cli.Context) error {
	paths, err := needLogs(c)
	if err != nil {
		return err
	}
	f := eventlog.Filter{
		Node:   mir.NodeID(c.String("node")),
		Module: mir.ModuleID(c.String("module")),
		Type:   c.String("type"),
		From:   c.Uint64("from"),
		To:     c.Uint64("to"),
	}
	switch k := c.String("kind"); k {
	case "":
	case "dispatch":
		f.Kind = mir.RecordDispatch
	case "inbound":
		f.Kind = mir.RecordInbound
	default:
		return cli.Exit(fmt.Sprintf("bad --kind %q: want dispatch or inbound", k), exitError)
	}
	if f.To != 0 && f.To < f.From {
		return cli.Exit(fmt.Sprintf("--to %d is before --from %d", f.To, f.From), exitError)
	}
	r, err := eventlog.Open(f, paths...)
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	defer r.Close()
	out := bufio.NewWriterSize(c.App.Writer, 64<<10)
	defer out.Flush()
	asJSON := c.Bool("json")
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			out.Flush()
			return cli.Exit(err.Error(), exitError)
		}
		if asJSON {
			err = printRecordJSON(out, &rec)
		} else {
			err = printRecord(out, &rec)
		}
		if err != nil {
			return cli.Exit(fmt.Sprintf("record %d of node %s: %v", rec.Index, rec.NodeID, err), exitError)
		}
	}
	if err := out.Flush(); err != nil {
		return cli.Exit(fmt.Sprintf("write output: %v", err), exitError)
	}
	return reportCorruption(c, r)
}

// reportCorruption warns about torn tails and fails on corrupt frames.
func reportCorruption(c *cli.Context, r *eventlog.Reader) error {
	for _, rc := range r.Recovered() {
		log.Infof("the log continues after a restart past %v", rc)
	}
	var corrupt []string
	for _, ce := range r.Corruptions() {
		if ce.Torn {
			fmt.Fprintf(c.App.ErrWriter, "mirsubnet: warning: log ends with an incomplete record (interrupted write): %v\n", ce)
			continue
		}
		corrupt = append(corrupt, ce.Error())
	}
	if len(corrupt) > 0 {
		return cli.Exit("corrupt event log, read up to the bad record: "+strings.Join(corrupt, "; "), exitError)
	}
	return nil
}

func printRecord(w io.Writer, rec *eventlog.Record) error {
	module := rec.Module
	if module == "" {
		module = "(outside)"
	}
	dir := "->"
	if rec.Kind == mir.RecordInbound {
		dir = "<-"
	}
	fmt.Fprintf(w, "%s #%d %s %s %s (%d events)\n", rec.NodeID, rec.Index, rec.Kind, dir, module, len(rec.Events))
	for i := range rec.Events {
		ev := &rec.Events[i]
		b, err := eventlog.EventJSON(*ev)
		if err != nil {
			return err
		}
		var view struct {
			Payload json.RawMessage `json:"payload"`
			Next    json.RawMessage `json:"next"`
		}
		if err := json.Unmarshal(b, &view); err != nil {
			return err
		}
		src := ev.Src
		if src == "" {
			src = "(outside)"
		}
		fmt.Fprintf(w, "  %s -> %s  %s %s", src, ev.Dest, mir.PayloadName(ev.Payload), view.Payload)
		if len(ev.Next) > 0 {
			fmt.Fprintf(w, "  next: %s", view.Next)
		}
		fmt.Fprintln(w)
	}
	return nil
}

func printRecordJSON(w io.Writer, rec *eventlog.Record) error {
	for i := range rec.Events {
		ev, err := eventlog.EventJSON(rec.Events[i])
		if err != nil {
			return err
		}
		line, err := json.Marshal(struct {
			Node   mir.NodeID      `json:"node"`
			Index  uint64          `json:"index"`
			Kind   string          `json:"kind"`
			Module mir.ModuleID    `json:"module"`
			Event  json.RawMessage `json:"event"`
		}{rec.NodeID, rec.Index, rec.Kind.String(), rec.Module, ev})
		if err != nil {
			return err
		}
		w.Write(line)
		io.WriteString(w, "\n")
	}
	return nil
}

func mircatReplay(c *cli.Context) error {
	paths, err := needLogs(c)
	if err != nil {
		return err
	}
	var specs []string
	for _, s := range c.StringSlice("modules") {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				specs = append(specs, p)
			}
		}
	}
	if len(specs) == 0 {
		return cli.Exit("--modules: name at least one module", exitError)
	}
	logs, err := eventlog.List(paths...)
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	if node := mir.NodeID(c.String("node")); node != "" {
		var sel []eventlog.Log
		for _, l := range logs {
			if l.Node == node {
				sel = append(sel, l)
			}
		}
		if len(sel) == 0 {
			return cli.Exit(fmt.Sprintf("no log of node %q in %s", node, strings.Join(paths, " ")), exitError)
		}
		logs = sel
	}
	if len(logs) == 0 {
		return cli.Exit("no readable event log in "+strings.Join(paths, " "), exitError)
	}
	w := c.App.Writer
	mismatches, corrupt := 0, 0
	for _, l := range logs {
		mods, err := eventlog.BuildModules(specs, l.Node, l.Header.Meta)
		if err != nil {
			return cli.Exit(err.Error(), exitError)
		}
		r, err := eventlog.Open(eventlog.Filter{}, l.Files...)
		if err != nil {
			return cli.Exit(err.Error(), exitError)
		}
		rep, err := eventlog.Replay(r, mods)
		r.Close()
		if err != nil && !errors.Is(err, eventlog.ErrMismatch) {
			return cli.Exit(fmt.Sprintf("node %s: %v", l.Node, err), exitError)
		}
		printReport(w, l.Node, specs, &rep)
		switch {
		case !rep.OK():
			mismatches++
		case rep.Tail != nil && !rep.Tail.Torn:
			corrupt++
		}
	}
	if mismatches > 0 {
		return cli.Exit(fmt.Sprintf("replay: %d of %d logs do not match", mismatches, len(logs)), exitMismatch)
	}
	if corrupt > 0 {
		return cli.Exit(fmt.Sprintf("replay: %d of %d logs are corrupt; they match only up to the bad record", corrupt, len(logs)), exitError)
	}
	fmt.Fprintf(w, "replay: all %d logs match\n", len(logs))
	return nil
}

func printReport(w io.Writer, node mir.NodeID, specs []string, rep *eventlog.Report) {
	status := "OK"
	switch {
	case !rep.OK():
		status = "MISMATCH"
	case rep.Tail != nil && !rep.Tail.Torn:
		status = "CORRUPT"
	}
	fmt.Fprintf(w, "node %s: %s: %d records, %d output events matched\n", node, status, rep.Records, rep.Matched)
	for _, s := range specs {
		id, _, _ := strings.Cut(s, "=")
		m := mir.ModuleID(id)
		fmt.Fprintf(w, "  %s: %d batches replayed, %d events produced\n", m, rep.Batches[m], rep.Outputs[m])
	}
	for d, n := range rep.Undispatched {
		if n > 0 {
			fmt.Fprintf(w, "  %d produced events for %s not yet dispatched when the log ends\n", n, d)
		}
	}
	if rep.RestartAt != 0 {
		fmt.Fprintf(w, "  the node restarted at record %d; replay stopped there\n", rep.RestartAt)
	}
	if rep.Tail != nil {
		fmt.Fprintf(w, "  the log stops early: %v\n", rep.Tail)
	}
	if rep.Mismatch != nil {
		fmt.Fprintf(w, "  first mismatch: %s\n", strings.ReplaceAll(rep.Mismatch.String(), "\n", "\n  "))
	}
}

func mircatHash(c *cli.Context) error {
	paths, err := needLogs(c)
	if err != nil {
		return err
	}
	logs, err := eventlog.List(paths...)
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	if len(logs) == 0 {
		return cli.Exit("no readable event log in "+strings.Join(paths, " "), exitError)
	}
	for _, l := range logs {
		sum, n, err := eventlog.HashLog(l.Files...)
		if err != nil {
			return cli.Exit(fmt.Sprintf("node %s: %v", l.Node, err), exitError)
		}
		fmt.Fprintf(c.App.Writer, "%x  %s (%d records)\n", sum, l.Node, n)
	}
	return nil
}
