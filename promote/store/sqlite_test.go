package store

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// sqliteOpener opens stores on the embedded database in dir through Open.
func sqliteOpener(dir string) opener {
	return func(t *testing.T) (promote.Store, error) {
		s, err := Open(context.Background(), "", dir)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s, nil
	}
}

func TestSQLite(t *testing.T) {
	runConformance(t, func(t *testing.T) opener { return sqliteOpener(t.TempDir()) })
}

func TestSQLiteSettings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data dir?#%")
	s := sqliteOpener(dir).must(t).(*SQLite)
	if s.Path() != filepath.Join(dir, SQLiteFile) {
		t.Errorf("Path = %s, want in %s", s.Path(), dir)
	}
	if _, err := os.Stat(filepath.Join(dir, SQLiteFile)); err != nil {
		t.Fatalf("database file: %v", err)
	}
	ctx := context.Background()
	common := map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "10000"}
	for _, c := range []struct {
		name      string
		pool      *sql.DB
		queryOnly string
	}{{"writer", s.w, "0"}, {"reader", s.r, "1"}} {
		want := map[string]string{"query_only": c.queryOnly}
		maps.Copy(want, common)
		for pragma, w := range want {
			var got string
			if err := c.pool.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("%s PRAGMA %s: %v", c.name, pragma, err)
			}
			if got != w {
				t.Errorf("%s PRAGMA %s = %s, want %s", c.name, pragma, got, w)
			}
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	for name, args := range map[string][2]string{
		"no data dir":      {"", ""},
		"unknown database": {"mysql://db.example.com/promotebot", t.TempDir()},
	} {
		if s, err := Open(ctx, args[0], args[1]); err == nil {
			t.Errorf("%s: Open(%q, %q) succeeded", name, args[0], args[1])
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		}
	}
}

// crashDirEnv tells the test binary, run again by TestSQLiteSurvivesKill, to
// be the process that is killed.
const crashDirEnv = "PROMOTEBOT_STORE_CRASH_DIR"

// TestSQLiteSurvivesKill creates a build in another process, kills it with
// SIGKILL as soon as Create returned, and finds the build and its job.
func TestSQLiteSurvivesKill(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		createThenHang(t, dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSQLiteSurvivesKill$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, readErr := bufio.NewReader(out).ReadString('\n')
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("the child exited by itself")
	}
	id, ok := strings.CutPrefix(strings.TrimSpace(line), "created ")
	if readErr != nil || !ok {
		t.Fatalf("child said %q, %v", line, readErr)
	}
	s := sqliteOpener(dir).must(t)
	if b := get(t, s, id); b.State != promote.StateReceived {
		t.Errorf("build after kill = %+v", b)
	}
	if n := pending(t, s); n != 1 {
		t.Errorf("Pending after kill = %d, want 1", n)
	}
}

func createThenHang(t *testing.T, dir string) {
	s, err := OpenSQLite(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _, err := s.Create(context.Background(), build("1.0.0"), promote.Job{Kind: promote.JobDeployQA})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("created %s\n", b.ID)
	time.Sleep(time.Minute) // killed long before
}
