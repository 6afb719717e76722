package overlay

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/promote"
)

// Meta carries the commit metadata a caller knows; it is written as the
// commit's trailers (package trailer).
type Meta struct {
	// Build is the Promotebot-Build trailer.
	Build string
	// Source is the Promotebot-Source trailer, already formatted.
	Source string
	// Author is the Promotebot-Author trailer: who wrote the build, as CI
	// reported it (an e-mail, a name, a Slack id …); empty when CI did not.
	Author string
	// BuiltAt and ReceivedAt are the Promotebot-Built-At and
	// Promotebot-Received-At trailers, already formatted.
	BuiltAt, ReceivedAt string
	// ApprovedBy holds one Approved-by trailer each, already formatted.
	ApprovedBy []string
	// PromotedBy is the Promoted-by trailer.
	PromotedBy string
	// RequiredApprovals is the Promotebot-Required-Approvals trailer of a
	// production change: the project's policy at the time, for auditors.
	RequiredApprovals string
	// RollbackOf is the Promotebot-Rollback-Of trailer: set, a production
	// change is a rollback of that build (ProductionImage's subject says so).
	RollbackOf string
	// Reason is the Promotebot-Reason trailer: why, in one line.
	Reason string
	// Teardown is the Promotebot-Teardown trailer of a QA environment's
	// removal: why it was torn down.
	Teardown string
}

// ErrInvalidTarget is returned for a branch or tag name that promotebot
// refuses; the wrapping error says why.
var ErrInvalidTarget = promote.NewPermanent("invalid target")

// ErrInvalidKind is returned for a promote.Kind other than promote.KindBranch and promote.KindTag.
var ErrInvalidKind = promote.NewPermanent("invalid kind")

// errInvalidProject is returned for a project whose fields cannot be used
// safely (bad id, path, image, host or service).
var errInvalidProject = promote.NewPermanent("invalid project")

// errEnvCollision is returned when both the plain and the hashed environment
// name of a target are owned by someone else.
var errEnvCollision = promote.NewPermanent("environment name collision")

const (
	// maxTargetLen bounds a target name in bytes.
	maxTargetLen = 255
	// dnsLabelLen is the longest DNS label, which env and namespace must fit.
	dnsLabelLen = 63
	// annotationKind and annotationTarget mark the owner of a QA overlay in
	// its kustomization.yaml metadata.annotations.
	annotationKind   = "promotebot.dev/kind"
	annotationTarget = "promotebot.dev/target"
)

// validateTarget checks a branch or tag name: non-empty, at most 255 bytes,
// valid UTF-8 without control, format or invisible characters, and a valid
// git ref name (git check-ref-format rules).
func validateTarget(target string) error {
	if err := checkTarget(target); err != nil {
		return fmt.Errorf("%w %q: %s", ErrInvalidTarget, target, err)
	}
	return nil
}

// checkTarget returns the reason a target is refused, as a plain error.
func checkTarget(t string) error {
	switch {
	case t == "":
		return errors.New("empty")
	case len(t) > maxTargetLen:
		return fmt.Errorf("longer than %d bytes", maxTargetLen)
	case !utf8.ValidString(t):
		return errors.New("not valid UTF-8")
	case strings.IndexFunc(t, unicode.IsControl) >= 0:
		return errors.New("contains a control character")
	case strings.IndexFunc(t, isBidiControl) >= 0:
		return errors.New("contains a bidirectional control character")
	case strings.IndexFunc(t, isInvisible) >= 0:
		r, _ := utf8.DecodeRuneInString(t[strings.IndexFunc(t, isInvisible):])
		return fmt.Errorf("contains an invisible or format character (%U)", r)
	case t == "@":
		return errors.New(`is "@"`)
	case strings.ContainsAny(t, " ~^:?*[\\"):
		return errors.New(`contains one of " ~^:?*[\"`)
	case strings.Contains(t, ".."):
		return errors.New(`contains ".."`)
	case strings.Contains(t, "@{"):
		return errors.New(`contains "@{"`)
	case strings.HasPrefix(t, "/") || strings.HasSuffix(t, "/"):
		return errors.New(`starts or ends with "/"`)
	case strings.Contains(t, "//"):
		return errors.New(`contains "//"`)
	case strings.HasSuffix(t, "."):
		return errors.New(`ends with "."`)
	}
	for _, c := range strings.Split(t, "/") {
		if strings.HasPrefix(c, ".") || strings.HasSuffix(c, ".lock") {
			return fmt.Errorf("component %q starts with \".\" or ends with \".lock\"", c)
		}
	}
	return nil
}

