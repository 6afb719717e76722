package feedback

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/promotebot/promotebot/promote"
)

const (
	// maxEventBody bounds an event: Flux caps a message at 39,000
	// characters, and the Argo CD body holds a few messages.
	maxEventBody = 1 << 20
	// observeTimeout bounds the domain's work on one event. The sender
	// going away does not cut it short: a rollout record is not left half
	// written because notification-controller gave up waiting.
	observeTimeout = 20 * time.Second
	// maxMessage bounds a controller's message kept on a rollout: Flux
	// sends up to 39,000 characters, which no Slack message or build view
	// needs.
	maxMessage = 4000
)

// answer is what the event endpoints write for an event they took: the
// domain's Observation, and why an event was ignored.
type answer struct {
	Outcome string   `json:"outcome"`
	Builds  []string `json:"builds"`
	// Reason says why an event was ignored, for whoever set the
	// controller up (curl, or the controller's debug logs).
	Reason string `json:"reason,omitempty"`
}

// receiver is what the two event endpoints share: their credential
// checks, their decoder and the domain.
type receiver struct {
	source string
	// headers refuses a request whose credential is missing or malformed
	// (or, for a bearer token, wrong) without reading its body.
	headers func(h http.Header) error
	// headersProve tells the Gate that headers alone authenticate.
	headersProve bool
	// verify checks the credential against the raw body.
	verify func(h http.Header, body []byte) error
	// decode turns a verified body into an event, or says why it is
	// ignored; an error means the body is not an event (400).
	decode   func(body []byte, received time.Time) (ev promote.ClusterEvent, ignored string, err error)
	observer promote.Observer
	metrics  *promote.Metrics
	log      *slog.Logger
}

// gate is the promote.Gate of the receiver's route.
func (rc receiver) gate() promote.Gate {
	return promote.Gate{
		MaxBody: maxEventBody,
		Headers: func(h http.Header) (bool, error) {
			if err := rc.headers(h); err != nil {
				return false, err
			}
			return rc.headersProve, nil
		},
		Verify: rc.verify,
	}
}

// serve checks the credential (again, when a Gate ran first), decodes the
// event and hands it to the domain.
func (rc receiver) serve(w http.ResponseWriter, r *http.Request) {
	if err := rc.headers(r.Header); err != nil {
		rc.refuse(w, r, err)
		return
	}
	body, status, err := readBody(w, r)
	if err != nil {
		writeError(w, status, err.Error())
		return
	}
	if err := rc.verify(r.Header, body); err != nil {
		rc.refuse(w, r, err)
		return
	}
	ev, ignored, err := rc.decode(body, time.Now())
	if err != nil {
		rc.log.Info("cluster event refused", "source", rc.source, "err", err)
		rc.metrics.ClusterEvent(rc.source, promote.EventInvalid)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if ignored != "" {
		rc.log.Info("cluster event ignored", "source", rc.source, "reason", ignored)
		rc.metrics.ClusterEvent(rc.source, promote.OutcomeIgnored)
		writeJSON(w, http.StatusOK, answer{Outcome: promote.OutcomeIgnored, Builds: []string{}, Reason: ignored})
		return
	}
	obs, err := observe(r.Context(), rc.observer, ev)
	if err != nil {
		rc.log.Error("cluster event not recorded", "source", rc.source, "object", ev.Object,
			"path", ev.Path, "revision", ev.Revision, "status", ev.Status, "err", redactCredentials(err.Error()))
		writeError(w, http.StatusInternalServerError, "the event could not be recorded; the sender may retry")
		return
	}
	rc.log.Info("cluster event", "source", rc.source, "object", ev.Object, "path", ev.Path,
		"revision", ev.Revision, "status", ev.Status, "outcome", obs.Outcome, "builds", obs.Builds)
	writeJSON(w, http.StatusOK, answerOf(obs))
}

func (rc receiver) refuse(w http.ResponseWriter, r *http.Request, err error) {
	rc.log.Warn("cluster event refused", "source", rc.source, "reason", err.Error(), "remote", r.RemoteAddr)
	writeError(w, http.StatusUnauthorized, err.Error())
}

// observe hands ev to the domain within observeTimeout.
func observe(ctx context.Context, o promote.Observer, ev promote.ClusterEvent) (promote.Observation, error) {
	if o == nil {
		return promote.Observation{}, errors.New("no observer is wired to the event endpoint")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), observeTimeout)
	defer cancel()
	return o.Observe(ctx, ev)
}

func answerOf(obs promote.Observation) answer {
	builds := obs.Builds
	if builds == nil {
		builds = []string{}
	}
	return answer{Outcome: obs.Outcome, Builds: builds}
}

// readBody reads the request's body up to maxEventBody, and says which
// status refuses it when that fails.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	if r.ContentLength > maxEventBody {
		return nil, http.StatusRequestEntityTooLarge, errTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, errTooLarge
		}
		return nil, http.StatusBadRequest, errors.New("could not read the body")
	}
	return body, 0, nil
}

var errNoSecret = errors.New("no events secret is configured (PROMOTEBOT_EVENTS_SECRET)")

var errTooLarge = fmt.Errorf("body larger than %d bytes, this route's limit", maxEventBody)

// equalSecret compares without telling, by its timing, how much of got
// matched or how long the secret is.
func equalSecret(got, secret string) bool {
	g, s := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(g[:], s[:]) == 1
}

// writeJSON writes v as JSON with status, with the headers promote's
// answers carry (promote/httpjson.go).
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only this package's answer types get here.
		buf.Reset()
		buf.WriteString(`{"error":"internal error"}` + "\n")
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if _, err := w.Write(buf.Bytes()); err != nil {
		// The sender has gone away; nobody is left to tell.
		return
	}
}

// writeError writes {"error": msg}, the shape of every refusal the server
// writes. msg is shown to the sender: never a secret.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}

var urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s]+@`)

// redactCredentials removes the user information of URLs from an error's
// text before it is logged: the domain's errors can name a git remote.
func redactCredentials(s string) string {
	return urlUserinfo.ReplaceAllString(s, "${1}redacted@")
}

// clip bounds a controller's message to maxMessage bytes, on a character
// boundary.
func clip(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
