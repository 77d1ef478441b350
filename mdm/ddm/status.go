package ddm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
)

// Bounds on one status report, so a hostile device cannot grow its record
// without limit.
const (
	MaxStatusItems        = 512
	MaxStatusDeclarations = 1024
	maxStatusDepth        = 16
)

// DeclarationStatus is one declaration's line of management.declarations.
type DeclarationStatus struct {
	Kind        string          `json:"kind"`
	Identifier  string          `json:"identifier"`
	ServerToken string          `json:"server-token"`
	Active      bool            `json:"active"`
	Valid       string          `json:"valid"`
	Reasons     json.RawMessage `json:"reasons,omitempty"`
}

// StatusReport is a decoded status body: Items are the leaf status items by
// dotted path (device.operating-system.version), Declarations the lines of
// management.declarations. A partial report holds only what changed.
type StatusReport struct {
	Items        map[string]json.RawMessage
	Declarations []DeclarationStatus
	Errors       json.RawMessage
}

// ParseStatus decodes a status report, within the bounds above.
func ParseStatus(body []byte) (*StatusReport, error) {
	var top struct {
		StatusItems map[string]json.RawMessage `json:"StatusItems"`
		Errors      json.RawMessage            `json:"Errors"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("%w: status report is not JSON: %v", ErrInvalid, err)
	}
	if top.StatusItems == nil {
		return nil, fmt.Errorf("%w: status report has no StatusItems", ErrInvalid)
	}
	r := &StatusReport{Items: map[string]json.RawMessage{}, Errors: top.Errors}
	if err := r.flatten("", top.StatusItems, 0); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *StatusReport) flatten(prefix string, m map[string]json.RawMessage, depth int) error {
	if depth > maxStatusDepth {
		return fmt.Errorf("%w: status items nested too deep", ErrInvalid)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		v := m[k]
		if path == "management.declarations" {
			if err := r.declarations(v); err != nil {
				return err
			}
			continue
		}
		var sub map[string]json.RawMessage
		if len(v) > 0 && v[0] == '{' && json.Unmarshal(v, &sub) == nil && len(sub) > 0 {
			if err := r.flatten(path, sub, depth+1); err != nil {
				return err
			}
			continue
		}
		if len(r.Items) >= MaxStatusItems {
			return fmt.Errorf("%w: over %d status items", ErrInvalid, MaxStatusItems)
		}
		r.Items[path] = append(json.RawMessage(nil), v...)
	}
	return nil
}

func (r *StatusReport) declarations(v json.RawMessage) error {
	var d map[string][]DeclarationStatus
	if err := json.Unmarshal(v, &d); err != nil {
		return fmt.Errorf("%w: management.declarations: %v", ErrInvalid, err)
	}
	for _, kind := range []string{"activations", "assets", "configurations", "management"} {
		for _, s := range d[kind] {
			if len(r.Declarations) >= MaxStatusDeclarations {
				return fmt.Errorf("%w: over %d declaration statuses", ErrInvalid, MaxStatusDeclarations)
			}
			s.Kind = kind
			r.Declarations = append(r.Declarations, s)
		}
	}
	return nil
}
