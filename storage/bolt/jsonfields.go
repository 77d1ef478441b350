package bolt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// errBadJSON: a record that is not a JSON object as json.Marshal writes it.
var errBadJSON = errors.New("not a JSON object")

// topFields sets out[i] to the raw value of the top-level member keys[i]
// of the JSON object doc (nil when absent). It walks the object's bytes
// without decoding the rest, which for a pass over every record of a
// large bucket is several times cheaper than json.Unmarshal into a small
// struct (that still parses every member).
func topFields(doc []byte, keys []string, out [][]byte) error {
	clear(out)
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return errBadJSON
	}
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == '}' {
		return nil
	}
	for {
		if i >= len(doc) || doc[i] != '"' {
			return errBadJSON
		}
		end, err := skipString(doc, i)
		if err != nil {
			return err
		}
		rawKey := doc[i:end]
		key := rawKey[1 : len(rawKey)-1]
		i = skipSpace(doc, end)
		if i >= len(doc) || doc[i] != ':' {
			return errBadJSON
		}
		start := skipSpace(doc, i+1)
		if i, err = skipValue(doc, start); err != nil {
			return err
		}
		if bytes.IndexByte(key, '\\') >= 0 { // an escaped name: compare it decoded
			var k string
			if json.Unmarshal(rawKey, &k) == nil {
				key = []byte(k)
			}
		}
		for n, want := range keys {
			if string(key) == want {
				out[n] = doc[start:i]
			}
		}
		i = skipSpace(doc, i)
		switch {
		case i < len(doc) && doc[i] == ',':
			i = skipSpace(doc, i+1)
		case i < len(doc) && doc[i] == '}':
			return nil
		default:
			return errBadJSON
		}
	}
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at doc[i] ('"').
func skipString(doc []byte, i int) (int, error) {
	for j := i + 1; j < len(doc); j++ {
		switch doc[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errBadJSON
}

// skipValue returns the index after the value starting at doc[i].
func skipValue(doc []byte, i int) (int, error) {
	if i >= len(doc) {
		return 0, errBadJSON
	}
	switch doc[i] {
	case '"':
		return skipString(doc, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(doc); j++ {
			switch doc[j] {
			case '"':
				end, err := skipString(doc, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errBadJSON
	}
	j := i
scalar:
	for ; j < len(doc); j++ {
		switch doc[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			break scalar
		}
	}
	if j == i {
		return 0, errBadJSON
	}
	return j, nil
}

// rawString decodes a raw JSON string value; absent (nil) or null is "".
func rawString(v []byte) (string, error) {
	if v == nil || string(v) == "null" {
		return "", nil
	}
	if len(v) >= 2 && v[0] == '"' && bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("a string member: %w", err)
	}
	return s, nil
}

// rawTime decodes a raw JSON time value; absent or null is the zero time.
func rawTime(v []byte) (time.Time, error) {
	var t time.Time
	if v == nil || string(v) == "null" {
		return t, nil
	}
	err := t.UnmarshalJSON(v)
	return t, err
}
