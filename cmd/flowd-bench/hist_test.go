package main

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestBucketsCoverEveryValueOnce(t *testing.T) {
	prevHi := int64(-1)
	for i := range bucketCount {
		lo, hi := bucketBounds(i)
		if lo != prevHi+1 || hi < lo {
			t.Fatalf("bucket %d is [%d, %d], want it to start at %d", i, lo, hi, prevHi+1)
		}
		if got := bucketOf(lo); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", lo, got, i)
		}
		if got := bucketOf(hi); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", hi, got, i)
		}
		if lo >= subCount && float64(hi-lo+1)/float64(lo) > 1.0/halfCount {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its values", i, lo, hi, halfCount)
		}
		prevHi = hi
	}
	if prevHi != math.MaxInt64 {
		t.Fatalf("the last bucket ends at %d, want MaxInt64", prevHi)
	}
}

func TestQuantiles(t *testing.T) {
	t.Run("empty", func(t *testing.T) {
		var h histogram
		if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Mean() != 0 || h.Count() != 0 {
			t.Fatalf("empty histogram: p50 %v max %v mean %v n %d", h.Quantile(0.5), h.Max(), h.Mean(), h.Count())
		}
	})
	t.Run("one value", func(t *testing.T) {
		var h histogram
		h.Record(1234567 * time.Nanosecond)
		for _, q := range []float64{0.01, 0.5, 0.99, 1} {
			if got := h.Quantile(q); got != 1234567 {
				t.Errorf("q%v = %d, want the one value", q, got)
			}
		}
	})
	t.Run("uniform 1..10000 µs, shuffled", func(t *testing.T) {
		var h histogram
		for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(10_000) {
			h.Record(time.Duration(i+1) * time.Microsecond)
		}
		for _, tc := range []struct {
			q    float64
			want time.Duration
		}{{0.5, 5000 * time.Microsecond}, {0.9, 9000 * time.Microsecond}, {0.99, 9900 * time.Microsecond}, {0.001, 10 * time.Microsecond}} {
			got := h.Quantile(tc.q)
			if rel := math.Abs(float64(got-tc.want)) / float64(tc.want); got < tc.want || rel > 1.0/halfCount {
				t.Errorf("q%v = %v, want %v to within 1/%d, and not below", tc.q, got, tc.want, halfCount)
			}
		}
		if got := h.Quantile(1); got != 10*time.Millisecond {
			t.Errorf("q1 = %v, want the maximum exactly", got)
		}
		if got := h.Mean(); got != 5000500*time.Nanosecond {
			t.Errorf("mean = %v, want 5.0005ms", got)
		}
	})
	t.Run("merge equals recording all in one", func(t *testing.T) {
		var a, b, all histogram
		rng := rand.New(rand.NewPCG(3, 4))
		for i := range 5000 {
			d := time.Duration(rng.ExpFloat64() * float64(time.Millisecond))
			all.Record(d)
			if i%3 == 0 {
				a.Record(d)
			} else {
				b.Record(d)
			}
		}
		a.Merge(&b)
		if a != all {
			t.Fatal("merged histogram differs from one that recorded every sample")
		}
	})
}
