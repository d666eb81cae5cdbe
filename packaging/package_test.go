// Tests of `make package`: the Debian package is built as CI would build it
// and read back, member by member. The package has no Go code.
package packaging_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// arMember is one member of an ar archive.
type arMember struct {
	name string
	data []byte
}

// readAr reads a System V / GNU ar archive, the container of a .deb.
func readAr(b []byte) ([]arMember, error) {
	const magic = "!<arch>\n"
	if !bytes.HasPrefix(b, []byte(magic)) {
		return nil, errors.New("not an ar archive")
	}
	b = b[len(magic):]
	var out []arMember
	for len(b) > 0 {
		if len(b) < 60 {
			return nil, errors.New("truncated ar header")
		}
		hdr := b[:60]
		if string(hdr[58:60]) != "`\n" {
			return nil, fmt.Errorf("bad ar header terminator %q", hdr[58:60])
		}
		size, err := strconv.Atoi(strings.TrimSpace(string(hdr[48:58])))
		if err != nil || size < 0 || 60+size > len(b) {
			return nil, fmt.Errorf("bad ar member size %q", hdr[48:58])
		}
		name := strings.TrimSuffix(strings.TrimSpace(string(hdr[:16])), "/")
		out = append(out, arMember{name: name, data: b[60 : 60+size]})
		b = b[60+size:]
		if size%2 == 1 && len(b) > 0 {
			b = b[1:]
		}
	}
	return out, nil
}

// tarEntry is a file or folder of a package's tar member.
type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

func readTarGz(name string, b []byte) (map[string]tarEntry, error) {
	if !strings.HasSuffix(name, ".tar.gz") {
		return nil, fmt.Errorf("%s: only gzip members are read here", name)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	tr := tar.NewReader(zr)
	out := map[string]tarEntry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(strings.TrimSuffix(h.Name, "/"), ".")] = tarEntry{h, data}
	}
}

// buildPackage runs `make package` into a temporary folder and returns the
// .deb's path.
func buildPackage(t *testing.T, version string) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed here: `make package` cannot run")
	}
	dir := t.TempDir()
	cmd := exec.Command("make", "package", "BIN="+filepath.Join(dir, "bin"), "DIST="+filepath.Join(dir, "dist"), "VERSION="+version)
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "dist", "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make package made %q, want one .deb\n%s", debs, out)
	}
	return debs[0]
}

func TestMakePackage(t *testing.T) {
	const version = "1.2.3~test"
	deb := buildPackage(t, version)
	if got, want := filepath.Base(deb), "storegate_"+version+"_"; !strings.HasPrefix(got, want) {
		t.Errorf("package file %s, want a name starting %s", got, want)
	}
	raw, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	members, err := readAr(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 3 || members[0].name != "debian-binary" || string(members[0].data) != "2.0\n" ||
		!strings.HasPrefix(members[1].name, "control.tar") || !strings.HasPrefix(members[2].name, "data.tar") {
		var names []string
		for _, m := range members {
			names = append(names, m.name)
		}
		t.Fatalf("members %q, want debian-binary 2.0, control.tar.*, data.tar.*", names)
	}
	control, err := readTarGz(members[1].name, members[1].data)
	if err != nil {
		t.Fatal(err)
	}
	data, err := readTarGz(members[2].name, members[2].data)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Control", func(t *testing.T) {
		fields := map[string]string{}
		sc := bufio.NewScanner(bytes.NewReader(control["/control"].data))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ": "); ok && !strings.HasPrefix(k, " ") {
				fields[k] = v
			}
		}
		for k, want := range map[string]string{"Package": "storegate", "Version": version, "Depends": "systemd"} {
			if fields[k] != want {
				t.Errorf("control %s = %q, want %q", k, fields[k], want)
			}
		}
		conffiles := string(control["/conffiles"].data)
		for _, f := range []string{"/etc/storegate/storegated.yaml", "/etc/udev/rules.d/61-storegate-scanners.rules"} {
			if !strings.Contains(conffiles, f+"\n") {
				t.Errorf("%s is not a conffile: an upgrade would overwrite the store's edits (conffiles: %q)", f, conffiles)
			}
		}
		for _, s := range []string{"/postinst", "/prerm", "/postrm"} {
			e, ok := control[s]
			if !ok || e.hdr.Mode&0o111 == 0 {
				t.Errorf("maintainer script %s missing or not executable", s)
			}
		}
		if !strings.Contains(string(control["/postinst"].data), "systemd-sysusers") {
			t.Error("postinst does not create the storegate user")
		}
	})

	t.Run("Files", func(t *testing.T) {
		same := map[string]string{
			"/usr/lib/systemd/system/storegated.service":    "../systemd/storegated.service",
			"/etc/udev/rules.d/61-storegate-scanners.rules": "../systemd/61-storegate-scanners.rules",
			"/etc/storegate/storegated.yaml":                "../systemd/storegated.yaml",
			"/usr/lib/sysusers.d/storegate.conf":            "sysusers.conf",
			"/usr/lib/tmpfiles.d/storegate.conf":            "tmpfiles.conf",
			"/usr/share/doc/storegate/README.md":            "../README.md",
		}
		for dst, src := range same {
			want, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			e, ok := data[dst]
			if !ok {
				t.Errorf("%s is not in the package", dst)
			} else if !bytes.Equal(e.data, want) {
				t.Errorf("%s differs from %s", dst, src)
			}
		}
		for _, bin := range []string{"/usr/bin/storegated", "/usr/bin/storegatectl"} {
			e, ok := data[bin]
			if !ok {
				t.Errorf("%s is not in the package", bin)
				continue
			}
			if e.hdr.Mode&0o777 != 0o755 || !bytes.HasPrefix(e.data, []byte("\x7fELF")) {
				t.Errorf("%s: mode %o, ELF %v; want an executable 0755", bin, e.hdr.Mode&0o777, bytes.HasPrefix(e.data, []byte("\x7fELF")))
			}
		}
		state, ok := data["/var/lib/storegate"]
		if !ok || state.hdr.Typeflag != tar.TypeDir || state.hdr.Mode&0o777 != 0o700 {
			t.Errorf("state directory /var/lib/storegate missing or not a 0700 folder")
		}
		for name := range data {
			if strings.HasSuffix(name, ".key") || strings.HasSuffix(name, ".db") {
				t.Errorf("the package ships %s: no keys or state belong in it", name)
			}
		}
	})

	t.Run("PackagedBinaryVersion", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "storegated")
		if err := os.WriteFile(bin, data["/usr/bin/storegated"].data, 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "--version").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "storegated "+version {
			t.Fatalf("packaged storegated --version: %v, %q; want %q", err, out, "storegated "+version)
		}
	})

	t.Run("DpkgDeb", func(t *testing.T) {
		tool, err := exec.LookPath("dpkg-deb")
		if err != nil {
			t.Skip("dpkg-deb is not installed here; the package was read by this test alone")
		}
		out, err := exec.Command(tool, "--contents", deb).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg-deb --contents: %v\n%s", err, out)
		}
		for _, f := range []string{"./usr/bin/storegated", "./usr/lib/systemd/system/storegated.service", "./var/lib/storegate/"} {
			if !strings.Contains(string(out), f) {
				t.Errorf("dpkg-deb does not list %s:\n%s", f, out)
			}
		}
		out, err = exec.Command(tool, "--field", deb, "Version").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != version {
			t.Errorf("dpkg-deb --field Version: %v, %q; want %s", err, out, version)
		}
	})
}
