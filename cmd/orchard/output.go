package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// object is a JSON object that keeps the server's key order, so tables and
// key: value lists read in the order the API defines.
type object struct {
	keys []string
	vals map[string]any
}

func (o *object) get(path string) (any, bool) {
	var cur any = o
	for _, k := range strings.Split(path, ".") {
		ob, ok := cur.(*object)
		if !ok {
			return nil, false
		}
		if cur, ok = ob.vals[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// decodeOrdered decodes one JSON value: objects as *object, arrays as []any,
// numbers as json.Number (exact), the rest as encoding/json does.
func decodeOrdered(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	v, err := decodeValue(d)
	if err != nil {
		return nil, fmt.Errorf("server answered something other than JSON: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("server answered something other than one JSON value")
	}
	return v, nil
}

func decodeValue(d *json.Decoder) (any, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		o := &object{vals: map[string]any{}}
		for d.More() {
			kt, err := d.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			v, err := decodeValue(d)
			if err != nil {
				return nil, err
			}
			if _, dup := o.vals[k]; !dup {
				o.keys = append(o.keys, k)
			}
			o.vals[k] = v
		}
		_, err := d.Token() // '}'
		return o, err
	case json.Delim('['):
		a := []any{}
		for d.More() {
			v, err := decodeValue(d)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := d.Token() // ']'
		return a, err
	}
	return tok, nil
}

// cell formats one scalar for a table or CSV; nested values are JSON.
func cell(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		if v {
			return "yes"
		}
		return "no"
	case json.Number:
		return v.String()
	case []any:
		parts := make([]string, 0, len(v))
		for _, x := range v {
			if _, nested := x.(*object); nested {
				return fmt.Sprintf("[%d items]", len(v))
			}
			parts = append(parts, cell(x))
		}
		return strings.Join(parts, ", ")
	case *object:
		parts := make([]string, 0, len(v.keys))
		for _, k := range v.keys {
			parts = append(parts, k+"="+cell(v.vals[k]))
		}
		return strings.Join(parts, " ")
	}
	return fmt.Sprint(v)
}

// column is one column of a list: a header and a dotted JSON path.
type column struct{ header, path string }

// columnsOf derives columns from the items when a command names none: every
// scalar key, in the order first seen.
func columnsOf(items []any) []column {
	var cols []column
	seen := map[string]bool{}
	for _, it := range items {
		o, ok := it.(*object)
		if !ok {
			continue
		}
		for _, k := range o.keys {
			if seen[k] {
				continue
			}
			seen[k] = true
			cols = append(cols, column{strings.ToUpper(k), k})
		}
	}
	return cols
}

// rows formats the items' cells; CSV keeps JSON's true/false for scripts,
// tables say yes/no.
func rows(items []any, cols []column, forCSV bool) [][]string {
	out := make([][]string, 0, len(items))
	for _, it := range items {
		r := make([]string, len(cols))
		o, ok := it.(*object)
		for i, c := range cols {
			if !ok {
				r[i] = cell(it)
				continue
			}
			if v, ok := o.get(c.path); ok {
				if b, isBool := v.(bool); isBool && forCSV {
					r[i] = fmt.Sprint(b)
				} else {
					r[i] = cell(v)
				}
			}
		}
		out = append(out, r)
	}
	return out
}

func headers(cols []column) []string {
	h := make([]string, len(cols))
	for i, c := range cols {
		h[i] = c.header
	}
	return h
}

// writeTable writes aligned columns; an empty cell shows as "-" so columns
// stay readable.
func writeTable(w io.Writer, cols []column, items []any) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(headers(cols), "\t"))
	for _, r := range rows(items, cols, false) {
		for i := range r {
			if r[i] == "" {
				r[i] = "-"
			}
			r[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(r[i])
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func writeCSV(w io.Writer, cols []column, items []any) error {
	cw := csv.NewWriter(w)
	cw.Write(headers(cols))
	for _, r := range rows(items, cols, true) {
		cw.Write(r)
	}
	cw.Flush()
	return cw.Error()
}

// flatten lists an object's scalars as dotted paths; arrays of objects are
// returned apart, to be shown as tables.
func flatten(prefix string, o *object, kv *[][2]string, tables *[]namedTable) {
	for _, k := range o.keys {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		switch v := o.vals[k].(type) {
		case *object:
			flatten(p, v, kv, tables)
		case []any:
			if len(v) > 0 {
				if _, nested := v[0].(*object); nested {
					*tables = append(*tables, namedTable{p, v})
					continue
				}
			}
			*kv = append(*kv, [2]string{p, cell(v)})
		default:
			*kv = append(*kv, [2]string{p, cell(v)})
		}
	}
}

type namedTable struct {
	name  string
	items []any
}

// writeObject shows one object as "key: value" lines, then each list it
// holds as a table.
func writeObject(w io.Writer, o *object) error {
	var kv [][2]string
	var tables []namedTable
	flatten("", o, &kv, &tables)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, p := range kv {
		fmt.Fprintf(tw, "%s:\t%s\n", p[0], strings.ReplaceAll(p[1], "\n", " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range tables {
		fmt.Fprintf(w, "\n%s:\n", t.name)
		if err := writeTable(w, columnsOf(t.items), t.items); err != nil {
			return err
		}
	}
	return nil
}

// writeObjectCSV writes one object as field,value rows.
func writeObjectCSV(w io.Writer, o *object) error {
	var kv [][2]string
	var tables []namedTable
	flatten("", o, &kv, &tables)
	cw := csv.NewWriter(w)
	cw.Write([]string{"field", "value"})
	for _, p := range kv {
		cw.Write(p[:])
	}
	for _, t := range tables {
		for i, it := range t.items {
			if io, ok := it.(*object); ok {
				var sub [][2]string
				var subT []namedTable
				flatten(fmt.Sprintf("%s.%d", t.name, i), io, &sub, &subT)
				for _, p := range sub {
					cw.Write(p[:])
				}
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// bulkSummary is the line a bulk command answers before its per-target
// list: how many were queued and how many refused, by reason.
func bulkSummary(targets []any) (line string, refused int) {
	queued := 0
	reasons := map[string]int{}
	var order []string
	for _, t := range targets {
		o, ok := t.(*object)
		if !ok {
			continue
		}
		if q, _ := o.vals["queued"].(bool); q {
			queued++
			continue
		}
		refused++
		r := cell(o.vals["error"])
		if r == "" {
			r = "no reason given"
		}
		if reasons[r] == 0 {
			order = append(order, r)
		}
		reasons[r]++
	}
	line = fmt.Sprintf("queued %d, refused %d", queued, refused)
	if refused > 0 {
		parts := make([]string, 0, len(order))
		for _, r := range order {
			parts = append(parts, fmt.Sprintf("%d %s", reasons[r], r))
		}
		line += " (" + strings.Join(parts, "; ") + ")"
	}
	return line, refused
}
