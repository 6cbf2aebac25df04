package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/storage/postgres"
)

// cmdBackup copies the database to a file while flowd may be serving from it.
func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", envOr("FLOWD_DB", "data/flowd.db"), "SQLite database `path` to copy (env FLOWD_DB)")
	force := fs.Bool("force", false, "replace the destination if it exists")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: flowd backup [--db PATH] [--force] DEST\n\nCopies the database consistently, also while flowd serves from it.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	dst := fs.Arg(0)
	if isPostgres(*db) {
		fmt.Fprintf(stderr, "flowd backup: "+errBackupPostgres+"\n", postgres.Redact(*db))
		return exitUsage
	}
	if err := storage.Backup(ctx, *db, dst, *force); err != nil {
		fmt.Fprintln(stderr, "flowd backup:", err)
		return exitProblem
	}
	fmt.Fprintf(stdout, "backed up %s to %s\n", *db, dst)
	return exitOK
}
