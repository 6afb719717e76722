//go:build !unix

package store

import (
	"errors"
	"os"
)

// LockFile is the file in the data directory that one process holds while
// it uses the embedded store (unix only).
const LockFile = "promotebot.lock"

// ErrDataDirInUse is a data directory another process holds.
var ErrDataDirInUse = errors.New("data directory in use")

// lockDataDir cannot lock here: one replica is assumed, as before.
func lockDataDir(string) (*os.File, error) { return nil, nil }
