package grpcserver_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: gRPC
// servers, client connections, streams and the store's committer each start
// goroutines that must end when the test closes them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
