package gitops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
)

// errStale means the remote branch is not where this push expected it: someone
// else pushed first. The transaction fetches and applies its edits again.
var errStale = errors.New("remote branch moved")

// PushRejectedError is a push the remote refused for a reason other than a
// race (a server-side hook, a protected branch). It is terminal.
type PushRejectedError struct {
	Ref    string
	Status string
}

func (e *PushRejectedError) Error() string {
	return fmt.Sprintf("push to %s rejected by the remote: %s", e.Ref, e.Status)
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
		return nil, fmt.Errorf("connect: %w", err)
	}
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		if cerr := sess.Close(); cerr != nil {
			return nil, fmt.Errorf("read remote refs: %w (closing: %v)", err, cerr)
		}
		return nil, fmt.Errorf("read remote refs: %w", err)
	}
	return &session{sess: sess, ar: ar}, nil
}

// tip returns where the remote's ref is (zero when it does not exist).
func (s *session) tip(ref plumbing.ReferenceName) plumbing.Hash {
	return s.ar.References[ref.String()]
}

func (s *session) close() error { return s.sess.Close() }

// push updates ref on the remote from old to new, sending exactly the objects
// listed (the ones this process wrote), so its cost does not grow with the
// history: it never walks it. The remote already has everything reachable
// from old, and refuses the update if ref is no longer at old.
func (s *session) push(ctx context.Context, st storer.EncodedObjectStorer,
	ref plumbing.ReferenceName, old, new plumbing.Hash, objects []plumbing.Hash) error {
	req := packp.NewReferenceUpdateRequestFromCapabilities(s.ar.Capabilities)
	req.Commands = []*packp.Command{{Name: ref, Old: old, New: new}}
	rd, wr := io.Pipe()
	req.Packfile = rd
	done := make(chan error, 1)
	go func() {
		_, err := packfile.NewEncoder(wr, st, false).Encode(objects, 0)
		done <- wr.CloseWithError(err)
	}()
	rs, err := s.sess.ReceivePack(ctx, req)
	if err != nil {
		if cerr := rd.CloseWithError(err); cerr != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		<-done
		return classifyPushError(ref, err)
	}
	if err := <-done; err != nil {
		return fmt.Errorf("push %s: encode pack: %w", ref, err)
	}
	if rs != nil {
		if err := rs.Error(); err != nil {
			return classifyPushError(ref, err)
		}
	}
	return nil
}

// classifyPushError turns a report-status failure into a rejection. Whether it
// was a lost race or a refusal is decided by the caller after a fetch: only a
// rejection with the remote still at the expected tip is a refusal.
func classifyPushError(ref plumbing.ReferenceName, err error) error {
	msg := err.Error()
	for _, m := range []string{"failed to update ref", "failed to lock", "cannot lock ref", "non-fast-forward", "fetch first"} {
		if strings.Contains(msg, m) {
			return fmt.Errorf("push %s: %v: %w", ref, err, errStale)
		}
	}
	if strings.Contains(msg, "declined") || strings.Contains(msg, "rejected") || strings.Contains(msg, "command error") {
		return &PushRejectedError{Ref: ref.String(), Status: msg}
	}
	return fmt.Errorf("push %s: %w", ref, err)
}

func short(h plumbing.Hash) string {
	if h.IsZero() {
		return "nothing"
	}
	return h.String()[:12]
}
