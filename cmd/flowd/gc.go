package main

import (
	"os"
	"runtime/debug"
)

// serveGCPercent is the garbage collector's target for `flowd serve` when GOGC is not set:
// the heap may grow to four times what is live before a collection, instead of Go's default
// of twice. A run allocates its items, expression environments and record and drops them
// when it ends, so the live heap stays small (a few MiB) and collections under load are
// frequent; with the default they took a tenth of flowd's CPU. Idle memory is unchanged (the
// heap is small), and memory under load stays far below issue 5's bound (BENCHMARKS.md).
const serveGCPercent = 300

// tuneGC applies serveGCPercent unless the GOGC environment variable says otherwise.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(serveGCPercent)
	}
}
