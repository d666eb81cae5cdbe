package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// startTimeout bounds how long a daemon may take to serve.
const startTimeout = 30 * time.Second

// proc is one of the daemons under test: started, killed, stopped, resumed
// and restarted by the harness, always on the same address.
type proc struct {
	name     string
	bin      string
	args     []string
	addr     string
	addrFile string
	logPath  string

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	paused  bool
}

func newProc(bin, dir, name, addr string, args ...string) *proc {
	return &proc{
		name:     name,
		bin:      filepath.Join(bin, name),
		args:     args,
		addr:     addr,
		addrFile: filepath.Join(dir, name+".addr"),
		logPath:  filepath.Join(dir, "logs", name+".log"),
	}
}

// launch starts the process without waiting for it to serve.
func (p *proc) launch() error {
	if err := os.Remove(p.addrFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, append(p.args, "--addr-file", p.addrFile)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A race-enabled build otherwise sleeps a second at every clean exit.
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd, p.done, p.waitErr, p.paused = cmd, make(chan struct{}), nil, false
	done := p.done
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(done)
	}()
	return nil
}

// start launches the process and waits until it serves.
func (p *proc) start(ctx context.Context) error {
	if err := p.launch(); err != nil {
		return err
	}
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	for {
		if b, err := os.ReadFile(p.addrFile); err == nil && len(b) > 0 {
			if got := strings.TrimSpace(string(b)); got != p.addr {
				return fmt.Errorf("%s serves on %s, want %s", p.name, got, p.addr)
			}
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before serving (%v); its log ends:\n%s", p.name, p.waitErr, tail(p.logPath, 20))
		case <-deadline.C:
			return fmt.Errorf("%s did not serve within %s; its log ends:\n%s", p.name, startTimeout, tail(p.logPath, 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// exited reports whether the process has ended, and how.
func (p *proc) exited() (bool, error) {
	if p.cmd == nil {
		return true, nil
	}
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// kill sends SIGKILL and waits for the process to end. It reports an error
// when the process had already ended on its own.
func (p *proc) kill() error {
	if err := p.sigkill(); err != nil {
		return err
	}
	<-p.done
	return nil
}

// sigkill sends SIGKILL without waiting for the process to end (p.done is
// closed when it has). It reports an error when the process had already
// ended on its own.
func (p *proc) sigkill() error {
	if ended, err := p.exited(); ended {
		return fmt.Errorf("%s had already exited (%v); its log ends:\n%s", p.name, err, tail(p.logPath, 20))
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	return nil
}

// term sends SIGTERM and waits for a clean exit.
func (p *proc) term() error {
	if ended, err := p.exited(); ended {
		return fmt.Errorf("%s had already exited (%v)", p.name, err)
	}
	if p.paused {
		p.resume()
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("%s did not exit cleanly: %v; its log ends:\n%s", p.name, p.waitErr, tail(p.logPath, 20))
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not exit within 30s of SIGTERM", p.name)
	}
}

// pause stops the process (SIGSTOP): it keeps its connections and answers
// nothing, like a server too slow for any deadline.
func (p *proc) pause() {
	_ = p.cmd.Process.Signal(syscall.SIGSTOP)
	p.paused = true
}

// resume continues a paused process.
func (p *proc) resume() {
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	p.paused = false
}

// freePort returns a loopback address whose port is outside the kernel's
// ephemeral range (so that no outgoing connection of another program takes
// it while the daemon on it is down) and free now.
func freePort(rng *rand.Rand) (string, error) {
	for range 200 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rng.IntN(12000))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr, nil
	}
	return "", errors.New("no free port between 20000 and 32000")
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
