package forge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/promotebot/promotebot/promote"
)

// maxWebhookBody bounds a GitHub delivery.
const maxWebhookBody = 5 << 20

// Webhook serves POST /github/webhook: GitHub's deliveries about the bot's
// pull requests (pull_request, pull_request_review, check_suite, status)
// make the build's waiting promotion run at once instead of at its next
// poll. X-Hub-Signature-256 is checked over the raw body first; a delivery
// signed only with the legacy SHA-1 X-Hub-Signature is refused.
type Webhook struct {
	// Secret is the webhook's secret, set on GitHub too; empty refuses all.
	Secret string
	// Hurry is told the build id of each bot branch a delivery is about.
	Hurry func(ctx context.Context, buildID string) error
	// Deleted, when set, is told of each branch or tag deletion (a delete
	// event): the repository's owner/name, "branch" or "tag", and the name.
	Deleted func(ctx context.Context, repo, kind, name string) error
	Logger  *slog.Logger
}

// ServeHTTP implements http.Handler.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := h.checkHeaders(r.Header); err != nil {
		log.Warn("github webhook refused", "err", err, "remote", r.RemoteAddr)
		answer(w, http.StatusUnauthorized, err.Error())
		return
	}
	if r.ContentLength > maxWebhookBody {
		answer(w, http.StatusRequestEntityTooLarge, "delivery too large")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxWebhookBody)
	payload, err := gh.ValidatePayloadFromBody(r.Header.Get("Content-Type"), r.Body,
		r.Header.Get(gh.SHA256SignatureHeader), []byte(h.Secret))
	if err != nil {
		log.Warn("github webhook refused", "err", err, "remote", r.RemoteAddr)
		answer(w, http.StatusUnauthorized, "bad signature")
		return
	}
	event, err := gh.ParseWebHook(gh.WebHookType(r), payload)
	if err != nil {
		answer(w, http.StatusBadRequest, "unreadable event")
		return
	}
	if d, ok := event.(*gh.DeleteEvent); ok && h.Deleted != nil {
		repo, kind, name := d.GetRepo().GetFullName(), d.GetRefType(), d.GetRef()
		if err := h.Deleted(r.Context(), repo, kind, name); err != nil {
			log.Error("github webhook: deletion", "repo", repo, "kind", kind, "ref", name, "err", err)
			answer(w, http.StatusServiceUnavailable, "try again")
			return
		}
		log.Info("github webhook: deletion", "repo", repo, "kind", kind, "ref", name)
	}
	for _, ref := range refsOf(event) {
		id, ok := buildOfBranch(ref)
		if !ok {
			continue
		}
		if err := h.Hurry(r.Context(), id); err != nil {
			log.Error("github webhook: hurry promotion", "build", id, "err", err)
			answer(w, http.StatusServiceUnavailable, "try again")
			return
		}
		log.Info("github webhook: promotion looked at again", "build", id, "event", gh.WebHookType(r))
	}
	answer(w, http.StatusOK, "ok")
}

// Gate is what the server asks of a delivery before its body is read
// (promote.Gate): at most 5 MiB, and an X-Hub-Signature-256 that is well
// formed, then checked over the raw body.
func (h *Webhook) Gate() promote.Gate {
	return promote.Gate{
		MaxBody: maxWebhookBody,
		Headers: func(hd http.Header) (bool, error) { return false, h.checkHeaders(hd) },
		Verify: func(hd http.Header, body []byte) error {
			if err := gh.ValidateSignature(hd.Get(gh.SHA256SignatureHeader), body, []byte(h.Secret)); err != nil {
				return fmt.Errorf("bad signature: %w", err)
			}
			return nil
		},
	}
}

// checkHeaders refuses, without the body, a delivery whose signature could
// not be valid. go-github would fall back to the SHA-1 X-Hub-Signature
// when X-Hub-Signature-256 is absent; SHA-1 is not accepted here.
func (h *Webhook) checkHeaders(hd http.Header) error {
	if h.Secret == "" {
		return errors.New("no GitHub webhook secret is configured")
	}
	sig, ok := strings.CutPrefix(hd.Get(gh.SHA256SignatureHeader), "sha256=")
	if !ok || len(sig) != 2*sha256.Size {
		return errors.New("send X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body> (the SHA-1 X-Hub-Signature is not accepted)")
	}
	if _, err := hex.DecodeString(sig); err != nil {
		return errors.New("X-Hub-Signature-256 is not hexadecimal")
	}
	return nil
}

// refsOf lists the head branches an event is about.
func refsOf(event any) []string {
	switch e := event.(type) {
	case *gh.PullRequestEvent:
		return []string{e.GetPullRequest().GetHead().GetRef()}
	case *gh.PullRequestReviewEvent:
		return []string{e.GetPullRequest().GetHead().GetRef()}
	case *gh.CheckSuiteEvent:
		refs := []string{e.GetCheckSuite().GetHeadBranch()}
		for _, pr := range e.GetCheckSuite().PullRequests {
			refs = append(refs, pr.GetHead().GetRef())
		}
		return refs
	case *gh.StatusEvent:
		var refs []string
		for _, b := range e.Branches {
			refs = append(refs, b.GetName())
		}
		return refs
	}
	return nil
}

// buildOfBranch reads the build id of a bot branch: a promotion's
// promotebot/<project>/<id>, or a rollback's promotebot/<project>/rollback-<id>.
func buildOfBranch(ref string) (string, bool) {
	parts := strings.Split(strings.TrimPrefix(ref, "refs/heads/"), "/")
	if len(parts) != 3 || parts[0] != "promotebot" || parts[2] == "" {
		return "", false
	}
	id := strings.TrimPrefix(parts[2], "rollback-")
	return id, id != ""
}

func answer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(map[string]string{"status": msg}); err != nil {
		return // the client went away
	}
}
