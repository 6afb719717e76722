package overlay

import (
	"errors"
	"strings"
	"testing"

	"github.com/promotebot/promotebot/promote"
)

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

var hello = promote.Project{
	ID:    "hello",
	Path:  "apps/hello",
	Image: "registry.example.com/acme/hello",
	URL:   "https://hello.example.com",
}

func TestParseImage(t *testing.T) {
	tests := []struct {
		ref     string
		want    imageRef
		short   string
		wantErr error
	}{
		{ref: "registry.example.com/acme/hello:1.4.0", want: imageRef{hello.Image, "1.4.0", ""}, short: "1.4.0"},
		{ref: "registry.example.com/acme/hello@" + digestB, want: imageRef{hello.Image, "", digestB}, short: "sha256:0123456789ab"},
		{ref: "registry.example.com/acme/hello:1.4.0@" + digestB, want: imageRef{hello.Image, "1.4.0", digestB}, short: "1.4.0@sha256:0123456789ab"},
		{ref: "registry.example.com/acme/hello:1.4.0@" + digestA, want: imageRef{hello.Image, "1.4.0", digestA}, short: "1.4.0@sha256:aaaaaaaaaaaa"},
		{ref: "registry.example.com/acme/hello:007", want: imageRef{hello.Image, "007", ""}, short: "007"},
		{ref: "registry.example.com/acme/hello", wantErr: errInvalidImage},
		{ref: "", wantErr: errInvalidImage},
		{ref: "Registry.example.com/acme/Hello:1", wantErr: errInvalidImage},
		{ref: "registry.example.com/acme/hello:1 ", wantErr: errInvalidImage},
		{ref: "registry.example.com/acme/hello:a\nb", wantErr: errInvalidImage},
		{ref: "registry.example.com/acme/hello@sha256:short", wantErr: errInvalidImage},
		{ref: strings.TrimPrefix(digestA, "sha256:"), wantErr: errInvalidImage},
		{ref: "registry.example.com/acme/other:1", wantErr: ErrForeignImage},
		{ref: "registry.example.com/acme/hello-evil:1", wantErr: ErrForeignImage},
		{ref: "evil.example.com/acme/hello:1", wantErr: ErrForeignImage},
		{ref: "hello:1", wantErr: ErrForeignImage},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := projectImage(hello, tt.ref)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseImage(%q) = %v, %v; want %v", tt.ref, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseImage(%q) = %+v, %v; want %+v", tt.ref, got, err, tt.want)
			}
			if got.String() != tt.ref {
				t.Errorf("String() = %q, want %q", got.String(), tt.ref)
			}
			if got.Short() != tt.short {
				t.Errorf("Short() = %q, want %q", got.Short(), tt.short)
			}
		})
	}
}

func TestParseImageForeignError(t *testing.T) {
	_, err := projectImage(hello, "registry.example.com/acme/other:1")
	var fe *foreignImageError
	if !errors.As(err, &fe) || fe.Want != hello.Image || fe.Got != "registry.example.com/acme/other" {
		t.Fatalf("err = %#v", err)
	}
	if !strings.Contains(err.Error(), "registry.example.com/acme/other") || !strings.Contains(err.Error(), hello.Image) {
		t.Errorf("message %q lacks a name", err)
	}
}

func TestParseImageDockerHub(t *testing.T) {
	p := hello
	p.Image = "docker.io/library/nginx"
	for _, ref := range []string{"nginx:1.27", "docker.io/library/nginx:1.27", "library/nginx:1.27"} {
		img, err := projectImage(p, ref)
		if err != nil || img.Repository != "docker.io/library/nginx" || img.Tag != "1.27" {
			t.Errorf("ParseImage(%q) = %+v, %v", ref, img, err)
		}
	}
}

func TestSplitImage(t *testing.T) {
	tests := []struct{ in, name, tag, digest string }{
		{"nginx", "nginx", "", ""},
		{"nginx:1", "nginx", "1", ""},
		{"host:5000/a/b", "host:5000/a/b", "", ""},
		{"host:5000/a/b:2", "host:5000/a/b", "2", ""},
		{"host:5000/a/b:2@" + digestA, "host:5000/a/b", "2", digestA},
		{"a/b@" + digestA, "a/b", "", digestA},
	}
	for _, tt := range tests {
		n, tg, d := splitImage(tt.in)
		if n != tt.name || tg != tt.tag || d != tt.digest {
			t.Errorf("splitImage(%q) = %q %q %q", tt.in, n, tg, d)
		}
	}
}
