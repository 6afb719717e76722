package promote

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
)

// errorBody is the shape of every refusal the server writes (docs/contracts.md, HTTP).
type errorBody struct {
	Error string `json:"error"`
}

// internalErrorJSON is written when an answer cannot be encoded; it is
// constant so that writing it cannot fail in turn.
const internalErrorJSON = `{"error":"internal error"}`

// writeJSON is the one place that writes JSON answers: the status, v encoded
// as JSON, and headers that keep browsers and proxies from reinterpreting or
// caching it.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Answers go to CI logs and terminals, not into HTML: "<secret>" reads
	// better than "\u003csecret\u003e".
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only the server's own answer types get here; failing to encode one
		// is a bug, and the client still deserves JSON.
		buf.Reset()
		buf.WriteString(internalErrorJSON + "\n")
		status = http.StatusInternalServerError
	}
	writeBody(w, status, "application/json", buf.Bytes())
}

// writeError writes {"error": msg} with status. msg is shown to the client:
// it must never hold a secret or an internal detail.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// writeText writes a plain-text answer, for probes that expect one.
func writeText(w http.ResponseWriter, status int, text string) {
	writeBody(w, status, "text/plain; charset=utf-8", []byte(text))
}

func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if _, err := w.Write(body); err != nil {
		// The client has gone away; nobody is left to tell.
		return
	}
}

// methodNotAllowed answers 405 with an Allow header listing allow.
func methodNotAllowed(allow ...string) http.HandlerFunc {
	list := strings.Join(allow, ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", list)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+list)
	}
}

// notFound answers 404 for paths the server does not serve.
func notFound(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusNotFound, "no such route")
}

var (
	urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s]+@`)
	dsnPassword = regexp.MustCompile(`(?i)(password=)\S+`)
)

// redactCredentials removes the user information of URLs and DSN passwords
// from an error's text before it is logged or shown: a postgres:// URL or a
// git remote can carry them.
func redactCredentials(s string) string {
	s = urlUserinfo.ReplaceAllString(s, "${1}redacted@")
	return dsnPassword.ReplaceAllString(s, "${1}redacted")
}
