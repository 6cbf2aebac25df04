package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/mattn/go-sqlite3"
)

// Backup copies the database at src to dst with SQLite's online backup, a consistent snapshot
// taken while other processes — a running flowd serve — keep reading and writing src. It
// writes to a temporary file beside dst, checks it with PRAGMA integrity_check and renames it
// into place, so dst is either the whole copy or untouched. dst must not exist unless force.
// The copy holds run records and static data, so it is created readable by its owner only.
func Backup(ctx context.Context, src, dst string, force bool) error {
	if err := backup(ctx, src, dst, force); err != nil {
		return fmt.Errorf("back up %s to %s: %w", src, dst, err)
	}
	return nil
}

func backup(ctx context.Context, src, dst string, force bool) error {
	absSrc, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	if _, err := os.Stat(absSrc); err != nil {
		return err // a backup must not create an empty source
	}
	if !force {
		if _, err := os.Lstat(dst); err == nil {
			return fmt.Errorf("%s exists; remove it or pass --force", dst)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	tmpPath := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpPath) // after a successful rename there is nothing left to remove
	if err := os.Chmod(tmpPath, 0o600); err != nil {
		return err
	}

	from, err := sql.Open("sqlite3", dsn(absSrc, url.Values{"_busy_timeout": {fmt.Sprint(busyTimeoutMillis)}, "_query_only": {"1"}}))
	if err != nil {
		return err
	}
	defer from.Close()
	to, err := sql.Open("sqlite3", dsn(tmpPath, nil))
	if err != nil {
		return err
	}
	defer to.Close()

	fromConn, err := from.Conn(ctx)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	defer fromConn.Close()
	toConn, err := to.Conn(ctx)
	if err != nil {
		return fmt.Errorf("open copy: %w", err)
	}
	defer toConn.Close()

	err = toConn.Raw(func(dc any) error {
		return fromConn.Raw(func(sc any) error {
			d, ok1 := dc.(*sqlite3.SQLiteConn)
			s, ok2 := sc.(*sqlite3.SQLiteConn)
			if !ok1 || !ok2 {
				return errors.New("not a go-sqlite3 connection")
			}
			b, err := d.Backup("main", s, "main")
			if err != nil {
				return err
			}
			// One step copies every page under one read transaction: a consistent snapshot.
			// In WAL mode writers go on meanwhile.
			if _, err := b.Step(-1); err != nil {
				_ = b.Finish()
				return err
			}
			return b.Finish()
		})
	})
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	var check string
	if err := toConn.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil {
		return fmt.Errorf("check the copy: %w", err)
	}
	if check != "ok" {
		return fmt.Errorf("the copy failed its integrity check: %s", check)
	}
	// The copy is in the source's journal mode; leave it a single self-contained file.
	if _, err := toConn.ExecContext(ctx, "PRAGMA journal_mode=DELETE"); err != nil {
		return fmt.Errorf("finish the copy: %w", err)
	}
	toConn.Close()
	to.Close()
	return os.Rename(tmpPath, dst)
}
