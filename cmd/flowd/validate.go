package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
	"github.com/flowd/flowd/web"
)

// cmdValidate loads each named flow file (or every *.json in a named directory) without
// running it. It prints one line per problem, file:line:col: message, and exits 1 when any
// file has an error; warnings alone leave the exit code 0.
func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: flowd validate FLOW.json|DIR...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	paths, err := expandFlowArgs(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "flowd validate: %v\n", err)
		return exitProblem
	}
	loader := &engine.Loader{Registry: nodes.NewRegistry()}
	flows, probs := loader.LoadFiles(paths)
	for _, p := range probs {
		fmt.Fprintln(stdout, p.Error())
	}
	if len(probs.Errors()) > 0 {
		fmt.Fprintf(stderr, "%d of %d flow files invalid\n", len(paths)-len(flows), len(paths))
		return exitFailed
	}
	// Flows that load one by one may still clash when served together.
	if _, err := web.NewFlowSet(flows); err != nil {
		fmt.Fprintln(stdout, err)
		return exitFailed
	}
	fmt.Fprintf(stderr, "%d flow files valid\n", len(flows))
	return exitOK
}

// expandFlowArgs turns file and directory arguments into a list of flow files.
func expandFlowArgs(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		m, err := filepath.Glob(filepath.Join(a, "*.json"))
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", a, err)
		}
		sort.Strings(m)
		out = append(out, m...)
	}
	return out, nil
}