// isBidiControl matches the invisible characters that reorder text
// ("Trojan Source"): a name holding one reads differently than it is.
func isBidiControl(r rune) bool {
	return r == '\u061c' || r == '\u200e' || r == '\u200f' ||
		r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069'
}

func validateKind(k promote.Kind) error {
	if k != promote.KindBranch && k != promote.KindTag {
		return fmt.Errorf("%w %q: want %q or %q", ErrInvalidKind, string(k), promote.KindBranch, promote.KindTag)
	}
	return nil
}

var (
	nonSlug    = regexp.MustCompile(`[^a-z0-9]+`)
	dnsLabel   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	serviceRef = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?:([0-9]{1,5})$`)
)

// slug lower-cases a target and turns every run of characters outside
// [a-z0-9] into one "-", trimmed at both ends.
func slug(target string) string {
	return strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(target), "-"), "-")
}

// hash8 is the short hash that tells targets apart in names.
func hash8(kind promote.Kind, target string) string {
	sum := sha256.Sum256([]byte(string(kind) + "\x00" + target))
	return hex.EncodeToString(sum[:])[:8]
}

// fitLabel returns name when it fits a DNS label, else name truncated so that
// "<name>-<hash>" fits, trailing "-" trimmed.
func fitLabel(name, hash string) string {
	if len(name) <= dnsLabelLen {
		return name
	}
	return strings.TrimRight(name[:dnsLabelLen-1-len(hash)], "-") + "-" + hash
}

// envNames are the two names a target's QA environment may take.
type envNames struct {
	kind   promote.Kind
	target string
	hash   string
	plain  string // "<kind>-<slug>", fitted
	hashed string // "<kind>-<slug>-<hash8>", fitted
	// prefer, when it is one of the two and free, is taken over the plain
	// name: the one announced when the build was accepted.
	prefer string
}

func newEnvNames(kind promote.Kind, target string) (envNames, error) {
	if err := validateKind(kind); err != nil {
		return envNames{}, err
	}
	if err := validateTarget(target); err != nil {
		return envNames{}, err
	}
	h := hash8(kind, target)
	s := slug(target)
	if s == "" {
		s = h
	}
	prefix := string(kind) + "-" + s
	return envNames{
		kind:   kind,
		target: target,
		hash:   h,
		plain:  fitLabel(prefix, h),
		hashed: fitLabel(prefix+"-"+h, h),
	}, nil
}

// EnvName returns the name a target's QA environment takes when nobody else
// owns it: "<kind>-<slug>", with a hash suffix when it would not fit a DNS
// label. The environment an Edit actually writes is in its clone.Outcome.
func EnvName(kind promote.Kind, target string) (string, error) {
	n, err := newEnvNames(kind, target)
	if err != nil {
		return "", err
	}
	return n.plain, nil
}

// HashedEnvName returns the name a target's QA environment takes when
// another target owns its plain name (EnvName): "<kind>-<slug>-<hash>".
func HashedEnvName(kind promote.Kind, target string) (string, error) {
	n, err := newEnvNames(kind, target)
	if err != nil {
		return "", err
	}
	return n.hashed, nil
}

// QAHost returns the host name of a QA environment:
// "<env without its kind prefix>.<kind>.<project host>".
func QAHost(p promote.Project, kind promote.Kind, env string) string {
	return strings.TrimPrefix(env, string(kind)+"-") + "." + string(kind) + "." + p.Host()
}

// namespace is the QA environment's namespace, "<project>-<env>" fitted to a
// DNS label.
// isInvisible matches what renders as nothing or as a blank: format
// characters (zero-width spaces and joiners, the BOM, soft hyphens), every
// kind of space and line separator, variation selectors and the Hangul
// fillers. "\ufeffmain" reads "main" and must not pass for it.
func isInvisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Zs, unicode.Zl, unicode.Zp, unicode.Variation_Selector) ||
		r == '\u034f' || r == '\u115f' || r == '\u1160' || r == '\u3164' || r == '\uffa0'
}

// checkScript refuses a target with characters outside ASCII unless the
// project allows them (projects[].allowUnicodeTargets): letters of other
// scripts can look like ASCII ones ("mаin" with a Cyrillic "а").
func checkScript(p promote.Project, target string) error {
	if p.AllowUnicodeTargets {
		return nil
	}
	for _, r := range target {
		if r > unicode.MaxASCII {
			return fmt.Errorf("%w %q: %q is not ASCII; a project whose branches or tags use other scripts sets allowUnicodeTargets",
				ErrInvalidTarget, target, r)
		}
	}
	return nil
}

func (n envNames) namespace(p promote.Project, env string) string {
	return fitLabel(p.ID+"-"+env, n.hash)
}

// qaDir is the directory of a QA environment in the config repo.
func qaDir(p promote.Project, env string) string {
	return path.Join(p.Path, "overlays", "qa", env)
}

// owner tells who owns a QA overlay directory.
type owner int

const (
	ownerNone    owner = iota // the directory does not exist
	ownerSame                 // marked for the same kind and target
	ownerSomeone              // anyone else, or unmarked
)

// ownerOf reads the ownership marker of a QA overlay directory.
func ownerOf(f clone.Files, dir string, kind promote.Kind, target string) (owner, error) {
	if _, err := f.ReadDir(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ownerNone, nil
		}
		return 0, fmt.Errorf("read %s: %w", dir, err)
	}
	data, err := f.ReadFile(path.Join(dir, "kustomization.yaml"))
	if errors.Is(err, fs.ErrNotExist) {
		return ownerSomeone, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", dir, err)
	}
	k, t, ok := readOwner(data)
	if ok && k == string(kind) && t == target {
		return ownerSame, nil
	}
	return ownerSomeone, nil
}

// readOwner returns the ownership annotations of a kustomization file.
func readOwner(data []byte) (kind, target string, ok bool) {
	rn, err := yaml.Parse(string(data))
	if err != nil {
		return "", "", false
	}
	a, err := rn.Pipe(yaml.Lookup("metadata", "annotations"))
	if err != nil || a == nil || a.YNode().Kind != yaml.MappingNode {
		return "", "", false
	}
	k, kerr := a.Pipe(yaml.Get(annotationKind))
	t, terr := a.Pipe(yaml.Get(annotationTarget))
	if kerr != nil || terr != nil || k == nil || t == nil {
		return "", "", false
	}
	if k.YNode().Kind != yaml.ScalarNode || t.YNode().Kind != yaml.ScalarNode {
		return "", "", false
	}
	return k.YNode().Value, t.YNode().Value, true
}

// resolve picks the environment a target writes to: the name it already
// owns; else the preferred name when free; else the plain name when free,
// else the hashed one.
func (n envNames) resolve(f clone.Files, p promote.Project) (env string, exists bool, err error) {
	free := ""
	for _, env := range []string{n.plain, n.hashed} {
		o, err := ownerOf(f, qaDir(p, env), n.kind, n.target)
		if err != nil {
			return "", false, err
		}
		switch {
		case o == ownerSame:
			// The env the target already has wins over a name freed since.
			return env, true, nil
		case o == ownerNone && (free == "" || env == n.prefer):
			free = env
		}
	}
	if free != "" {
		return free, false, nil
	}
	return "", false, fmt.Errorf("%w: qa/%s and qa/%s of %s belong to others, not to %s %q",
		errEnvCollision, n.plain, n.hashed, p.ID, n.kind, n.target)
}

func (n envNames) owned(f clone.Files, p promote.Project) (env string, ok bool, err error) {
	for _, env := range []string{n.plain, n.hashed} {
		o, err := ownerOf(f, qaDir(p, env), n.kind, n.target)
		if err != nil {
			return "", false, err
		}
		if o == ownerSame {
			return env, true, nil
		}
	}
	return "", false, nil
}

// validateProject checks that a project can be used to build paths, names
// and hosts without surprises.
func validateProject(p promote.Project) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", errInvalidProject, p.ID, fmt.Sprintf(format, args...))
	}
	if err := promote.CheckProjectID(p.ID); err != nil {
		return bad("id: %v", err)
	}
	if p.Path == "" || strings.HasPrefix(p.Path, "/") || path.Clean(p.Path) != p.Path ||
		p.Path == ".." || strings.HasPrefix(p.Path, "../") || strings.ContainsAny(p.Path, "\\\x00") {
		return bad("path %q must be a clean relative path inside the repository", p.Path)
	}
	if _, err := normalizedName(p.Image); err != nil {
		return bad("image: %v", err)
	}
	if err := checkHost(p.Host()); err != nil {
		return bad("host %q: %v", p.Host(), err)
	}
	if p.Service != "" {
		m := serviceRef.FindStringSubmatch(p.Service)
		if m == nil {
			return bad("service %q must be \"name:port\"", p.Service)
		}
		if port, err := strconv.Atoi(m[2]); err != nil || port < 1 || port > 65535 {
			return bad("service %q: port out of range", p.Service)
		}
	}
	return nil
}

// checkHost accepts a lower-case DNS name of labels.
func checkHost(h string) error {
	if h == "" || len(h) > 253 {
		return errors.New("must be a DNS name of at most 253 bytes")
	}
	for _, l := range strings.Split(h, ".") {
		if !dnsLabel.MatchString(l) {
			return fmt.Errorf("label %q is not a lower-case DNS label", l)
		}
	}
	return nil
}
