package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

type procStat struct {
	cpu     time.Duration // utime + stime
	peakRSS int64         // VmHWM
}

// readProc reads a process's CPU time from /proc/<pid>/stat and its peak
// resident set from /proc/<pid>/status.
func readProc(pid int) (procStat, error) {
	if pid <= 0 {
		return procStat{}, errors.New("no pid")
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProc(stat, status)
}

func parseProc(stat, status []byte) (procStat, error) {
	// comm (field 2) may hold spaces and parentheses: fields count from the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return procStat{}, errors.New("/proc stat: no comm field")
	}
	f := strings.Fields(string(stat[i+1:]))
	// After comm: state is field 3, utime 14, stime 15 => indexes 11, 12 here.
	if len(f) < 13 {
		return procStat{}, errors.New("/proc stat: too few fields")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return procStat{}, fmt.Errorf("/proc stat: %w", err)
	}
	p := procStat{cpu: time.Duration(ut+st) * time.Second / clockTicks}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return procStat{}, fmt.Errorf("/proc status VmHWM: %w", err)
			}
			p.peakRSS = kb << 10
		}
	}
	return p, nil
}

// treeCPU is the CPU time of process pid (a database server's
// postmaster), its reaped children's and its live children's: backends
// come and go, and an exited one's time moves into its parent's cutime.
func treeCPU(pid int) time.Duration {
	field := func(stat []byte) []string {
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			return nil
		}
		return strings.Fields(string(stat[i+1:]))
	}
	ticks := func(f []string, idx ...int) int64 {
		var n int64
		for _, i := range idx {
			if i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				n += v
			}
		}
		return n
	}
	var total int64
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		total += ticks(field(b), 11, 12, 13, 14) // utime stime cutime cstime
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	parent := strconv.Itoa(pid)
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if f := field(b); len(f) > 12 && f[1] == parent { // ppid
			total += ticks(f, 11, 12)
		}
	}
	return time.Duration(total) * time.Second / clockTicks
}

// serverProc is a server process the generator started.
type serverProc struct{ cmd *exec.Cmd }

// startServer runs command with sh -c 'exec ...' (so the PID is the
// server's own) and waits until readyURL answers.
func startServer(ctx context.Context, command, readyURL string, stderr io.Writer) (*serverProc, error) {
	cmd := exec.Command("sh", "-c", "exec "+command)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A server that leaves a child holding its output must not hang Wait.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("--server-cmd: %w", err)
	}
	s := &serverProc{cmd: cmd}
	// Readiness only: the poll sends nothing secret and reads nothing, and
	// the run verifies the server's certificate once it is up.
	poll := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer poll.CloseIdleConnections()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := poll.Get(readyURL)
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.stop()
			return nil, fmt.Errorf("--server-cmd: %s never answered: %w", readyURL, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *serverProc) pid() int { return s.cmd.Process.Pid }

// stop ends the server with SIGTERM (SIGKILL after 15s) and reaps it.
func (s *serverProc) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// settle waits until the server has used no CPU for three 100 ms samples
// in a row (the /proc clock ticks every 10 ms), or 10 s at most.
func settle(ctx context.Context, pid int) {
	if pid <= 0 {
		return
	}
	quiet, last := 0, time.Duration(-1)
	deadline := time.Now().Add(10 * time.Second)
	for quiet < 3 && time.Now().Before(deadline) && ctx.Err() == nil {
		p, err := readProc(pid)
		if err != nil {
			return
		}
		if p.cpu == last {
			quiet++
		} else {
			quiet = 0
		}
		last = p.cpu
		time.Sleep(100 * time.Millisecond)
	}
}
