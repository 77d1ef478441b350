package adminapi

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// TestOpenAPIMatchesRoutes fails when routes.go has an operation the
// document lacks, or the document one the table lacks.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "parameters", "summary", "description", "servers":
				continue // path-level fields, not operations
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	routed := Routes()
	if len(routed) < 40 {
		t.Fatalf("route table has %d routes; the walk is broken", len(routed))
	}
	for _, r := range routed {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routed, d) {
			t.Errorf("openapi.json documents %s, which routes.go does not serve", d)
		}
	}
	seen := map[string]bool{}
	for _, r := range routed {
		if seen[r] {
			t.Errorf("route %s is in the table twice", r)
		}
		seen[r] = true
	}
}

// TestOpenAPIIsValid31 checks the document against the OpenAPI 3.1 schema
// with a maintained validator.
func TestOpenAPIIsValid31(t *testing.T) {
	doc, err := libopenapi.NewDocument(OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("openapi version %q, want 3.1.x", v)
	}
	if _, errs := doc.BuildV3Model(); errs != nil {
		t.Fatalf("model: %v", errs)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	ok, verrs := v.ValidateDocument()
	for _, e := range verrs {
		t.Errorf("%s", e.Error())
		for _, se := range e.SchemaValidationErrors {
			t.Errorf("  %s: %s", se.FieldPath, se.Reason)
		}
	}
	if !ok {
		t.Fatal("openapi.json is not a valid OpenAPI 3.1 document")
	}
}

// TestOpenAPIValidatorRefusesBrokenDocument shows the validity check can
// fail: the same document without its required info object is refused.
func TestOpenAPIValidatorRefusesBrokenDocument(t *testing.T) {
	var m map[string]any
	if err := json.Unmarshal(OpenAPI(), &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "info")
	broken, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocument(broken)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if ok, _ := v.ValidateDocument(); ok {
		t.Fatal("a document without info passed validation")
	}
}
