package feedback

import "strings"

// commitOf reads a config-repository commit from a controller's revision,
// lower-cased:
//
//   - "main@sha1:<40 hex>", Flux since RFC-0005: the digest is what
//     follows the last "@", and its algorithm prefix is sha1 for git;
//   - "sha1:<40 hex>", the same without the ref;
//   - "main/<40 hex>", Flux before RFC-0005;
//   - "<40 hex>", Argo CD.
//
// Anything else is not a commit of a git repository (an OCI artifact's
// "sha256:" digest, a Helm chart's version, nothing at all).
func commitOf(revision string) (string, bool) {
	rev := revision
	if i := strings.LastIndexByte(rev, '@'); i >= 0 {
		rev = rev[i+1:]
	} else if i := strings.LastIndexByte(rev, '/'); i >= 0 {
		rev = rev[i+1:]
	}
	rev = strings.TrimPrefix(rev, "sha1:")
	if len(rev) != 40 || strings.Trim(strings.ToLower(rev), "0123456789abcdef") != "" {
		return "", false
	}
	return strings.ToLower(rev), true
}
