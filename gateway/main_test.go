package gateway_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// forwarder and the store's committer start goroutines, and each must end
// when its context or its store does.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
