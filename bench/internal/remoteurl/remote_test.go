package remoteurl

import (
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in, url, user, password string
	}{
		{"http://bench:bench-secret@127.0.0.1:8080/config.git", "http://127.0.0.1:8080/config.git", "bench", "bench-secret"},
		{"https://u@git.example.com/c.git", "https://git.example.com/c.git", "u", ""},
		{"http://127.0.0.1:8080/config.git", "http://127.0.0.1:8080/config.git", "", ""},
		{"/tmp/config.git", "/tmp/config.git", "", ""},
	} {
		url, auth := Split(tc.in)
		if url != tc.url || auth.Username != tc.user || auth.Password != tc.password {
			t.Errorf("Split(%q) = %q, %q, %q; want %q, %q, %q", tc.in, url, auth.Username, auth.Password,
				tc.url, tc.user, tc.password)
		}
	}
}
