package overlay

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/promotebot/promotebot/promote"
)

func TestValidateTarget(t *testing.T) {
	long := strings.Repeat("a", 255)
	tests := []struct {
		target string
		ok     bool
	}{
		{"main", true},
		{"feature/login", true},
		{"Feature/A", true},
		{"v1.2.3", true},
		{"release-2024.01", true},
		{"ünïcødé/ブランチ", true},
		{"a@b", true},
		{`"quoted"`, true},
		{"{x}", true},
		{"#c", true},
		{"a;b", true},
		{long, true},
		{long + "a", false},
		{"", false},
		{"@", false},
		{"../../etc", false},
		{"a/../../b", false},
		{"/abs", false},
		{"trailing/", false},
		{"a//b", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"a\rb", false},
		{"a\tb", false},
		{"a\x7fb", false},
		{"a\u0085b", false},
		{"a: b", false},
		{"a b", false},
		{"a~1", false},
		{"a^", false},
		{"a:b", false},
		{"a?", false},
		{"*", false},
		{"a[", false},
		{`a\b`, false},
		{"a@{1}", false},
		{".hidden", false},
		{"a/.b", false},
		{"a.lock", false},
		{"a.lock/b", false},
		{"a.", false},
		{"\xff\xfe", false},
		{"\u202etxt.exe", false},
		{"a\u2066b", false},
		{"\ufeffmain", false},
		{"main\u200b", false},
		{"a\u200db", false},
		{"a\u00adb", false},
		{"a\u00a0b", false},
		{"a\u3000b", false},
		{"a\u2028b", false},
		{"a\ufe0fb", false},
		{"a\u3164b", false},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			err := validateTarget(tt.target)
			if tt.ok && err != nil {
				t.Fatalf("ValidateTarget(%q) = %v, want nil", tt.target, err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidTarget) {
				t.Fatalf("ValidateTarget(%q) = %v, want ErrInvalidTarget", tt.target, err)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	long := strings.Repeat("very-long-branch-name/", 10) + "end"
	tests := []struct {
		kind                promote.Kind
		target              string
		plain, hashed, host string
	}{
		{promote.KindBranch, "feature/Login", "branch-feature-login", "branch-feature-login-", "feature-login.branch.hello.example.com"},
		{promote.KindBranch, "Feature/A", "branch-feature-a", "branch-feature-a-39100968", "feature-a.branch.hello.example.com"},
		{promote.KindBranch, "feature-a", "branch-feature-a", "branch-feature-a-d4dfdb71", "feature-a.branch.hello.example.com"},
		{promote.KindTag, "v1.2.3", "tag-v1-2-3", "tag-v1-2-3-eccfb85f", "v1-2-3.tag.hello.example.com"},
		{promote.KindBranch, "--x__y--", "branch-x-y", "branch-x-y-", "x-y.branch.hello.example.com"},
		// nothing of [a-z0-9] survives: the slug is the hash
		{promote.KindBranch, "Ünïcødé", "branch-n-c-d", "", ""},
		{promote.KindBranch, "ü", "branch-", "", ""},
	}
	p := promote.Project{ID: "hello", URL: "https://hello.example.com"}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			n, err := newEnvNames(tt.kind, tt.target)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(n.plain, tt.plain) {
				t.Errorf("plain = %q, want prefix %q", n.plain, tt.plain)
			}
			if tt.hashed != "" && !strings.HasPrefix(n.hashed, tt.hashed) {
				t.Errorf("hashed = %q, want prefix %q", n.hashed, tt.hashed)
			}
			if n.hashed != n.plain+"-"+n.hash {
				t.Errorf("hashed = %q, want %q", n.hashed, n.plain+"-"+n.hash)
			}
			if tt.host != "" && QAHost(p, tt.kind, n.plain) != tt.host {
				t.Errorf("host = %q, want %q", QAHost(p, tt.kind, n.plain), tt.host)
			}
			if got, err := EnvName(tt.kind, tt.target); err != nil || got != n.plain {
				t.Errorf("EnvName = %q, %v; want %q", got, err, n.plain)
			}
		})
	}
	t.Run("empty slug is the hash", func(t *testing.T) {
		n, err := newEnvNames(promote.KindBranch, "ü")
		if err != nil {
			t.Fatal(err)
		}
		if n.plain != "branch-"+n.hash || n.hashed != "branch-"+n.hash+"-"+n.hash {
			t.Errorf("plain %q hashed %q, hash %s", n.plain, n.hashed, n.hash)
		}
	})
	t.Run("too long", func(t *testing.T) {
		n, err := newEnvNames(promote.KindBranch, long)
		if err != nil {
			t.Fatal(err)
		}
		if len(n.plain) > 63 || len(n.hashed) > 63 || !strings.HasSuffix(n.plain, "-"+n.hash) {
			t.Errorf("plain %q (%d) hashed %q (%d)", n.plain, len(n.plain), n.hashed, len(n.hashed))
		}
		if strings.Contains(n.plain, "--") {
			t.Errorf("plain %q has a doubled dash", n.plain)
		}
		ns := n.namespace(promote.Project{ID: strings.Repeat("p", 40)}, n.plain)
		if len(ns) > 63 || !strings.HasSuffix(ns, "-"+n.hash) {
			t.Errorf("namespace %q (%d)", ns, len(ns))
		}
	})
	t.Run("bad kind", func(t *testing.T) {
		if _, err := EnvName("pr", "x"); !errors.Is(err, ErrInvalidKind) {
			t.Errorf("err = %v, want ErrInvalidKind", err)
		}
	})
}

