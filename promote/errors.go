package promote

import "errors"

// ErrPermanent marks a failure that no retry can fix: credentials refused,
// a push a server-side hook refused, an overlay that does not render, an
// unknown Slack channel. Each adapter wraps it into such an error where the
// error is made (Permanent, NewPermanent), and IsPermanent is the one
// question asked of an error; everything else is retried with backoff.
var ErrPermanent = errors.New("permanent failure")

// ErrInvalid marks input refused as wrong (a target that is no valid ref
// name, an image from another repository, …): a client's mistake. It is
// permanent too: errors.Is(ErrInvalid, ErrPermanent) holds.
var ErrInvalid = NewPermanent("invalid")

// IsPermanent reports whether err is a failure that no retry can fix.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// NewPermanent returns a new sentinel error with the text msg that is
// permanent: errors.Is(err, ErrPermanent) holds for it and for every error
// that wraps it, while its text stays msg.
func NewPermanent(msg string) error { return &permanent{msg: msg} }

// Permanent marks err as a failure no retry can fix, keeping its text and
// everything errors.Is and errors.As find in it. It returns nil for nil.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return &permanent{msg: err.Error(), err: err}
}

// Invalid marks err as the client's mistake (ErrInvalid, so permanent too),
// keeping its text: the reason is said once, not as "invalid: invalid …".
// It returns nil for nil.
func Invalid(err error) error {
	if err == nil || errors.Is(err, ErrInvalid) {
		return err
	}
	return &permanent{msg: err.Error(), err: err, mark: ErrInvalid}
}

type permanent struct {
	msg  string
	err  error
	mark error // ErrPermanent, or ErrInvalid (which wraps it)
}

func (e *permanent) Error() string { return e.msg }

func (e *permanent) Unwrap() []error {
	mark := e.mark
	if mark == nil {
		mark = ErrPermanent
	}
	if e.err == nil {
		return []error{mark}
	}
	return []error{e.err, mark}
}
