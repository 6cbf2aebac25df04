package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// load is one run of the load generator against one URL: Workers goroutines, each sending
// POST requests back to back over its own keep-alive connection. With Count set it sends
// that many requests and stops; otherwise it runs for Warmup, then measures for Duration.
type load struct {
	URL      string
	Workers  int
	Warmup   time.Duration
	Duration time.Duration
	Count    int
	// Want is the exact body every answer must have; an answer with another body or status
	// is an error. nil accepts any 200 answer.
	Want []byte
	// Measuring, when set, is called once as the measured period starts.
	Measuring func()
	// Client sends the requests; nil means a new keep-alive client for this run alone.
	Client *http.Client
}

// newClient is a keep-alive HTTP client for workers concurrent requests to one host.
func newClient(workers int) *http.Client {
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		MaxIdleConns:        workers,
		MaxIdleConnsPerHost: workers,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}}
}

// loadResult is what a load measured. Only requests that started after the warm-up and
// ended within the measured period count.
type loadResult struct {
	OK, Errors int64
	Total      int64         // requests answered or failed, warm-up and overrun included
	Elapsed    time.Duration // the measured period
	Latency    histogram     // of the successful requests
	FirstError string        // the first error, to show why
}

// RunsPerSec is successful requests per second of the measured period.
func (r *loadResult) RunsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// run drives the load and returns what it measured. It returns early, with what it has,
// when ctx is done; the error is then ctx's.
func (l *load) run(ctx context.Context) (*loadResult, error) {
	if l.Workers < 1 {
		return nil, fmt.Errorf("load %s: %d workers, want at least 1", l.URL, l.Workers)
	}
	if l.Count <= 0 && l.Duration <= 0 {
		return nil, fmt.Errorf("load %s: neither a duration nor a count", l.URL)
	}
	client := l.Client
	if client == nil {
		client = newClient(l.Workers)
		defer client.CloseIdleConnections()
	}

	start := time.Now()
	measureFrom, end := start.Add(l.Warmup), start.Add(l.Warmup+l.Duration)
	if l.Count > 0 {
		measureFrom, end = start, time.Time{}
	}
	var (
		mu     sync.Mutex
		total  loadResult
		issued = make(chan struct{}, l.Workers) // with Count: one token per request
		wg     sync.WaitGroup
	)
	if l.Count > 0 {
		go func() {
			defer close(issued)
			for range l.Count {
				select {
				case issued <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	var measuring sync.Once
	for range l.Workers {
		wg.Go(func() {
			var mine loadResult
			buf := bytes.NewBuffer(make([]byte, 0, 512))
			for ctx.Err() == nil {
				if l.Count > 0 {
					if _, ok := <-issued; !ok {
						break
					}
				} else if !time.Now().Before(end) {
					break
				}
				t0 := time.Now()
				if l.Measuring != nil && !t0.Before(measureFrom) {
					measuring.Do(l.Measuring)
				}
				err := l.once(ctx, client, buf)
				t1 := time.Now()
				if ctx.Err() == nil {
					mine.Total++
				}
				if t0.Before(measureFrom) || (!end.IsZero() && t1.After(end)) {
					continue // warm-up, or past the measured period
				}
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					mine.Errors++
					if mine.FirstError == "" {
						mine.FirstError = err.Error()
					}
					continue
				}
				mine.OK++
				mine.Latency.Record(t1.Sub(t0))
			}
			mu.Lock()
			defer mu.Unlock()
			total.merge(&mine)
		})
	}
	wg.Wait()
	total.Elapsed = l.Duration
	if l.Count > 0 {
		total.Elapsed = time.Since(start)
	}
	return &total, ctx.Err()
}

// once sends one request and checks the answer.
func (l *load) once(ctx context.Context, client *http.Client, buf *bytes.Buffer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.URL, nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	buf.Reset()
	_, err = io.Copy(buf, io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", res.StatusCode, buf.Bytes())
	}
	if l.Want != nil && !bytes.Equal(buf.Bytes(), l.Want) {
		return fmt.Errorf("unexpected answer %.200q, want %.200q", buf.Bytes(), l.Want)
	}
	return nil
}

// merge adds o, a later measured period of the same load, to r.
func (r *loadResult) merge(o *loadResult) {
	r.OK += o.OK
	r.Errors += o.Errors
	r.Total += o.Total
	r.Elapsed += o.Elapsed
	r.Latency.Merge(&o.Latency)
	if r.FirstError == "" {
		r.FirstError = o.FirstError
	}
}

// slicedTarget is one of the targets alternate drives.
type slicedTarget struct {
	URL  string
	Want []byte
	// Slice, when set, is called as each measured slice starts; the function it returns is
	// called when the slice has ended.
	Slice func() (end func() error)
}

// alternate measures targets under the same load in turn: rounds slices each, of
// duration/rounds, target after target, so that whatever else the machine does in the
// meantime falls on all of them alike. Each target is warmed up once, before its first
// slice, and keeps its keep-alive connections across slices. It returns each target's
// slices merged.
func alternate(ctx context.Context, targets []*slicedTarget, workers int, warmup, duration time.Duration, rounds int) ([]*loadResult, error) {
	out := make([]*loadResult, len(targets))
	clients := make([]*http.Client, len(targets))
	for i := range targets {
		out[i] = &loadResult{}
		clients[i] = newClient(workers)
		defer clients[i].CloseIdleConnections()
	}
	slice := duration / time.Duration(rounds)
	for round := range rounds {
		for i, t := range targets {
			l := &load{URL: t.URL, Want: t.Want, Workers: workers, Duration: slice, Client: clients[i]}
			if round == 0 {
				l.Warmup = warmup
			}
			var end func() error
			if t.Slice != nil {
				l.Measuring = func() { end = t.Slice() }
			}
			r, err := l.run(ctx)
			if end != nil {
				if eerr := end(); err == nil {
					err = eerr
				}
			}
			if err != nil {
				return nil, err
			}
			out[i].merge(r)
		}
	}
	return out, nil
}
