// Package fakeslack is the core that promotebot's two stand-ins for Slack's
// Web API share: slackui/slacktest, the recording server of the tests, and
// slackui/localslack, the quickstart's local workspace and page. It reads a
// Web API request as Slack does (the query, a form or JSON body, the bot
// token), and answers the methods both fakes implement against one
// Workspace: its users, groups, channels, DMs and messages.
//
// A Workspace holds no lock: each fake keeps state of its own beside it
// (recorded calls, injected failures, triggers, the page) and guards both
// with its own mutex.
package fakeslack

import (
	"encoding/json"
	"maps"
	"mime"
	"net/http"
	"strings"
)

// OK is Slack's answer of a call that succeeded, with fields.
func OK(fields map[string]any) map[string]any {
	a := map[string]any{"ok": true}
	maps.Copy(a, fields)
	return a
}

// Err is Slack's answer of a call that failed with the error code.
func Err(code string) map[string]any {
	return map[string]any{"ok": false, "error": code}
}

// ReadParams decodes a request's parameters: the query, and a form or JSON
// body. Form fields are kept but token; a JSON body's top-level fields are
// kept as their string value, or as their raw JSON when they are not
// strings. jsonBody reports a JSON body; code is Slack's error code when
// the body cannot be read.
func ReadParams(r *http.Request) (params map[string]string, jsonBody bool, code string) {
	params = map[string]string{}
	mediaType := ""
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return params, false, "invalid_post_type"
		}
		mediaType = mt
	}
	switch {
	case mediaType == "application/json":
		if err := r.ParseForm(); err != nil { // the query only
			return params, true, "invalid_form_data"
		}
		addForm(params, r)
		return params, true, readJSON(r, params)
	case mediaType == "multipart/form-data":
		if err := r.ParseMultipartForm(10 << 20); err != nil {
			return params, false, "invalid_form_data"
		}
	case mediaType == "application/x-www-form-urlencoded" || r.Method == http.MethodGet && mediaType == "":
		if err := r.ParseForm(); err != nil {
			return params, false, "invalid_form_data"
		}
	default:
		return params, false, "invalid_post_type"
	}
	addForm(params, r)
	return params, false, ""
}

func addForm(params map[string]string, r *http.Request) {
	for k, v := range r.Form {
		if k != "token" && len(v) > 0 {
			params[k] = v[0]
		}
	}
}

func readJSON(r *http.Request, params map[string]string) string {
	var body json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		return "invalid_json"
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return "json_not_object"
	}
	for k, raw := range fields {
		var str string
		if json.Unmarshal(raw, &str) == nil {
			params[k] = str
		} else {
			params[k] = string(raw)
		}
	}
	return ""
}

// Authenticate returns "" when a request ReadParams decoded carries token,
// else Slack's error code. The token is taken from the Authorization header
// ("Bearer xoxb-…") or, for a form, from its token field, as slack-go sends
// it; a JSON body must carry the header, as on Slack.
func Authenticate(r *http.Request, jsonBody bool, token string) string {
	got := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, t, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "invalid_auth"
		}
		got = strings.TrimSpace(t)
	} else if !jsonBody {
		got = r.Form.Get("token")
	}
	switch {
	case got == "":
		return "not_authed"
	case got != token:
		return "invalid_auth"
	}
	return ""
}
