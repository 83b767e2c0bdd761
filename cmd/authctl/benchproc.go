package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// What /proc tells a bench about the machine and the worker it loads.

// memorySampler reads a process's memory from /proc/PID/status while the
// bench runs.
type memorySampler struct {
	pid    int
	done   chan struct{}
	result chan memoryResult
	once   sync.Once
	got    memoryResult
}

type memoryResult struct {
	mem *workerMemory
	err error
}

func startMemorySampler(pid int, every time.Duration) (*memorySampler, error) {
	if _, _, err := readMemory(pid); err != nil {
		return nil, fmt.Errorf("bench: -worker-pid: %w", err)
	}
	s := &memorySampler{pid: pid, done: make(chan struct{}), result: make(chan memoryResult, 1)}
	go func() {
		m := &workerMemory{PID: pid}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			hwm, rss, err := readMemory(pid)
			if err != nil {
				s.result <- memoryResult{err: fmt.Errorf("bench: worker %d: %w", pid, err)}
				return
			}
			m.VmHWMKiB, m.MaxVmRSSKiB = max(m.VmHWMKiB, hwm), max(m.MaxVmRSSKiB, rss)
			select {
			case <-s.done:
				s.result <- memoryResult{mem: m}
				return
			case <-t.C:
			}
		}
	}()
	return s, nil
}

// stop ends the sampling and returns what it saw; it is safe to call more
// than once.
func (s *memorySampler) stop() (*workerMemory, error) {
	s.once.Do(func() {
		close(s.done)
		s.got = <-s.result
	})
	return s.got.mem, s.got.err
}

// readMemory returns VmHWM and VmRSS of a process, in KiB.
func readMemory(pid int) (hwm, rss int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseProcStatus(string(data))
}

// parseProcStatus reads VmHWM and VmRSS from the text of /proc/PID/status.
func parseProcStatus(status string) (hwm, rss int64, err error) {
	found := 0
	for line := range strings.Lines(status) {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmHWM" && name != "VmRSS") {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %q is not a size in kB", name, strings.TrimSpace(value))
		}
		if name == "VmHWM" {
			hwm = kib
		} else {
			rss = kib
		}
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("no VmHWM and VmRSS in /proc status (a kernel thread, or not Linux)")
	}
	return hwm, rss, nil
}

// loadAverage returns the machine's one-minute load average, or 0 where
// /proc/loadavg cannot be read.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(data), " ")
	v, _ := strconv.ParseFloat(first, 64)
	return v
}
