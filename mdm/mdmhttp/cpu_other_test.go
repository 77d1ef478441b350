//go:build !unix

package mdmhttp_test

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
