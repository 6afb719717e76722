package promote

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxFieldBytes bounds every field CI reports: they end up in Slack
// messages, git trailers and logs.
const maxFieldBytes = 512

// buildRequest is a build as CI reports it, in JSON or as a form.
type buildRequest struct {
	Project  string `json:"project"`
	Image    string `json:"image"`
	Type     string `json:"type"`
	Target   string `json:"target"`
	Commit   string `json:"commit"`
	Author   string `json:"author"`
	BuildURL string `json:"buildURL"`
	// BuiltAt is when CI built the image (RFC 3339); the lead time of a
	// change counts from it.
	BuiltAt string `json:"builtAt"`
}

// decodeBuildRequest decodes a JSON or form-encoded body. Unknown fields
// are not refused, so that a CI script written for a newer contract (or
// sending extras) keeps working; they come back as warnings in the answer.
func decodeBuildRequest(contentType string, body []byte) (buildRequest, []string, error) {
	mediaType, _, err := mime.ParseMediaType(contentType)
	switch {
	case contentType == "":
		return buildRequest{}, nil, unsupportedMedia("no Content-Type header", body)
	case err != nil:
		return buildRequest{}, nil, unsupportedMedia(fmt.Sprintf("Content-Type %q does not parse", contentType), body)
	}
	var req buildRequest
	switch mediaType {
	case "application/json":
		if err := json.Unmarshal(body, &req); err != nil {
			return buildRequest{}, nil, jsonProblem(err)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil {
			return buildRequest{}, nil, jsonProblem(err)
		}
		return req, unknownFields(slices.Collect(maps.Keys(fields))), nil
	case "application/x-www-form-urlencoded":
		if looksLikeJSON(body) {
			// curl -d sends JSON under this media type unless told otherwise.
			return buildRequest{}, nil, refuse(http.StatusUnsupportedMediaType, outcomeUnsupportedMedia,
				"the body is JSON but Content-Type is application/x-www-form-urlencoded (curl -d sends that): send Content-Type: application/json")
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return buildRequest{}, nil, invalid("malformed form body: percent-encode each value (curl --data-urlencode), or send JSON")
		}
		for _, f := range req.fields() {
			*f.value = form.Get(f.name)
		}
		return req, unknownFields(slices.Collect(maps.Keys(form))), nil
	}
	return buildRequest{}, nil, unsupportedMedia(fmt.Sprintf("Content-Type %s is not supported", mediaType), body)
}

// unsupportedMedia refuses a body whose media type the webhook does not
// take, saying which type to send: JSON when the body looks like it.
func unsupportedMedia(problem string, body []byte) *refusal {
	if looksLikeJSON(body) {
		return refuse(http.StatusUnsupportedMediaType, outcomeUnsupportedMedia,
			"%s and the body is JSON: send Content-Type: application/json", problem)
	}
	return refuse(http.StatusUnsupportedMediaType, outcomeUnsupportedMedia,
		"%s: send Content-Type: application/json (or application/x-www-form-urlencoded for form fields)", problem)
}

// looksLikeJSON reports whether body is a JSON object; no form body is.
func looksLikeJSON(body []byte) bool {
	trimmed := bytes.TrimSpace(body)
	return len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed)
}

// fieldAliases are the names CI scripts commonly use for the contract's
// fields; a warning about one of them names the field meant.
var fieldAliases = map[string]string{
	"sha": "commit", "commit_sha": "commit", "commitsha": "commit", "revision": "commit", "git_sha": "commit",
	"build_url": "buildURL", "ci_url": "buildURL", "run_url": "buildURL", "pipeline_url": "buildURL",
	"kind": "type", "branch": "target", "tag": "target", "ref": "target",
	"user": "author", "committer": "author", "pusher": "author",
}

// maxWarnings bounds the warnings of one answer; a body may hold thousands
// of unknown fields.
const maxWarnings = 10

