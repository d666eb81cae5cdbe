package storecache_test

import (
	"context"
	"testing"

	"storegate/gateway"
)

func TestStore_SaveDocument(t *testing.T) {
	ctx := context.Background()

	t.Run("Absent", func(t *testing.T) {
		s := MustOpenStore(t)
		raw, v, err := s.LoadDocument(ctx, gateway.DocumentPolicy)
		if raw != nil || v != 0 || err != nil {
			t.Errorf("LoadDocument of an absent kind: got %q, %d, %v, want nil, 0, nil", raw, v, err)
		}
	})

	t.Run("OK", func(t *testing.T) {
		s := MustOpenStore(t)
		for _, v := range []uint64{3, 4, 10} {
			stored, err := s.SaveDocument(ctx, gateway.DocumentPolicy, v, []byte{'p', byte(v)})
			if err != nil || !stored {
				t.Fatalf("SaveDocument(v%d): got %v, %v, want true, nil", v, stored, err)
			}
		}
		raw, v, err := s.LoadDocument(ctx, gateway.DocumentPolicy)
		if err != nil || v != 10 || string(raw) != "p\x0a" {
			t.Errorf("LoadDocument: got %q v%d (%v), want v10", raw, v, err)
		}
		// Kinds are independent.
		if stored, err := s.SaveDocument(ctx, gateway.DocumentFreeze, 1, []byte("f1")); err != nil || !stored {
			t.Errorf("SaveDocument(freeze v1): got %v, %v, want true, nil", stored, err)
		}
	})

	t.Run("SameVersion", func(t *testing.T) {
		s := MustOpenStore(t)
		if _, err := s.SaveDocument(ctx, gateway.DocumentKeyset, 5, []byte("keyset-5")); err != nil {
			t.Fatal(err)
		}
		stored, err := s.SaveDocument(ctx, gateway.DocumentKeyset, 5, []byte("keyset-5-other"))
		if err != nil || stored {
			t.Errorf("SaveDocument of the held version: got %v, %v, want false, nil", stored, err)
		}
		if raw, _, _ := s.LoadDocument(ctx, gateway.DocumentKeyset); string(raw) != "keyset-5" {
			t.Errorf("held document: got %q, want keyset-5 unchanged", raw)
		}
	})

	t.Run("ErrStale", func(t *testing.T) {
		s := MustOpenStore(t)
		if _, err := s.SaveDocument(ctx, gateway.DocumentPolicy, 9, []byte("policy-9")); err != nil {
			t.Fatal(err)
		}
		stored, err := s.SaveDocument(ctx, gateway.DocumentPolicy, 8, []byte("policy-8"))
		if stored {
			t.Error("SaveDocument of an older version: got true")
		}
		wantCode(t, err, gateway.ESTALE)
		wantContains(t, err, "version 8", "version 9")
		if raw, v, _ := s.LoadDocument(ctx, gateway.DocumentPolicy); v != 9 || string(raw) != "policy-9" {
			t.Errorf("held document: got %q v%d, want policy-9 v9", raw, v)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		s := MustOpenStore(t)
		for name, tc := range map[string]struct {
			kind    gateway.DocumentKind
			version uint64
			raw     []byte
		}{
			"VersionZero": {gateway.DocumentPolicy, 0, []byte("x")},
			"NoKind":      {"", 1, []byte("x")},
			"Empty":       {gateway.DocumentPolicy, 1, nil},
			"TooLarge":    {gateway.DocumentPolicy, 1, make([]byte, gateway.MaxDocumentSize+1)},
		} {
			_, err := s.SaveDocument(ctx, tc.kind, tc.version, tc.raw)
			if gateway.ErrorCode(err) != gateway.EINVALID {
				t.Errorf("%s: got %v, want EINVALID", name, err)
			}
		}
	})
}
