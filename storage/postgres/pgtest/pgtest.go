// Package pgtest starts a throw-away PostgreSQL server for tests: a fresh cluster in a temp
// dir, listening on a unix socket in that dir only, with fsync off. Each test gets a database
// of its own, so tests may run in parallel.
//
// A package whose tests use PostgreSQL routes its TestMain through Run, which stops the
// shared server after the tests:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }
//
// (or pgtest.Main(m) when there is nothing else to do), and each test asks for a database:
//
//	dsn := pgtest.NewDatabase(t) // postgres://…; dropped when the test ends
//
// The server starts on the first NewDatabase, so `go test -run` of other tests starts nothing.
// When the PostgreSQL binaries are not installed, NewDatabase skips the test — or fails it
// when the CI environment variable is set, so that CI cannot pass by skipping.
//
// The binaries are found through FLOWD_PG_BIN (a directory holding initdb and postgres), else
// initdb on PATH, else the newest /usr/lib/postgresql/*/bin. As root, initdb and postgres run
// as the "postgres" user (PostgreSQL refuses to run as root), which owns the temp dir.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries means the PostgreSQL server binaries were not found.
var ErrNoBinaries = errors.New("PostgreSQL binaries (initdb, postgres) not found; set FLOWD_PG_BIN or install postgresql")

// superuser is the role initdb creates and every DSN names.
const superuser = "postgres"

// Server is a running throw-away PostgreSQL server. Stop it when done.
type Server struct {
	dir  string // temp dir: data/ and the socket
	cmd  *exec.Cmd
	done chan struct{} // closed when the server process has exited
	log  *bytes.Buffer // the server's output, for errors
	mu   sync.Mutex    // guards log and n
	n    int           // databases made
	stop sync.Once
}

// Start initialises a cluster in a new temp dir and starts a server on it, returning once it
// takes connections (or ctx ends). It returns ErrNoBinaries when PostgreSQL is not installed.
func Start(ctx context.Context) (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	// Short: a unix socket's path is limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{dir: dir, done: make(chan struct{}), log: &bytes.Buffer{}}
	if err := s.start(ctx, bin); err != nil {
		s.Stop()
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	return s, nil
}

func (s *Server) start(ctx context.Context, bin string) error {
	cred, err := credential(s.dir)
	if err != nil {
		return err
	}
	data := filepath.Join(s.dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", data, "-U", superuser, "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-k", s.dir, "-c", "listen_addresses=",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=400", "-c", "shared_buffers=32MB")
	// Pdeathsig: should the test process die without stopping it, the server goes too
	// (SIGQUIT is PostgreSQL's immediate shutdown, which takes its backends along).
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	s.cmd.Stdout, s.cmd.Stderr = (*lockedWriter)(s), (*lockedWriter)(s)
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	for {
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-s.done:
			return fmt.Errorf("postgres exited: %s\n%s", s.cmd.ProcessState, s.output())
		case <-ctx.Done():
			return fmt.Errorf("postgres not ready: %w (last: %v)\n%s", ctx.Err(), err, s.output())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// lockedWriter collects the server's output.
type lockedWriter Server

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.log.Len() < 1<<20 {
		w.log.Write(p)
	}
	return len(p), nil
}

func (s *Server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// credential is who initdb and postgres run as: nil (the current user) unless that is root,
// which PostgreSQL refuses; then the postgres user, made owner of dir.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(superuser)
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL needs a %q user to run as: %w", superuser, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user %s: %w", superuser, err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// findBin is the directory holding initdb and postgres.
func findBin() (string, error) {
	if d := os.Getenv("FLOWD_PG_BIN"); d != "" {
		return d, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

// version is the major version in /usr/lib/postgresql/<v>/bin.
func version(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// DSN is the connection string of database db on the server, as the superuser.
func (s *Server) DSN(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User(superuser), Host: "", Path: "/" + db,
		RawQuery: url.Values{"host": {s.dir}, "sslmode": {"disable"}}.Encode()}
	return u.String()
}

// CreateDatabase creates an empty database and returns its DSN. The name is made unique
// from prefix (lower-cased, other characters than letters and digits dropped).
func (s *Server) CreateDatabase(ctx context.Context, prefix string) (name, dsn string, err error) {
	s.mu.Lock()
	s.n++
	n := s.n
	s.mu.Unlock()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name = fmt.Sprintf("t%d_%s_%s", n, hex.EncodeToString(rnd[:]), clean(prefix))
	if err := s.admin(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return name, s.DSN(name), nil
}

// DropDatabase drops a database, ending its connections.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	if err := s.admin(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

func (s *Server) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// NewDatabase creates a database for t, dropped when t ends, and returns its DSN.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name, dsn, err := s.CreateDatabase(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.DropDatabase(ctx, name); err != nil {
			t.Error(err)
		}
	})
	return dsn
}

func clean(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
		if b.Len() == 30 {
			break
		}
	}
	return b.String()
}

// Stop shuts the server down (fast shutdown: connections are ended) and removes its dir.
// Calling it again does nothing.
func (s *Server) Stop() {
	s.stop.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-s.done:
			case <-time.After(10 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.done
			}
		}
		os.RemoveAll(s.dir)
	})
}

// The shared server of a test binary, started by the first NewDatabase and stopped by Run.
var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Shared returns the test binary's shared server, starting it on first use. When it cannot
// start, the test is skipped — or failed when the CI environment variable is set.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shared.srv, shared.err = Start(ctx)
	})
	if shared.err != nil {
		if os.Getenv("CI") == "" && errors.Is(shared.err, ErrNoBinaries) {
			t.Skip(shared.err)
		}
		t.Fatal(shared.err)
	}
	return shared.srv
}

// NewDatabase is Shared(t).NewDatabase(t): a fresh database on the shared server.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return Shared(t).NewDatabase(t)
}

// Connect opens a connection to dsn for t, closed when t ends.
func Connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Run runs the tests and then stops the shared server, if they started it; it returns m.Run's
// code. Call it from TestMain in place of m.Run.
func Run(m *testing.M) int {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	return code
}

// Main is a whole TestMain: os.Exit(Run(m)).
func Main(m *testing.M) { os.Exit(Run(m)) }