// unknownFields warns about each name that is not one of the contract's
// fields, in sorted order. encoding/json matches field names without regard
// to case, so "Commit" is used, not unknown; the form decoder is exact.
func unknownFields(names []string) []string {
	var known buildRequest
	var unknown []string
	for _, name := range names {
		if !slices.ContainsFunc(known.fields(), func(f requestField) bool { return strings.EqualFold(f.name, name) }) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	var warnings []string
	for i, name := range unknown {
		if i == maxWarnings {
			warnings = append(warnings, fmt.Sprintf("and %d more unknown fields, ignored", len(unknown)-maxWarnings))
			break
		}
		quoted := strconv.Quote(truncate(name, 64))
		if meant, ok := fieldAliases[strings.ToLower(name)]; ok {
			warnings = append(warnings, fmt.Sprintf("unknown field %s ignored: send it as %q", quoted, meant))
			continue
		}
		warnings = append(warnings, fmt.Sprintf("unknown field %s ignored; the fields are %s", quoted, fieldNames()))
	}
	return warnings
}

// fieldNames lists the contract's fields for messages.
func fieldNames() string {
	var q buildRequest
	names := make([]string, 0, len(q.fields()))
	for _, f := range q.fields() {
		names = append(names, f.name)
	}
	return strings.Join(names, ", ")
}

// truncate shortens s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func jsonProblem(err error) *refusal {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return invalid("field %q must be a string", typeErr.Field)
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return invalid("malformed JSON at byte %d: %s", syntaxErr.Offset, syntaxErr.Error())
	}
	if errors.As(err, &typeErr) {
		return invalid("the body must be a JSON object")
	}
	return invalid("malformed JSON")
}

type requestField struct {
	name     string
	value    *string
	required bool
}

// fields lists the request's fields with their names in the contract; the
// one table that the form decoder and the checks share.
func (q *buildRequest) fields() []requestField {
	return []requestField{
		{"project", &q.Project, true},
		{"image", &q.Image, true},
		{"type", &q.Type, true},
		{"target", &q.Target, true},
		{"commit", &q.Commit, false},
		{"author", &q.Author, false},
		{"buildURL", &q.BuildURL, false},
		{"builtAt", &q.BuiltAt, false},
	}
}

// validate refuses what no project could accept; whether the project accepts
// the image and target is ConfigRepo.Check's to say.
func (q *buildRequest) validate() error {
	var missing []string
	for _, f := range q.fields() {
		if f.required && *f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return invalid("missing required field(s): %s; a build needs project, image, type (branch or tag) and target", strings.Join(missing, ", "))
	}
	for _, f := range q.fields() {
		if problem := fieldProblem(*f.value); problem != "" {
			return invalid("%s %s", f.name, problem)
		}
	}
	if q.BuildURL != "" && !isWebURL(q.BuildURL) {
		return invalid("buildURL must be an absolute http or https URL")
	}
	if _, err := q.builtAt(time.Now()); err != nil {
		return err
	}
	for _, l := range q.links() {
		if u, err := url.Parse(*l.value); err == nil && u.User != nil {
			return invalid("%s must not carry user information (user:password@): it would be shown to people", l.name)
		}
	}
	switch Kind(q.Type) {
	case KindBranch, KindTag:
	default:
		return invalid("type must be %q or %q, not %q", KindBranch, KindTag, q.Type)
	}
	return nil
}

// fieldProblem says what is wrong with a field's value, or "".
func fieldProblem(v string) string {
	switch {
	case len(v) > maxFieldBytes:
		return fmt.Sprintf("is longer than %d bytes", maxFieldBytes)
	case !utf8.ValidString(v):
		return "is not valid UTF-8"
	case strings.ContainsFunc(v, unicode.IsControl):
		return "contains control characters"
	}
	return ""
}

// links are the fields CI may fill with a link people follow from Slack:
// buildURL, and commit when it is a URL rather than a hash.
func (q *buildRequest) links() []requestField {
	var out []requestField
	if q.BuildURL != "" {
		out = append(out, requestField{name: "buildURL", value: &q.BuildURL})
	}
	if strings.Contains(q.Commit, "://") {
		out = append(out, requestField{name: "commit", value: &q.Commit})
	}
	return out
}

// checkLinks refuses links to hosts that ci.allowedHosts leaves out.
func (q *buildRequest) checkLinks(ci CIConfig) error {
	for _, l := range q.links() {
		u, err := url.Parse(*l.value)
		if err != nil || !isWebURL(*l.value) {
			return invalid("%s must be an absolute http or https URL", l.name)
		}
		if !ci.AllowsHost(u.Hostname()) {
			return invalid("%s links to %s, which ci.allowedHosts does not list (%s)", l.name, u.Hostname(),
				strings.Join(ci.AllowedHosts, ", "))
		}
	}
	return nil
}

func isWebURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// builtAtSkew is how far in the future a builtAt may be (clocks differ).
const builtAtSkew = 5 * time.Minute

// builtAt is the time CI built the image, zero when it did not say.
func (q *buildRequest) builtAt(now time.Time) (time.Time, error) {
	if q.BuiltAt == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, q.BuiltAt)
	if err != nil {
		return time.Time{}, invalid("builtAt must be an RFC 3339 time, such as 2026-12-07T10:00:00Z")
	}
	if t.After(now.Add(builtAtSkew)) {
		return time.Time{}, invalid("builtAt %s is in the future", q.BuiltAt)
	}
	return t.UTC(), nil
}
