//go:build powertest_nodirsync

package storecache

func init() { brokenNoDirSync = true }
