//go:build unix

package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// TestMain lets this test binary be the other process of
// TestDataDirLockedAcrossProcesses.
func TestMain(m *testing.M) {
	if dir := os.Getenv("PROMOTEBOT_TEST_HOLD_DATADIR"); dir != "" {
		os.Exit(holdDataDirForTest(dir))
	}
	os.Exit(m.Run())
}

// holdDataDirForTest opens the store in dir, claims a job with a long lease,
// says so, and waits to be killed.
func holdDataDirForTest(dir string) int {
	ctx := context.Background()
	s, err := Open(ctx, "", dir)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	b, _, _, err := s.Create(ctx, promote.Build{Project: "hello", Image: "registry.example.com/acme/hello:1",
		Kind: promote.KindBranch, Target: "main"}, promote.Job{Kind: promote.JobPromote})
	if err == nil {
		_, _, err = s.Claim(ctx, "dead/1", time.Hour, time.Now())
	}
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("holding", b.ID)
	select {}
}

// TestDataDirLockedAcrossProcesses: while one process uses a data
// directory another is refused with who holds it; once the first is killed
// (SIGKILL: no chance to hand anything back), the next one opens it and
// takes up at once the job the dead one had leased for an hour.
func TestDataDirLockedAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PROMOTEBOT_TEST_HOLD_DATADIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	t.Cleanup(func() {
		if !waited {
			if err := cmd.Process.Kill(); err != nil {
				t.Log(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Logf("the other process, killed: %v", err)
			}
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "holding ") {
		t.Fatalf("the other process: %q %v", line, err)
	}
	ctx := context.Background()
	_, err = Open(ctx, "", dir)
	if !errors.Is(err, ErrDataDirInUse) || !strings.Contains(err.Error(), fmt.Sprintf("process %d", cmd.Process.Pid)) {
		t.Fatalf("a second process opening the data directory: %v", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waited = true
	if err := cmd.Wait(); err == nil {
		t.Fatal("the other process ended cleanly")
	}
	s, err := OpenSQLite(ctx, dir)
	if err != nil {
		t.Fatalf("after the other process died: %v", err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	if s.Resumed != 1 {
		t.Errorf("Resumed = %d, want the dead process's job", s.Resumed)
	}
	if j, ok, err := s.Claim(ctx, "alive/1", time.Minute, time.Now()); err != nil || !ok || j.Kind != promote.JobPromote {
		t.Errorf("claim at once after the restart: %+v %v %v", j, ok, err)
	}
}
