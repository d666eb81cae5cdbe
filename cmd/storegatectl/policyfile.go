package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"go.yaml.in/yaml/v3"

	"storegate/gateway"
	documentv1 "storegate/proto/storegate/document/v1"
)

// policyFile is the readable policy format that `policy publish` reads and
// `policy show` prints: YAML, or JSON (which YAML reads too). Field names
// are the ones validation errors name. systemd/policy.example.yaml
// documents every field.
type policyFile struct {
	// Version is the policy's version; 0 or absent lets publish take the
	// next one for the policy's scope.
	Version uint64 `yaml:"version,omitempty"`
	// StoreID, when set, makes the policy this store's own; absent, it is
	// the chain's.
	StoreID          string       `yaml:"store_id,omitempty"`
	Mode             string       `yaml:"mode"`
	MaxTokenLifetime duration     `yaml:"max_token_lifetime,omitempty"`
	Offline          *offlineFile `yaml:"offline,omitempty"`
	Rules            []ruleFile   `yaml:"rules,omitempty"`
}

type offlineFile struct {
	MaxAmountPerTransaction int64 `yaml:"max_amount_per_transaction,omitempty"`
	MaxAmountPerAccount     int64 `yaml:"max_amount_per_account,omitempty"`
	MaxStoreExposure        int64 `yaml:"max_store_exposure,omitempty"`
}

type ruleFile struct {
	ID                        string   `yaml:"id"`
	Categories                []string `yaml:"categories,omitempty,flow"`
	SKUPrefixes               []string `yaml:"sku_prefixes,omitempty,flow"`
	MaxQuantityPerTransaction int64    `yaml:"max_quantity_per_transaction,omitempty"`
	MaxAmountPerTransaction   int64    `yaml:"max_amount_per_transaction,omitempty"`
	MaxQuantityPerAccount     int64    `yaml:"max_quantity_per_account,omitempty"`
	MaxAmountPerAccount       int64    `yaml:"max_amount_per_account,omitempty"`
	AccountWindow             duration `yaml:"account_window,omitempty"`
	MaxAmountPerStore         int64    `yaml:"max_amount_per_store,omitempty"`
	StoreWindow               duration `yaml:"store_window,omitempty"`
	MinAssurance              int32    `yaml:"min_assurance,omitempty"`
	// OfflineAllowed is false unless given: restricted goods need central.
	OfflineAllowed bool `yaml:"offline_allowed"`
}

// duration is a whole number of seconds, written the way a person says it
// ("24h", "90m", "45s").
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as 24h or 90m", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q: want a duration such as 24h or 90m", n.Line, s)
	}
	if v%time.Second != 0 {
		return fmt.Errorf("line %d: %q is not a whole number of seconds", n.Line, s)
	}
	*d = duration(v)
	return nil
}

func (d duration) MarshalYAML() (any, error) {
	v := time.Duration(d)
	switch {
	case v >= time.Hour && v%time.Hour == 0:
		return fmt.Sprintf("%dh", v/time.Hour), nil
	case v >= time.Minute && v%time.Minute == 0:
		return fmt.Sprintf("%dm", v/time.Minute), nil
	}
	return fmt.Sprintf("%ds", v/time.Second), nil
}

func (d duration) seconds() int64 { return int64(time.Duration(d) / time.Second) }

// parsePolicyFile reads the readable format. Unknown fields are errors, so
// that a misspelt cap is never silently no cap; the policy's own checks
// come later, from gateway.ValidatePolicy.
func parsePolicyFile(b []byte) (*documentv1.Policy, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f policyFile
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty")
		}
		return nil, err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one document in the file")
	}
	m := &documentv1.Policy{
		Version:                 f.Version,
		StoreId:                 f.StoreID,
		MaxTokenLifetimeSeconds: f.MaxTokenLifetime.seconds(),
	}
	if f.Mode != "" {
		mode, ok := gateway.ParseStoreMode(f.Mode)
		if !ok {
			return nil, fmt.Errorf("policy: mode: %q is not normal, online_only or suspended", f.Mode)
		}
		m.Mode = documentv1.StoreMode(mode)
	}
	if f.Offline != nil {
		m.Offline = &documentv1.OfflineCaps{
			MaxAmountPerTransaction: f.Offline.MaxAmountPerTransaction,
			MaxAmountPerAccount:     f.Offline.MaxAmountPerAccount,
			MaxStoreExposure:        f.Offline.MaxStoreExposure,
		}
	}
	for _, r := range f.Rules {
		m.Rules = append(m.Rules, &documentv1.Rule{
			Id:                        r.ID,
			Categories:                r.Categories,
			SkuPrefixes:               r.SKUPrefixes,
			MaxQuantityPerTransaction: r.MaxQuantityPerTransaction,
			MaxAmountPerTransaction:   r.MaxAmountPerTransaction,
			MaxQuantityPerAccount:     r.MaxQuantityPerAccount,
			MaxAmountPerAccount:       r.MaxAmountPerAccount,
			AccountWindowSeconds:      r.AccountWindow.seconds(),
			MaxAmountPerStore:         r.MaxAmountPerStore,
			StoreWindowSeconds:        r.StoreWindow.seconds(),
			MinAssurance:              r.MinAssurance,
			OfflineAllowed:            r.OfflineAllowed,
		})
	}
	return m, nil
}

// formatPolicyFile writes a policy in the readable format.
func formatPolicyFile(m *documentv1.Policy) ([]byte, error) {
	f := policyFile{
		Version:          m.GetVersion(),
		StoreID:          m.GetStoreId(),
		Mode:             gateway.StoreMode(m.GetMode()).String(),
		MaxTokenLifetime: duration(time.Duration(m.GetMaxTokenLifetimeSeconds()) * time.Second),
	}
	if o := m.GetOffline(); o != nil {
		f.Offline = &offlineFile{
			MaxAmountPerTransaction: o.GetMaxAmountPerTransaction(),
			MaxAmountPerAccount:     o.GetMaxAmountPerAccount(),
			MaxStoreExposure:        o.GetMaxStoreExposure(),
		}
	}
	for _, r := range m.GetRules() {
		f.Rules = append(f.Rules, ruleFile{
			ID:                        r.GetId(),
			Categories:                r.GetCategories(),
			SKUPrefixes:               r.GetSkuPrefixes(),
			MaxQuantityPerTransaction: r.GetMaxQuantityPerTransaction(),
			MaxAmountPerTransaction:   r.GetMaxAmountPerTransaction(),
			MaxQuantityPerAccount:     r.GetMaxQuantityPerAccount(),
			MaxAmountPerAccount:       r.GetMaxAmountPerAccount(),
			AccountWindow:             duration(time.Duration(r.GetAccountWindowSeconds()) * time.Second),
			MaxAmountPerStore:         r.GetMaxAmountPerStore(),
			StoreWindow:               duration(time.Duration(r.GetStoreWindowSeconds()) * time.Second),
			MinAssurance:              r.GetMinAssurance(),
			OfflineAllowed:            r.GetOfflineAllowed(),
		})
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&f); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
