package monitoring_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: reading
// the registry's descriptions and running promtool start some.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
