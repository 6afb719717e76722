package clone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"

	"github.com/promotebot/promotebot/promote"
)

// errStale means the remote branch is not where this push expected it: someone
// else pushed first. The transaction fetches and applies its edits again.
var errStale = errors.New("remote branch moved")

// PushRejectedError is a push the remote refused for a reason other than a
// race (a server-side hook, a protected branch). Whether it is final is
// known after the next look at the remote: the writer answers it marked
// permanent when the branch had not moved.
type PushRejectedError struct {
	Ref    string
	Status string
	// Remote is what the server said while refusing (a hook's output, shown
	// by git as "remote: …"), cleaned of control characters and cut short;
	// empty when it said nothing.
	Remote string
}

func (e *PushRejectedError) Error() string {
	msg := fmt.Sprintf("push to %s rejected by the remote: %s", e.Ref, e.Status)
	if e.Remote != "" {
		msg += " (remote: " + e.Remote + ")"
	}
	return msg
}

// ansiEscape matches terminal control sequences (colours, erase-line).
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]`)

// maxRemoteMessage bounds what is kept of the server's messages.
const maxRemoteMessage = 1000

// remoteMessages keeps the first maxRemoteMessage bytes the server sends on
// the side band's progress channel (hook output, and git's own progress).
type remoteMessages struct{ b []byte }

func (m *remoteMessages) Write(p []byte) (int, error) {
	if room := maxRemoteMessage + 1 - len(m.b); room > 0 {
		m.b = append(m.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// text is the messages as one line: control characters (terminal escapes,
// carriage returns of progress meters) dropped, lines joined with " / ",
// and cut at maxRemoteMessage bytes.
func (m *remoteMessages) text() string {
	var lines []string
	raw := ansiEscape.ReplaceAllString(string(m.b), "")
	for _, line := range strings.FieldsFunc(raw, func(r rune) bool { return r == '\n' || r == '\r' }) {
		line = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
				return -1
			}
			return r
		}, line)
		line = strings.TrimSpace(line)
		if line != "" {
			lines = append(lines, line)
		}
	}
	out := strings.Join(lines, " / ")
	if len(m.b) > maxRemoteMessage || len(out) > maxRemoteMessage {
		out = strings.ToValidUTF8(out[:min(len(out), maxRemoteMessage)], "") + " …"
	}
	return out
}

// session is an open receive-pack conversation with the remote: its
// advertisement says where the branch is now, before anything is computed.
type session struct {
	sess transport.ReceivePackSession
	ar   *packp.AdvRefs
}

// openSession connects to the remote's receive-pack and reads its references.
func openSession(ctx context.Context, ep *transport.Endpoint, auth transport.AuthMethod) (*session, error) {
	c, err := client.NewClient(ep)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	sess, err := c.NewReceivePackSession(ep, auth)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", refused(err))
	}
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		if cerr := sess.Close(); cerr != nil {
			return nil, fmt.Errorf("read remote refs: %w (closing: %v)", refused(err), cerr)
		}
		return nil, fmt.Errorf("read remote refs: %w", refused(err))
	}
	return &session{sess: sess, ar: ar}, nil
}

// tip returns where the remote's ref is (zero when it does not exist).
func (s *session) tip(ref plumbing.ReferenceName) plumbing.Hash {
	return s.ar.References[ref.String()]
}

func (s *session) close() error { return s.sess.Close() }

// push updates ref on the remote from old to new, sending pack, the objects
// this process wrote (encodePack), so its cost does not grow with the
// history: it never walks it. The remote already has everything reachable
// from old, and refuses the update if ref is no longer at old.
func (s *session) push(ctx context.Context, ref plumbing.ReferenceName, old, new plumbing.Hash, pack []byte) error {
	req := packp.NewReferenceUpdateRequestFromCapabilities(s.ar.Capabilities)
	req.Commands = []*packp.Command{{Name: ref, Old: old, New: new}}
	// With the side band, the server's own words (a hook saying why it
	// refuses) come back too: kept for the error, so people see them.
	var said remoteMessages
	if s.ar.Capabilities.Supports(capability.Sideband64k) {
		req.Capabilities.Set(capability.Sideband64k) //nolint:errcheck // a known capability without arguments
		req.Progress = &said
	} else if s.ar.Capabilities.Supports(capability.Sideband) {
		req.Capabilities.Set(capability.Sideband) //nolint:errcheck // as above
		req.Progress = &said
	}
	req.Packfile = io.NopCloser(bytes.NewReader(pack))
	rs, err := s.sess.ReceivePack(ctx, req)
	if err != nil {
		return pushError(ref, err, said.text())
	}
	if rs != nil {
		if err := rs.Error(); err != nil {
			return pushError(ref, err, said.text())
		}
	}
	return nil
}

// pushError turns a report-status failure into a rejection. Whether it
// was a lost race or a refusal is decided by the caller after a fetch: only a
// rejection with the remote still at the expected tip is a refusal.
func pushError(ref plumbing.ReferenceName, err error, remote string) error {
	msg := err.Error()
	for _, m := range []string{"failed to update ref", "failed to lock", "cannot lock ref", "non-fast-forward", "fetch first"} {
		if strings.Contains(msg, m) {
			return fmt.Errorf("push %s: %v: %w", ref, err, errStale)
		}
	}
	if strings.Contains(msg, "declined") || strings.Contains(msg, "rejected") || strings.Contains(msg, "command error") {
		return &PushRejectedError{Ref: ref.String(), Status: msg, Remote: remote}
	}
	return fmt.Errorf("push %s: %w", ref, refused(err))
}

// refused marks the connection failures that no retry can fix: the remote
// refused the credentials or has no such repository. go-git has no marker
// of its own, so its errors are sorted here, where they enter.
func refused(err error) error {
	if errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) ||
		errors.Is(err, transport.ErrRepositoryNotFound) || errors.Is(err, transport.ErrInvalidAuthMethod) {
		return promote.Permanent(err)
	}
	return err
}
