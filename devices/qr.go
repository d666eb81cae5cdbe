package devices

import (
	"errors"
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// QRTerminal renders text as a QR code (medium error recovery) for a
// terminal: each line of the result holds two rows of modules drawn with the
// Unicode half blocks ▀ ▄ █ and spaces, and the code keeps its four-module
// quiet zone. Light modules are the ones drawn, as qrencode's UTF8 output does,
// so that the code reads dark on light in the usual light-on-dark terminal.
// The result is the same for the same text; it ends in a newline. It returns
// an error for empty text or text too long for any QR code.
func QRTerminal(text string) (string, error) {
	bits, err := qrBitmap(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for y := 0; y < len(bits); y += 2 {
		for x := range bits[y] {
			// A missing bottom row (odd height) is light, like the quiet zone.
			topLight := !bits[y][x]
			bottomLight := y+1 >= len(bits) || !bits[y+1][x]
			switch {
			case topLight && bottomLight:
				b.WriteRune('█')
			case topLight:
				b.WriteRune('▀')
			case bottomLight:
				b.WriteRune('▄')
			default:
				b.WriteRune(' ')
			}
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// QRPNG renders text as a QR code (medium error recovery) in a size×size PNG,
// quiet zone included. A size smaller than the code needs (one pixel per
// module) yields the smallest image that fits. It returns an error for a size
// under one, for empty text and for text too long for any QR code.
func QRPNG(text string, size int) ([]byte, error) {
	if size < 1 {
		return nil, fmt.Errorf("qr: size %d is under one pixel", size)
	}
	if text == "" {
		return nil, errors.New("qr: nothing to encode")
	}
	png, err := qrcode.Encode(text, qrcode.Medium, size)
	if err != nil {
		return nil, fmt.Errorf("qr: %w", err)
	}
	return png, nil
}

// qrBitmap returns the QR code's modules, quiet zone included, true for dark.
func qrBitmap(text string) ([][]bool, error) {
	if text == "" {
		return nil, errors.New("qr: nothing to encode")
	}
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("qr: %w", err)
	}
	return q.Bitmap(), nil
}
