package devices_test

import (
	"bytes"
	"image/png"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"

	"storegate/devices"
)

// token300 is a payment token of 300 characters in base45's alphabet, as long
// as a token with generous claims gets.
var token300 = devices.TokenPrefix + strings.Repeat("6BFOXN*TS0BI$ZD-CH1KSL:+SGP9%R4ZV%8DOTPEXP", 8)[:295]

// parseHalfBlocks turns QRTerminal's output back into modules, true for dark.
func parseHalfBlocks(t *testing.T, out string) [][]bool {
	t.Helper()
	var rows [][]bool
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var top, bottom []bool
		for _, r := range line {
			switch r {
			case '█':
				top, bottom = append(top, false), append(bottom, false)
			case '▀':
				top, bottom = append(top, false), append(bottom, true)
			case '▄':
				top, bottom = append(top, true), append(bottom, false)
			case ' ':
				top, bottom = append(top, true), append(bottom, true)
			default:
				t.Fatalf("unexpected rune %q in output", r)
			}
		}
		rows = append(rows, top, bottom)
	}
	return rows
}

func TestQRTerminal(t *testing.T) {
	if len(token300) != 300 {
		t.Fatalf("token300 is %d characters, want 300", len(token300))
	}
	for _, tt := range []struct {
		name    string
		text    string
		modules int // the symbol with its quiet zone, or 0 to take the library's
	}{
		{"Version1", "SGP1:HELLO", 21 + 8},
		{"Token300", token300, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := devices.QRTerminal(tt.text)
			if err != nil {
				t.Fatal(err)
			}
			again, err := devices.QRTerminal(tt.text)
			if err != nil || again != out {
				t.Errorf("second rendering differs (err %v)", err)
			}
			if !strings.HasSuffix(out, "\n") {
				t.Errorf("output does not end in a newline")
			}

			q, err := qrcode.New(tt.text, qrcode.Medium)
			if err != nil {
				t.Fatal(err)
			}
			want := q.Bitmap()
			if tt.modules != 0 && len(want) != tt.modules {
				t.Fatalf("library bitmap is %d modules, want %d", len(want), tt.modules)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if got, wantLines := len(lines), (len(want)+1)/2; got != wantLines {
				t.Errorf("lines: got %d, want %d for %d module rows", got, wantLines, len(want))
			}
			for i, line := range lines {
				if got := len([]rune(line)); got != len(want) {
					t.Fatalf("line %d: got %d characters, want %d", i, got, len(want))
				}
			}

			got := parseHalfBlocks(t, out)
			for y := range want {
				for x := range want[y] {
					if got[y][x] != want[y][x] {
						t.Fatalf("module (%d,%d): got dark=%v, want %v", x, y, got[y][x], want[y][x])
					}
				}
			}
			if len(want)%2 == 1 {
				for x, dark := range got[len(want)] {
					if dark {
						t.Fatalf("padding row module %d is dark, want light like the quiet zone", x)
					}
				}
			}
			// Quiet zone: four light modules on every side.
			for i := range 4 {
				for j := range got[0] {
					if got[i][j] || got[len(want)-1-i][j] || got[j][i] || got[j][len(want)-1-i] {
						t.Fatalf("quiet zone module (%d,%d) is dark", i, j)
					}
				}
			}
		})
	}
	t.Run("ErrEmpty", func(t *testing.T) {
		if _, err := devices.QRTerminal(""); err == nil {
			t.Error("got nil, want an error")
		}
	})
	t.Run("ErrTooLong", func(t *testing.T) {
		if _, err := devices.QRTerminal(strings.Repeat("x", 5000)); err == nil {
			t.Error("got nil, want an error")
		}
	})
}

func TestQRPNG(t *testing.T) {
	for _, tt := range []struct {
		name string
		text string
		size int
		want int
	}{
		{"Token", "SGP1:HELLO", 256, 256},
		{"Token300", token300, 320, 320},
		{"TooSmallGrows", "SGP1:HELLO", 10, 29},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := devices.QRPNG(tt.text, tt.size)
			if err != nil {
				t.Fatal(err)
			}
			again, err := devices.QRPNG(tt.text, tt.size)
			if err != nil || !bytes.Equal(again, b) {
				t.Errorf("second rendering differs (err %v)", err)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("decode PNG: %v", err)
			}
			if got := img.Bounds(); got.Dx() != tt.want || got.Dy() != tt.want {
				t.Errorf("size: got %dx%d, want %dx%d", got.Dx(), got.Dy(), tt.want, tt.want)
			}
			// The corner is quiet zone: light.
			if r, g, bl, _ := img.At(0, 0).RGBA(); r != 0xffff || g != 0xffff || bl != 0xffff {
				t.Errorf("corner pixel: got %v, want white", img.At(0, 0))
			}
		})
	}
	t.Run("Errors", func(t *testing.T) {
		if _, err := devices.QRPNG("SGP1:HELLO", 0); err == nil {
			t.Error("size 0: got nil, want an error")
		}
		if _, err := devices.QRPNG("", 256); err == nil {
			t.Error("empty text: got nil, want an error")
		}
	})
}
