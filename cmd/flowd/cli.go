package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // a run failed, or a flow is invalid
	exitUsage   = 2 // bad command line
	exitProblem = 3 // could not do the work: unreadable files, database errors
)

const usage = `flowd runs workflows written as JSON flow files.

Usage:
  flowd serve [--addr 127.0.0.1:5678] [--db data/flowd.db] [--flows flows] [--demo]
  flowd run FLOW.json [--db PATH] [--trigger NAME] [--input JSON] [--demo]
  flowd validate FLOW.json|DIR...
  flowd nodes        print the node type reference (Markdown)
  flowd backup [--db PATH] DEST   copy the database consistently, also while serving
  flowd rotate-key [--db PATH] [--decrypt]   re-seal static data with FLOWD_ENCRYPTION_KEY
  flowd hash-password  read a password on stdin, print its bcrypt hash for FLOWD_AUTH_PASSWORD_HASH
  flowd version

Run "flowd COMMAND -h" for a command's flags.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// run is the whole program: it parses args, does the work and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, stdout, stderr)
	case "run":
		return cmdRun(ctx, rest, stdout, stderr)
	case "validate":
		return cmdValidate(rest, stdout, stderr)
	case "nodes":
		return cmdNodes(rest, stdout, stderr)
	case "backup":
		return cmdBackup(ctx, rest, stdout, stderr)
	case "rotate-key":
		return cmdRotateKey(ctx, rest, stdout, stderr)
	case "hash-password":
		return cmdHashPassword(os.Stdin, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "flowd", version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "flowd: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

// newLogger logs text to w at the level named by FLOWD_LOG_LEVEL (debug, info, warn, error;
// default info).
func newLogger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if s := os.Getenv("FLOWD_LOG_LEVEL"); s != "" {
		_ = level.UnmarshalText([]byte(strings.ToUpper(s)))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// envOr returns the environment variable's value, or def when it is unset or empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
