package devices_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: Readers,
// Managers and subscriptions start goroutines, and each must end when its
// context does.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
