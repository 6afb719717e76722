package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/promotebot/promotebot/promote"
	"github.com/promotebot/promotebot/promote/store/pgtest"
)

// BenchmarkCreate measures durable Creates, each with one job and
// superseding the previous build of its target, one at a time and from 16
// goroutines at once.
func BenchmarkCreate(b *testing.B) {
	stores := map[string]func(b *testing.B) promote.Store{
		"sqlite": func(b *testing.B) promote.Store {
			s, err := OpenSQLite(context.Background(), b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
		"postgres": func(b *testing.B) promote.Store {
			dsn, admin := pgtest.Server(b)
			s, err := OpenPostgres(context.Background(), pgtest.Schema(b, dsn, admin))
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		for _, parallel := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/parallel=%v", name, parallel), func(b *testing.B) {
				s := stores[name](b)
				b.Cleanup(func() {
					if err := s.Close(); err != nil {
						b.Error(err)
					}
				})
				benchCreate(b, s, parallel)
			})
		}
	}
}

func benchCreate(b *testing.B, s promote.Store, parallel bool) {
	ctx := context.Background()
	var n atomic.Int64
	one := func() {
		i := n.Add(1)
		bd := build(fmt.Sprintf("1.0.%d", i))
		bd.Target = fmt.Sprintf("branch-%d", i%16)
		if _, created, _, err := s.Create(ctx, bd, promote.Job{Kind: promote.JobDeployQA}); err != nil || !created {
			b.Errorf("Create: created %v, %v", created, err)
		}
	}
	if parallel {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				one()
			}
		})
	} else {
		for b.Loop() {
			one()
		}
	}
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "builds/s")
}
