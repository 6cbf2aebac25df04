package web

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
	"time"
)

// goroutineID is the calling goroutine's number, as its stack trace names it.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	return string(bytes.Fields(buf)[1])
}

func TestWorkersRunConcurrentlyAndReuseGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	p := newWorkers(time.Hour)

	// Three functions that each wait for all three to start: none waits for another's goroutine.
	var started sync.WaitGroup
	started.Add(3)
	ids := make(chan string, 3)
	for range 3 {
		p.run(func() {
			started.Done()
			started.Wait()
			ids <- goroutineID()
		})
	}
	first := map[string]bool{}
	for range 3 {
		first[<-ids] = true
	}

	// Once they are idle, later functions run on those goroutines, not on new ones.
	for range 20 {
		got := make(chan string)
		p.run(func() { got <- goroutineID() })
		if id := <-got; !first[id] {
			// The goroutine that ran the function may not have been waiting yet.
			runtime.Gosched()
			continue
		}
		p.close()
		awaitGoroutinesAtMost(t, base)
		return
	}
	t.Fatal("20 functions in a row ran on new goroutines while three were idle")
}

func TestWorkersIdleGoroutinesExit(t *testing.T) {
	base := runtime.NumGoroutine()
	p := newWorkers(time.Millisecond)
	ran := make(chan struct{})
	p.run(func() { close(ran) })
	<-ran
	awaitGoroutinesAtMost(t, base)
}

func awaitGoroutinesAtMost(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want at most %d", runtime.NumGoroutine(), n)
		}
		time.Sleep(time.Millisecond) // polling an observable condition
	}
}
