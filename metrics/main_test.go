package metrics_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: Open
// starts an HTTP server that Close must end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
