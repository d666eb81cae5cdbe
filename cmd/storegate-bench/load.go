package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is what runLoad measured.
type loadResult struct {
	// Ops is the number of operations that completed, with or without an
	// error.
	Ops int
	// Errors counts the operations that failed; FirstErr is one of them.
	Errors   int
	FirstErr error
	Elapsed  time.Duration
	// Latencies holds one duration per completed operation.
	Latencies []time.Duration
}

// Rate returns completed operations per second.
func (r loadResult) Rate() float64 { return rate(r.Ops, r.Elapsed) }

// runLoad calls op from lanes goroutines, each calling it again as soon as
// the last call returned (a closed loop, as a lane's POS waits for its
// answer), until d has passed, budget operations have started (when budget
// is positive), or ctx ends. n numbers the operations across lanes from 0.
// Each call is timed on its own.
func runLoad(ctx context.Context, lanes int, d time.Duration, budget int, op func(lane, n int) error) loadResult {
	var (
		next   atomic.Int64
		mu     sync.Mutex
		res    loadResult
		wg     sync.WaitGroup
		start  = time.Now()
		end    = start.Add(d)
		expect = 1024
	)
	if budget > 0 {
		expect = budget/lanes + 1
	}
	for lane := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, expect)
			errs := 0
			var first error
			for ctx.Err() == nil {
				t := time.Now()
				if !t.Before(end) {
					break
				}
				n := int(next.Add(1) - 1)
				if budget > 0 && n >= budget {
					break
				}
				err := op(lane, n)
				lat = append(lat, time.Since(t))
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
				}
			}
			mu.Lock()
			res.Latencies = append(res.Latencies, lat...)
			res.Errors += errs
			if res.FirstErr == nil {
				res.FirstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Ops = len(res.Latencies)
	return res
}