// TestEnvNameAlwaysSafe checks that whatever target passes validation, the
// env is a DNS label and the directory stays below overlays/qa/.
func TestEnvNameAlwaysSafe(t *testing.T) {
	label := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	p := promote.Project{ID: "hello", Path: "apps/hello", URL: "https://hello.example.com"}
	for _, target := range hostileTargets {
		for _, kind := range []promote.Kind{promote.KindBranch, promote.KindTag} {
			n, err := newEnvNames(kind, target)
			if err != nil {
				continue
			}
			for _, env := range []string{n.plain, n.hashed, n.namespace(p, n.plain), n.namespace(p, n.hashed)} {
				if !label.MatchString(env) {
					t.Errorf("%s %q: %q is not a DNS label", kind, target, env)
				}
			}
			if dir := qaDir(p, n.plain); !strings.HasPrefix(dir, "apps/hello/overlays/qa/") || strings.Count(dir, "/") != 4 {
				t.Errorf("%s %q: dir %q", kind, target, dir)
			}
		}
	}
}

// hostileTargets are names a CI job could send; the valid ones must never
// make a write land outside the project's overlays/qa/.
var hostileTargets = []string{
	"../../etc", "/abs", "a/../../b", "a\x00b", "a\nb", "a: b", `"quoted"`, "{x}", "#c", "*",
	"..", ".", "-", "--", "~", "yes", "on", "null", "1.10", "0x1F", "&anchor", "!tag", "|", ">-",
	"'single'", "a#b", "a%2F..%2Fb", "ブランチ/機能", "ü", "ÄÖÜ/ß", "\u202etxt.exe",
	strings.Repeat("x/", 127) + "x", strings.Repeat("é", 127), strings.Repeat("a", 300),
}

func TestValidateProject(t *testing.T) {
	good := promote.Project{ID: "hello", Path: "apps/hello", Image: "registry.example.com/acme/hello", URL: "https://hello.example.com"}
	tests := []struct {
		name string
		edit func(*promote.Project)
		ok   bool
	}{
		{"good", func(*promote.Project) {}, true},
		{"service", func(p *promote.Project) { p.Service = "hello:80" }, true},
		{"root path", func(p *promote.Project) { p.Path = "." }, true},
		{"bad id", func(p *promote.Project) { p.ID = "Hello" }, false},
		{"empty id", func(p *promote.Project) { p.ID = "" }, false},
		{"dotdot path", func(p *promote.Project) { p.Path = "../x" }, false},
		{"abs path", func(p *promote.Project) { p.Path = "/apps" }, false},
		{"unclean path", func(p *promote.Project) { p.Path = "apps//hello" }, false},
		{"image with tag", func(p *promote.Project) { p.Image = "registry.example.com/acme/hello:1" }, false},
		{"bad host", func(p *promote.Project) { p.URL = "https://hello_1.example.com" }, false},
		{"no host", func(p *promote.Project) { p.URL = "hello.example.com" }, false},
		{"bad service", func(p *promote.Project) { p.Service = "hello" }, false},
		{"bad port", func(p *promote.Project) { p.Service = "hello:70000" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good
			tt.edit(&p)
			err := validateProject(p)
			if tt.ok != (err == nil) || err != nil && !errors.Is(err, errInvalidProject) {
				t.Errorf("validateProject(%+v) = %v", p, err)
			}
		})
	}
}

// TestScript: a target outside ASCII is refused unless the project allows
// it; invisible characters are refused either way.
func TestScript(t *testing.T) {
	unicodeOK := hello
	unicodeOK.AllowUnicodeTargets = true
	for _, tc := range []struct {
		target        string
		plain, anyway bool // accepted by default, accepted when allowed
	}{
		{"feature/login", true, true},
		{"m\u0430in", false, true}, // a Cyrillic а
		{"feature/ü", false, true},
		{"\ufeffmain", false, false},
		{"ma\u200bin", false, false},
	} {
		for _, c := range []struct {
			p    promote.Project
			want bool
		}{{hello, tc.plain}, {unicodeOK, tc.anyway}} {
			_, err := QAOverlay(c.p, promote.KindBranch, tc.target, "registry.example.com/acme/hello:1", meta)
			if (err == nil) != c.want || err != nil && !errors.Is(err, ErrInvalidTarget) {
				t.Errorf("QAOverlay(allowUnicodeTargets %v, %q) = %v, want accepted %v", c.p.AllowUnicodeTargets, tc.target, err, c.want)
			}
			_, err = DeleteQAOverlay(c.p, promote.KindBranch, tc.target, meta)
			if (err == nil) != c.want {
				t.Errorf("DeleteQAOverlay(allowUnicodeTargets %v, %q) = %v, want accepted %v", c.p.AllowUnicodeTargets, tc.target, err, c.want)
			}
		}
	}
}
