package gateway

// Reason says why a payment was declined. The values mirror the
// storegate.v1.DeclineReason enum so the gRPC adapter's table stays obvious.
type Reason int32

// Decline reasons.
const (
	ReasonNone               Reason = 0
	ReasonInvalidToken       Reason = 1
	ReasonBadSignature       Reason = 2
	ReasonUnknownKey         Reason = 3
	ReasonExpired            Reason = 4
	ReasonNotYetValid        Reason = 5
	ReasonReplayed           Reason = 6
	ReasonAccountFrozen      Reason = 7
	ReasonStoreSuspended     Reason = 8
	ReasonLimitExceeded      Reason = 9
	ReasonAssuranceRequired  Reason = 10
	ReasonOfflineLimit       Reason = 11
	ReasonCentralDeclined    Reason = 12
	ReasonOnlineOnlyCode     Reason = 13
	ReasonCentralUnavailable Reason = 14
	ReasonKeyRetired         Reason = 15
	ReasonInsufficientFunds  Reason = 16
	ReasonOfflineNotAllowed  Reason = 17
)

var reasonNames = map[Reason]string{
	ReasonNone:               "none",
	ReasonInvalidToken:       "invalid_token",
	ReasonBadSignature:       "bad_signature",
	ReasonUnknownKey:         "unknown_key",
	ReasonExpired:            "expired",
	ReasonNotYetValid:        "not_yet_valid",
	ReasonReplayed:           "replayed",
	ReasonAccountFrozen:      "account_frozen",
	ReasonStoreSuspended:     "store_suspended",
	ReasonLimitExceeded:      "limit_exceeded",
	ReasonAssuranceRequired:  "assurance_required",
	ReasonOfflineLimit:       "offline_limit",
	ReasonCentralDeclined:    "central_declined",
	ReasonOnlineOnlyCode:     "online_only_code",
	ReasonCentralUnavailable: "central_unavailable",
	ReasonKeyRetired:         "key_retired",
	ReasonInsufficientFunds:  "insufficient_funds",
	ReasonOfflineNotAllowed:  "offline_not_allowed",
}

// String returns the reason's snake_case name, as used in logs, metrics and
// the audit log.
func (r Reason) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return "unknown"
}

// ParseReason returns the reason named s, as String writes it.
func ParseReason(s string) (Reason, bool) {
	for r, name := range reasonNames {
		if name == s {
			return r, true
		}
	}
	return ReasonNone, false
}

// MarshalText writes the reason's name.
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a reason's name.
func (r *Reason) UnmarshalText(b []byte) error {
	v, ok := ParseReason(string(b))
	if !ok {
		return Errorf(EINVALID, "unknown decline reason %q", b)
	}
	*r = v
	return nil
}
