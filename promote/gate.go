package promote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// Gate is what a route asks of a request before, and while, its body is
// read, so that nothing of an unauthenticated request is read beyond what
// refusing it needs. NewServer puts every route that takes a body or a
// credential behind one (see guard).
type Gate struct {
	// MaxBody is the largest body the route takes. A Content-Length above
	// it is answered 413 before anything is read; a body sent without a
	// length is cut there (413 too).
	MaxBody int64
	// Headers looks at the headers only. An error refuses the request (401)
	// with its body unread: a credential missing, malformed or outside its
	// time window. True means the headers alone prove the request (a bearer
	// token), so its body is read without waiting for a turn. Nil refuses
	// every request.
	Headers func(h http.Header) (bool, error)
	// Verify checks the credentials against the raw body (401 when they do
	// not match). Nil refuses every request.
	Verify func(h http.Header, body []byte) error

	// count, when set, is told the outcome of each refusal: the CI webhook
	// counts its calls by outcome (Metrics).
	count func(outcome string)
}

// ReadLimits bounds the reading of bodies that are not verified yet, across
// the whole server: without it, a hundred unsigned 5 MiB deliveries cost
// half a gigabyte of memory before each is refused.
type ReadLimits struct {
	// Concurrent is how many unverified bodies are read at once; 0 means
	// defaultConcurrentReads.
	Concurrent int
	// Wait is how long a request waits for a turn before it is answered
	// 503 with Retry-After; 0 means defaultReadWait.
	Wait time.Duration
}

const (
	// defaultConcurrentReads times the largest limit (GitHub's 5 MiB) bounds
	// what unverified bodies can hold at about 40 MiB.
	defaultConcurrentReads = 8
	// defaultReadWait is short next to Slack's 3 s, and smooths a burst of
	// genuine deliveries instead of refusing it.
	defaultReadWait = time.Second
	// unverifiedReadTimeout bounds how long a sender may take over an
	// unverified body, so that a slow one cannot keep a turn for the
	// server's whole ReadTimeout.
	unverifiedReadTimeout = 10 * time.Second
	// retryAfterSeconds is what a 503 for a busy server suggests.
	retryAfterSeconds = "1"
)

// guard puts routes behind their Gate. Its turns are shared by every route
// of one server.
type guard struct {
	turns chan struct{}
	wait  time.Duration
	log   *slog.Logger
}

func newGuard(l ReadLimits, log *slog.Logger) *guard {
	if l.Concurrent <= 0 {
		l.Concurrent = defaultConcurrentReads
	}
	if l.Wait <= 0 {
		l.Wait = defaultReadWait
	}
	return &guard{turns: make(chan struct{}, l.Concurrent), wait: l.Wait, log: log.With("component", "gate")}
}

// wrap serves h only for requests that pass gate; h then reads a body that
// is verified, or that the headers authenticated, bounded by MaxBody.
func (g *guard) wrap(gate Gate, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := g.admit(w, r, gate); err != nil {
			var ref *refusal
			if !errors.As(err, &ref) {
				ref = refuse(http.StatusUnauthorized, outcomeUnauthorized, "%s", err.Error())
			}
			if gate.count != nil {
				gate.count(ref.outcome)
			}
			g.log.Info("request refused", "outcome", ref.outcome, "status", ref.status, "reason", ref.msg,
				"method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			if ref.status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", retryAfterSeconds)
			}
			writeError(w, ref.status, ref.msg)
			return
		}
		h(w, r)
	}
}

// admit checks, in order: the declared length, the headers, then (unless
// the headers authenticated the request) reads the body within a turn and
// verifies it, leaving it in r.Body for the handler.
func (g *guard) admit(w http.ResponseWriter, r *http.Request, gate Gate) error {
	if r.ContentLength > gate.MaxBody {
		return tooLarge(gate.MaxBody)
	}
	if gate.Headers == nil || gate.Verify == nil {
		return errors.New("this route cannot verify requests")
	}
	authenticated, err := gate.Headers(r.Header)
	if err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, gate.MaxBody)
	if authenticated {
		return nil
	}
	release, ok := g.take(r.Context())
	if !ok {
		return refuse(http.StatusServiceUnavailable, outcomeBusy, "too many requests are being verified; retry in a second")
	}
	defer release()
	if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(unverifiedReadTimeout)); err != nil &&
		!errors.Is(err, http.ErrNotSupported) {
		return invalid("could not read the body")
	}
	body, err := readUnverified(r.Body, r.ContentLength)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return tooLarge(gate.MaxBody)
		}
		return invalid("could not read the body")
	}
	if err := gate.Verify(r.Header, body); err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return nil
}

// take waits up to g.wait for a turn to read an unverified body.
func (g *guard) take(ctx context.Context) (release func(), ok bool) {
	release = func() { <-g.turns }
	select {
	case g.turns <- struct{}{}:
		return release, true
	default:
	}
	timer := time.NewTimer(g.wait)
	defer timer.Stop()
	select {
	case g.turns <- struct{}{}:
		return release, true
	case <-timer.C:
	case <-ctx.Done():
	}
	return nil, false
}

// readUnverified reads body into a buffer sized by the declared length, so
// that a body of the limit costs the limit and not twice it.
func readUnverified(body io.Reader, length int64) ([]byte, error) {
	var buf bytes.Buffer
	if length > 0 {
		buf.Grow(int(length) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(body)
	return buf.Bytes(), err
}

func tooLarge(limit int64) *refusal {
	return refuse(http.StatusRequestEntityTooLarge, outcomeTooLarge, "body larger than %d bytes, this route's limit", limit)
}

// TimestampHeader carries the Unix time, in seconds, at which a webhook
// call was signed. With it, SignatureHeader is the HMAC-SHA256 of
// "<timestamp>.<raw body>", and the call is refused more than
// signatureWindow away from the server's clock.
const TimestampHeader = "X-Promotebot-Timestamp"

// signatureWindow is how far a signed timestamp may be from the server's
// clock, in either direction: Slack's window.
const signatureWindow = 5 * time.Minute

// freshTimestamp parses a TimestampHeader value and checks it is within
// signatureWindow of now.
func freshTimestamp(v string, now time.Time) error {
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return errors.New(TimestampHeader + " is not a Unix time in seconds")
	}
	if d := now.Sub(time.Unix(sec, 0)).Abs(); d > signatureWindow {
		return errors.New(TimestampHeader + " is more than 5 minutes from the server's clock: sign each call when it is sent")
	}
	return nil
}
