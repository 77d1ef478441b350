package schemagen

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// FindUp walks up from start looking for shared/<subdir>, where the
// project keeps its copy of Apple's device-management schemas.
func FindUp(start, subdir string) (string, error) {
	dir, err := filepath.Abs(start)
	if err != nil {
		return "", err
	}
	for {
		cand := filepath.Join(dir, "shared", filepath.FromSlash(subdir))
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no shared/%s above %s", subdir, start)
		}
		dir = parent
	}
}

// ValueLiteral renders a schema's allowed value as the Go value generated
// code compares with: string for <string>, int64 for <integer>, float64 for
// <real>.
func ValueLiteral(typ string, v any) (string, error) {
	switch typ {
	case "<string>":
		if s, ok := v.(string); ok {
			return strconv.Quote(s), nil
		}
	case "<integer>":
		if i, ok := v.(int); ok {
			return fmt.Sprintf("int64(%d)", i), nil
		}
	case "<real>":
		switch n := v.(type) {
		case float64:
			return "float64(" + floatLit(n) + ")", nil
		case int:
			return fmt.Sprintf("float64(%d)", n), nil
		}
	}
	return "", fmt.Errorf("value %v (%T) does not fit %s", v, v, typ)
}

// FloatLit renders a float as a Go literal (0 for the infinities and NaN,
// which YAML allows and Go literals cannot hold).
func FloatLit(v float64) string { return floatLit(v) }

func floatLit(v float64) string {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return "0"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
