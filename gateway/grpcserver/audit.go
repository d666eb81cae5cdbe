package grpcserver

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storegatev1 "storegate/proto/storegate/v1"
)

// errStopScan ends an audit scan early; it never leaves this package.
var errStopScan = errors.New("stop scan")

func auditToProto(seq uint64, raw []byte) *storegatev1.AuditRecord {
	sum := sha256.Sum256(raw)
	out := &storegatev1.AuditRecord{Seq: seq, Record: append([]byte(nil), raw...), Hash: sum[:]}
	var t struct {
		Time time.Time `json:"time"`
	}
	if json.Unmarshal(raw, &t) == nil && !t.Time.IsZero() {
		out.Time = timestamppb.New(t.Time)
	}
	return out
}
