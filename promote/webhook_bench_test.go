package promote_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/promotebot/promotebot/gitops"
	"github.com/promotebot/promotebot/promote"
	"github.com/promotebot/promotebot/promote/store"
)

// BenchmarkWebhookIngest posts signed builds over loopback HTTP to the
// webhook backed by the embedded SQLite store (WAL, synchronous=FULL: each
// 202 follows a durable commit), from parallel clients (-cpu sets how many
// per core). bench/webhook measures the same from its own process.
func BenchmarkWebhookIngest(b *testing.B) {
	cfg, err := promote.ParseConfig("bench.yaml", []byte(`gitops: {repo: unused}
projects:
- id: hello
  url: https://hello.example.com
  channel: C0HELLO
  owners: [UOWN1]
  image: registry.example.com/acme/hello
  path: apps/hello
  requiredApprovals: 0
`))
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(context.Background(), "", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := st.Close(); err != nil {
			b.Error(err)
		}
	})
	const secret = "bench-secret"
	srv := httptest.NewServer(promote.NewServer(promote.ServerDeps{Config: cfg,
		Secrets: promote.Secrets{WebhookSecret: secret}, Store: st, Repo: gitops.Checker{}}))
	b.Cleanup(srv.Close)
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 256
	var next atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			body := fmt.Sprintf(`{"project":"hello","image":"registry.example.com/acme/hello:1.0.%d","type":"branch","target":"bench-%d"}`, i, i)
			mac := hmac.New(sha256.New, []byte(secret))
			mac.Write([]byte(body))
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/builds", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Promotebot-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusAccepted {
				b.Errorf("POST: %d %v", resp.StatusCode, err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "builds/s")
	counts, err := st.CountByState(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if counts[promote.StateReceived] != int(next.Load()) {
		b.Fatalf("%d builds accepted, %d stored", next.Load(), counts[promote.StateReceived])
	}
}
