package storecache

// Orderings broken on purpose, for the power test to catch (make powertest
// POWER_TAGS=…). Only a build with one of these tags sets them, in
// broken_nosync.go and broken_nodirsync.go; no flag, option or environment
// variable does, so a normal build cannot enable them.
var (
	// brokenNoSync (tag powertest_nosync) opens bbolt with NoSync: a commit
	// returns, and the POS is answered, before its pages are on disk.
	brokenNoSync bool
	// brokenNoDirSync (tag powertest_nodirsync) skips the sync of the folder
	// when the store file is created: the file's name never reaches the disk.
	brokenNoDirSync bool
)
