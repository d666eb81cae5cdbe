package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// proc is a storegated process the harness started.
type proc struct {
	cmd  *exec.Cmd
	addr string
	done chan error
	log  *os.File
}

// buildStoregated builds cmd/storegated into dir with the go command that
// runs the harness's module.
func buildStoregated(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "storegated")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "storegate/cmd/storegated")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build storegated: %v\n%s", err, out)
	}
	return bin, nil
}

// startStoregated starts storegated on dataDir against h, as a store runs
// it (keyset file, JSON log at info level, here to a file), and returns once
// it serves: its address file is written and grpc.health.v1 answers
// SERVING. The duration is from exec to that answer.
func startStoregated(ctx context.Context, bin, dataDir string, h *hq) (*proc, time.Duration, error) {
	addrFile := filepath.Join(dataDir, "addr")
	_ = os.Remove(addrFile)
	logf, err := os.OpenFile(filepath.Join(dataDir, "storegated.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, err
	}
	p := &proc{log: logf, done: make(chan error, 1)}
	p.cmd = exec.Command(bin,
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data", dataDir, "--store-id", benchStoreID,
		"--central", h.addr, "--root-key", filepath.Join(h.keysDir, "root.pub"),
		"--keyset", filepath.Join(h.keysDir, "keyset.cose"), "--addr-file", addrFile, "--insecure-callers")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	start := time.Now()
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, 0, err
	}
	go func() { p.done <- p.cmd.Wait() }()
	deadline := time.After(30 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			p.addr = strings.TrimSpace(string(b))
			break
		}
		select {
		case err := <-p.done:
			p.done <- err
			logf.Close()
			return nil, 0, fmt.Errorf("storegated exited before serving: %v (log: %s)", err, logf.Name())
		case <-deadline:
			p.stop()
			return nil, 0, errors.New("storegated did not serve within 30s")
		case <-time.After(200 * time.Microsecond):
		}
	}
	conn, err := dialLoopback(p.addr)
	if err != nil {
		p.stop()
		return nil, 0, err
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	elapsed := time.Since(start)
	if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		p.stop()
		return nil, 0, fmt.Errorf("storegated health: %v %v", res.GetStatus(), err)
	}
	return p, elapsed, nil
}

// stop sends SIGTERM and waits for the exit; a process that does not stop
// within 20 s is killed. It returns the exit error, if any.
func (p *proc) stop() error {
	defer p.log.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("storegated did not stop within 20s of SIGTERM; killed")
	}
}

// procCPU returns the CPU time a live process has used, user and system,
// from /proc/PID/stat; 0 when it cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after it. utime and stime are fields 14 and 15, in clock ticks.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux the harness runs on.
const clockTicks = 100

// Memory is a process's memory as /proc/PID/status reports it, in MiB.
type Memory struct {
	// PeakRSS is VmHWM: the most resident memory the process ever had,
	// heap and touched pages of the memory-mapped store file alike.
	PeakRSS float64 `json:"peak_rss_mib"`
	RSS     float64 `json:"rss_mib"`
	RSSAnon float64 `json:"rss_anon_mib"`
	RSSFile float64 `json:"rss_file_mib"`
}

// memoryOf reads a live process's memory figures.
func memoryOf(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	defer f.Close()
	var m Memory
	fields := map[string]*float64{"VmHWM:": &m.PeakRSS, "VmRSS:": &m.RSS, "RssAnon:": &m.RSSAnon, "RssFile:": &m.RSSFile}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Fields(sc.Text())
		if len(parts) < 2 {
			continue
		}
		if dst, ok := fields[parts[0]]; ok {
			kb, err := strconv.ParseFloat(parts[1], 64)
			if err != nil {
				return Memory{}, fmt.Errorf("%s %q: %w", parts[0], parts[1], err)
			}
			*dst = kb / 1024
		}
	}
	return m, sc.Err()
}

// ProcessRun is the storegated binary, as its own process, under the
// online load at the most lanes: its throughput, latency and peak memory.
type ProcessRun struct {
	Run    *AuthorizeRun `json:"authorize"`
	Memory Memory        `json:"memory"`
}

// measureProcess starts storegated on an empty data directory and drives it
// at lanes with online sales.
func measureProcess(ctx context.Context, cfg *Config, bin, dir string, h *hq, lanes, budget int) (*ProcessRun, error) {
	p, _, err := startStoregated(ctx, bin, mkdir(dir, "process"), h)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	ps, err := newPOS(p.addr)
	if err != nil {
		return nil, err
	}
	defer ps.conn.Close()
	pid := p.cmd.Process.Pid
	run, err := runAuthorize(ctx, cfg, h.keys.Token, target{
		scenario: scenarioOnline, pos: ps, path: "storegated process; " + onlinePath, prefix: "proc-",
		otherCPU: func() time.Duration { return procCPU(pid) },
	}, lanes, budget)
	if err != nil {
		return nil, err
	}
	mem, err := memoryOf(p.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	return &ProcessRun{Run: run, Memory: mem}, nil
}
