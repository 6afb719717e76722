//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LockFile is the file in the data directory that one process holds while
// it uses the embedded store.
const LockFile = "promotebot.lock"

// ErrDataDirInUse is a data directory another process holds: the embedded
// store serves one replica.
var ErrDataDirInUse = errors.New("data directory in use")

// lockDataDir takes the data directory's lock (flock on LockFile, released
// by the kernel when the process ends, however it ends) and writes the pid
// into it, for the error another process gets.
func lockDataDir(dataDir string) (*os.File, error) {
	path := filepath.Join(dataDir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := flockWaiting(f); err != nil {
		holder := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil && strings.TrimSpace(string(b)) != "" {
			holder = "process " + strings.TrimSpace(string(b))
		}
		cerr := f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.Join(fmt.Errorf("%w: %s holds %s; the embedded store serves one promotebot at a time "+
				"(stop it, or use database: postgres://… for several replicas)", ErrDataDirInUse, holder, dataDir), cerr)
		}
		return nil, errors.Join(fmt.Errorf("lock data directory %s: %w", dataDir, err), cerr)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("lock data directory: %w", err), f.Close())
		}
	}
	return f, nil
}

// lockWait is how long a process waits for the data directory's lock: a
// process killed a moment ago may not be gone yet (its lock goes with its
// last open descriptor).
const lockWait = 3 * time.Second

// flockWaiting takes f's lock, trying again for up to lockWait while another
// process holds it.
func flockWaiting(f *os.File) error {
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
