package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Machine describes where the figures come from.
type Machine struct {
	Date       string `json:"date"`
	Commit     string `json:"commit,omitempty"`
	CPUModel   string `json:"cpu_model"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	MemoryMiB  int    `json:"memory_mib"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	Platform   string `json:"platform"`
	// Disk is the device and file system holding the stores, with what the
	// kernel reports about it (a virtual disk's "rotational" flag says
	// little about the storage behind it).
	Disk string `json:"disk"`
	// LoadStart and LoadEnd are /proc/loadavg's 1-minute load average when
	// the run started and ended: above the CPU count, other work shared
	// the CPUs with the run and its figures are low.
	LoadStart float64 `json:"load_average_start"`
	LoadEnd   float64 `json:"load_average_end"`
}

// loadAverage returns the 1-minute load average, or -1.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// describeMachine describes this machine and the disk under dir.
func describeMachine(dir string) Machine {
	m := Machine{
		Date:       time.Now().UTC().Format(time.RFC3339),
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: gomaxprocs,
		Go:         runtime.Version(),
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
		CPUModel:   fmt.Sprintf("%s (family %s, model %s)", procField("/proc/cpuinfo", "model name"), procField("/proc/cpuinfo", "cpu family"), procField("/proc/cpuinfo", "model")),
		Disk:       describeDisk(dir),
		LoadStart:  loadAverage(),
	}
	if kb, err := strconv.Atoi(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB")); err == nil {
		m.MemoryMiB = kb / 1024
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

// procField returns the value of the first "name: value" line of a /proc
// file.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// describeDisk names the mount, file system and block device holding dir.
func describeDisk(dir string) string {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return "unknown"
	}
	major, minor := unix.Major(st.Dev), unix.Minor(st.Dev)
	mount, fstype, source := "", "", ""
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// id parent major:minor root mountpoint options ... - fstype source superoptions
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[2] != fmt.Sprintf("%d:%d", major, minor) {
				continue
			}
			for i, fl := range fields {
				if fl == "-" && i+2 < len(fields) {
					if len(fields[4]) >= len(mount) && strings.HasPrefix(dir, fields[4]) {
						mount, fstype, source = fields[4], fields[i+1], fields[i+2]
					}
					break
				}
			}
		}
		f.Close()
	}
	rot := "unknown"
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", major, minor)
	for _, p := range []string{filepath.Join(sys, "queue/rotational"), filepath.Join(sys, "../queue/rotational")} {
		if b, err := os.ReadFile(p); err == nil {
			rot = strings.TrimSpace(string(b))
			break
		}
	}
	return fmt.Sprintf("%s %s on %s (rotational=%s as reported)", source, fstype, mount, rot)
}
