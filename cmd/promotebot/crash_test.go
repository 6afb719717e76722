package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/gittest"
)

// TestMain lets a test start this binary as a real promotebot server process
// (PROMOTEBOT_TEST_CHILD set), so that it can be killed with SIGKILL.
func TestMain(m *testing.M) {
	if os.Getenv("PROMOTEBOT_TEST_CHILD") != "" {
		args := append([]string{"promotebot"}, strings.Fields(os.Getenv("PROMOTEBOT_TEST_CHILD"))...)
		var logs io.Writer = io.Discard
		if name := os.Getenv("PROMOTEBOT_TEST_CHILD_LOG"); name != "" {
			f, err := os.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			logs = f
		}
		if err := run(context.Background(), args, os.Getenv, os.Stdout, logs); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child starts a server process and returns its base URL; env adds
// KEY=value pairs to its environment.
func child(t *testing.T, config string, env ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PROMOTEBOT_TEST_CHILD=serve --config "+config+" --job-lease 1s",
		"PROMOTEBOT_WEBHOOK_SECRET="+webhookSecret)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child did not start: %v", err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			kill(t, cmd)
		}
	})
	return cmd, "http://" + strings.TrimSpace(strings.TrimPrefix(line, "promotebot listening on "))
}

// kill sends SIGKILL and reaps the process.
func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var exit *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &exit) {
		t.Fatalf("child after SIGKILL: %v", err)
	}
}

// TestKillNineMidDeploy posts builds, kills the server with SIGKILL while it
// deploys them, restarts it on the same data dir, and checks every accepted
// build ends qa-ready with exactly one QA commit.
func TestKillNineMidDeploy(t *testing.T) {
	skipIfShort(t, "forty builds and three SIGKILLs of a server process, about 6 s")
	remote := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	config := helloConfig(t, remote, "")
	cmd, base := child(t, config)
	var ids []string
	for i := range 40 {
		body := fmt.Sprintf(`{"project":"hello","image":"registry.example.com/acme/hello:1.%d","type":"branch","target":"crash-%d"}`, i, i)
		code, out := postBuild(t, base, body)
		if code != 202 {
			t.Fatalf("POST %d: %d %v", i, code, out)
		}
		ids = append(ids, out["id"].(string))
	}
	// Up to three times: kill just after a push landed, while the rest are
	// in flight (a push may be done with its result not yet recorded), and
	// restart.
	kills := 0
	for pushed := 0; kills < 3 && pushed < len(ids); kills++ {
		start := gittest.Head(t, remote, "main")
		for deadline := time.Now().Add(20 * time.Second); gittest.Head(t, remote, "main") == start; {
			if time.Now().After(deadline) {
				t.Fatal("no QA commit was pushed")
			}
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(15)) * time.Millisecond)
		kill(t, cmd)
		pushed = len(gittest.Log(t, remote, "main")) - 1
		t.Logf("killed with %d of %d QA commits pushed", pushed, len(ids))
		cmd, base = child(t, config)
	}
	if kills == 0 {
		t.Fatal("the server was never killed")
	}
	for _, id := range ids {
		waitState(t, base, id, "qa-ready")
	}
	commits := map[string]int{}
	for _, c := range gittest.Log(t, remote, "main") {
		for _, v := range c.TrailerValues("Promotebot-Build") {
			commits[v]++
		}
	}
	for _, id := range ids {
		if commits[id] != 1 {
			t.Errorf("build %s has %d QA commits, want 1", id, commits[id])
		}
	}
}
