package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"storegate/devices"
	"storegate/gateway"
)

func runTokenMint(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "token mint", "--key token.key --account ID [flags]",
		"Signs a payment token as the central service does for a customer's phone, and prints\nit on standard output. --qr also draws it as a QR code on standard error, the way the\nphone shows it; --png writes the QR code to an image a scanner can read off a screen.")
	keyPath := fs.String("key", "", "token-signing private key (PEM, PKCS#8)")
	account := fs.String("account", "", "account id (the sub claim)")
	device := fs.String("device", "demo-phone", "device id (the dev claim)")
	issuer := fs.String("issuer", "storegate-hq", "issuer (the iss claim)")
	aal := fs.Int("aal", gateway.AssuranceDeviceBound, "assurance level: 1 password only, 2 device-bound key with a second factor")
	ofl := fs.Int64("ofl", 0, "offline allowance in minor units")
	ttl := fs.Duration("ttl", 2*time.Minute, "lifetime (at most 5m)")
	qr := fs.Bool("qr", false, "draw the token as a QR code on standard error")
	png := fs.String("png", "", "write the QR code to this PNG file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keyPath == "" || *account == "" {
		return usagef("--key and --account are required")
	}
	if *ttl <= 0 || *ttl > gateway.DefaultMaxTokenLifetime {
		return usagef("--ttl %s: want more than 0 and at most %s (gateways refuse longer lifetimes)", *ttl, gateway.DefaultMaxTokenLifetime)
	}
	pem, err := os.ReadFile(*keyPath)
	if err != nil {
		return err
	}
	priv, err := gateway.ParsePrivateKeyPEM(pem)
	if err != nil {
		return err
	}
	id, err := gateway.NewTokenID()
	if err != nil {
		return err
	}
	now := time.Now()
	tok, err := gateway.MintToken(priv, gateway.Claims{
		Issuer:           *issuer,
		Account:          *account,
		IssuedAt:         now,
		Expires:          now.Add(*ttl),
		TokenID:          id,
		Device:           *device,
		Assurance:        *aal,
		OfflineAllowance: *ofl,
	})
	if err != nil {
		return err
	}
	if *qr {
		art, err := devices.QRTerminal(tok)
		if err != nil {
			return fmt.Errorf("qr: %w", err)
		}
		fmt.Fprint(e.stderr, art)
	}
	if *png != "" {
		img, err := devices.QRPNG(tok, 512)
		if err != nil {
			return fmt.Errorf("png: %w", err)
		}
		if err := os.WriteFile(*png, img, 0o600); err != nil {
			return err
		}
	}
	fmt.Fprintln(e.stdout, tok)
	return nil
}
