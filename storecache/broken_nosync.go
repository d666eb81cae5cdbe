//go:build powertest_nosync

package storecache

func init() { brokenNoSync = true }
