package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram counts latencies in log-linear buckets, as HdrHistogram does: values below
// 2^subBits nanoseconds each have a bucket; above, every power of two is split into
// 2^(subBits-1) equal buckets, so any recorded value is known to within 1/64 (1.6%). It
// takes a fixed 29 KB whatever the number of samples, and two merge by adding counts.
// The zero value is empty and ready; it is not safe for concurrent use.
type histogram struct {
	counts   [bucketCount]uint64
	n        uint64
	min, max int64
	sum      float64
}

const (
	subBits     = 7
	subCount    = 1 << subBits                      // exact buckets below this value
	halfCount   = subCount / 2                      // buckets per power of two above it
	bucketCount = subCount + (63-subBits)*halfCount // values up to MaxInt64
)

// bucketOf returns the bucket that holds v (v ≥ 0).
func bucketOf(v int64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits // ≥ 1
	top := int(v >> shift)                   // in [halfCount, subCount)
	return subCount + (shift-1)*halfCount + top - halfCount
}

// bucketBounds returns the smallest and largest value bucket i holds.
func bucketBounds(i int) (lo, hi int64) {
	if i < subCount {
		return int64(i), int64(i)
	}
	shift := (i-subCount)/halfCount + 1
	top := int64((i-subCount)%halfCount + halfCount)
	lo = top << shift
	return lo, lo + (1 << shift) - 1
}

// Record adds one latency. Negative durations count as zero.
func (h *histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds o's samples to h.
func (h *histogram) Merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of samples.
func (h *histogram) Count() uint64 { return h.n }

// Max is the largest sample, exactly; 0 when empty.
func (h *histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the average sample; 0 when empty.
func (h *histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the q-quantile (0 < q ≤ 1) by the nearest-rank rule: the smallest value
// that at least q of the samples are at or below, to the histogram's precision (it answers
// the highest value of the bucket, capped by the largest sample). 0 when empty.
func (h *histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketBounds(i)
			return time.Duration(min(max(hi, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
