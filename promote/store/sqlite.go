package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/promotebot/promotebot/promote"

	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLiteFile is the name of the embedded database in the data directory.
const SQLiteFile = "promotebot.db"

// busyTimeout is how long a connection waits for another process's write
// lock (promotebot audit, a second serve by mistake) before failing.
const busyTimeout = 10 * time.Second

// SQLite is the embedded store: one file in the data directory, for a single
// replica.
//
// Durability: the database is in WAL mode with synchronous=FULL, so every
// commit is fsynced before Create or Apply returns; a build answered with 202
// survives kill -9 and also a power cut. (NORMAL would survive kill -9 but
// could lose the last commits on an OS crash; the bot writes a few rows per
// build, so the fsync costs nothing that matters.)
type SQLite struct {
	*db
	path     string
	lock     *dirLock // the data directory's lock, held until Close
	released sync.Once
	// Resumed counts the jobs a process that ended without handing them
	// back still held when this one opened the store: they were released
	// at once.
	Resumed int
}

var _ promote.Store = (*SQLite)(nil)

var sqliteDialect = &dialect{
	name: "sqlite",
	time: func(t time.Time) any { return t.UnixMicro() }, // truncates, like dbTime
}

// OpenSQLite opens (creating if need be) the database dataDir/promotebot.db
// and brings its schema up to date.
func OpenSQLite(ctx context.Context, dataDir string) (*SQLite, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	lock, first, err := holdDataDir(dataDir)
	if err != nil {
		return nil, err
	}
	s, err := openSQLite(ctx, dataDir, first)
	if err != nil {
		return nil, errors.Join(err, lock.release())
	}
	s.lock = lock
	return s, nil
}

// heldDirs are the data directories this process holds, each with how many
// of its stores use it: a second store of the same process shares the lock
// (tests open one database twice); another process is refused.
var heldDirs = struct {
	sync.Mutex
	m map[string]*dirLock
}{m: map[string]*dirLock{}}

// dirLock is a data directory's lock and its users in this process.
type dirLock struct {
	dir  string
	file *os.File
	refs int
}

// holdDataDir takes dataDir's lock, or shares the one this process holds;
// first tells which.
func holdDataDir(dataDir string) (*dirLock, bool, error) {
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, false, fmt.Errorf("open sqlite: %w", err)
	}
	heldDirs.Lock()
	defer heldDirs.Unlock()
	if l, ok := heldDirs.m[dir]; ok {
		l.refs++
		return l, false, nil
	}
	f, err := lockDataDir(dir)
	if err != nil {
		return nil, false, err
	}
	l := &dirLock{dir: dir, file: f, refs: 1}
	heldDirs.m[dir] = l
	return l, true, nil
}

// release lets the lock go once its last store in this process closed.
func (l *dirLock) release() error {
	heldDirs.Lock()
	defer heldDirs.Unlock()
	if l.refs--; l.refs > 0 {
		return nil
	}
	delete(heldDirs.m, l.dir)
	if l.file == nil {
		return nil
	}
	return l.file.Close()
}

func openSQLite(ctx context.Context, dataDir string, first bool) (*SQLite, error) {
	path, err := filepath.Abs(filepath.Join(dataDir, SQLiteFile))
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	w, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// One writer connection: transactions queue in database/sql instead of
	// failing with SQLITE_BUSY, and BEGIN IMMEDIATE takes the write lock
	// up front so a transaction never has to upgrade a read lock.
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	if err := migrateSQLite(ctx, w); err != nil {
		return nil, errors.Join(fmt.Errorf("open sqlite %s: %w", path, err), w.Close())
	}
	r, err := sql.Open("sqlite", sqliteDSN(path, true))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open sqlite %s: %w", path, err), w.Close())
	}
	r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	s := &SQLite{db: newDB(sqliteDialect, w, r), path: path}
	s.group = newGroupCommit(w, sqliteDialect)
	if err := s.Ping(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open sqlite %s: %w", path, err), s.db.Close())
	}
	// This process took the data directory: whoever held the jobs still
	// leased is gone, so they are taken up now rather than when their
	// leases run out.
	if first {
		if s.Resumed, err = s.releaseLeases(ctx); err != nil {
			return nil, errors.Join(fmt.Errorf("open sqlite %s: %w", path, err), s.db.Close())
		}
	}
	return s, nil
}

// Close closes the database, then lets the data directory go.
func (s *SQLite) Close() error {
	err := s.db.Close()
	s.released.Do(func() { err = errors.Join(err, s.lock.release()) })
	return err
}

// migrateSQLite migrates, retrying while the database is busy: processes
// opening a new database file at once can find it locked while another one
// switches it to WAL mode, a moment in which SQLite does not wait on its own.
func migrateSQLite(ctx context.Context, w *sql.DB) error {
	delay := 10 * time.Millisecond
	for deadline := time.Now().Add(busyTimeout); ; {
		err := migrate(ctx, w, sqliteDialect, "migrations/sqlite")
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// Path returns the database file.
func (s *SQLite) Path() string { return s.path }

// sqliteDSN is the modernc.org/sqlite name of the database at path, for the
// writer or for the read-only reader pool.
func sqliteDSN(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	// A file: URI, so a path holding '?' or '#' is escaped, not cut short.
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}
