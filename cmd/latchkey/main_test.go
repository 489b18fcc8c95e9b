package main

import (
	"os"
	"testing"
)

// asMainEnv, set to 1, turns the test binary into the latchkey program:
// TestThreeReplicas runs the binary again with it, so that each replica is
// a real process going through main, its signals and its exit status.
const asMainEnv = "LATCHKEY_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main() // exits 1 itself when run fails
		os.Exit(0)
	}
	if os.Getenv(stormDriverEnv) == "1" {
		runStormDriver()
		os.Exit(0)
	}
	os.Exit(m.Run())
}
