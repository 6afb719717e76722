package promote_test

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/promotebot/promotebot/promote"
)

func TestPermanent(t *testing.T) {
	sentinel := promote.NewPermanent("environment name collision")
	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
		text      string
	}{
		{"nil", nil, false, ""},
		{"plain", errors.New("connection reset"), false, "connection reset"},
		{"invalid", promote.ErrInvalid, true, "invalid"},
		{"wrapped invalid", fmt.Errorf("%w: bad target", promote.ErrInvalid), true, "invalid: bad target"},
		{"new sentinel", sentinel, true, "environment name collision"},
		{"wrapped sentinel", fmt.Errorf("qa/x: %w", sentinel), true, "qa/x: environment name collision"},
		{"marked", promote.Permanent(fmt.Errorf("read: %w", fs.ErrNotExist)), true, "read: file does not exist"},
		{"marked twice", promote.Permanent(promote.Permanent(errors.New("x"))), true, "x"},
		{"invalid mark", promote.Invalid(errors.New(`invalid target "a..b": contains ".."`)), true, `invalid target "a..b": contains ".."`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := promote.IsPermanent(tc.err); got != tc.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.permanent)
			}
			if tc.err != nil && tc.err.Error() != tc.text {
				t.Errorf("text %q, want %q", tc.err.Error(), tc.text)
			}
		})
	}
	// Marking keeps what the error held; sentinels stay distinct.
	if !errors.Is(promote.Permanent(fmt.Errorf("read: %w", fs.ErrNotExist)), fs.ErrNotExist) {
		t.Error("Permanent hides the wrapped error")
	}
	if errors.Is(sentinel, promote.ErrInvalid) || errors.Is(promote.NewPermanent("invalid"), promote.ErrInvalid) {
		t.Error("a new permanent sentinel matches ErrInvalid")
	}
	if !errors.Is(promote.Invalid(errors.New("x")), promote.ErrInvalid) || errors.Is(promote.Permanent(errors.New("x")), promote.ErrInvalid) {
		t.Error("Invalid does not mark ErrInvalid, or Permanent does")
	}
	if promote.Permanent(nil) != nil || promote.Invalid(nil) != nil {
		t.Error("Permanent(nil) is not nil")
	}
}
