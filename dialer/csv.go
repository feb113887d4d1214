package dialer

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/omnigate/omnigate/sessions"
)

// MaxCSVLines bounds a campaign's CSV: a bigger list is several campaigns.
const MaxCSVLines = 200_000

// ParseSpecYAML reads one campaign Spec from YAML, refusing unknown keys.
func ParseSpecYAML(data []byte) (Spec, error) {
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("%w: campaign yaml: %v", ErrInvalid, err)
	}
	return s, nil
}

// ParseSpecJSON reads one campaign Spec from JSON, refusing unknown keys
// and trailing data.
func ParseSpecJSON(data []byte) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("%w: campaign json: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Spec{}, fmt.Errorf("%w: campaign json: data after the object", ErrInvalid)
	}
	return s, nil
}

// CSVEntry is one good line of a campaign CSV.
type CSVEntry struct {
	Line  int
	Phone string // E.164
	Name  string
}

// ParseCSV reads phone numbers from the first column of a CSV (a first
// line whose first cell has no digit is a header; a second column is
// the name). Numbers without a country code are read in region. Every
// bad line is reported by its line number and the reason, never the
// number itself (it may be a customer's). A number listed twice is
// called once.
func ParseCSV(r io.Reader, region string) ([]CSVEntry, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	var out []CSVEntry
	var errs []error
	seen := map[string]bool{}
	for n := 1; ; n++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line := n
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			errs = append(errs, fmt.Errorf("%w: csv line %d: not CSV", ErrInvalid, line))
			return nil, errors.Join(errs...)
		}
		if pos, _ := cr.FieldPos(0); pos > 0 {
			line = pos
		}
		if n > MaxCSVLines {
			errs = append(errs, fmt.Errorf("%w: csv: more than %d lines", ErrInvalid, MaxCSVLines))
			break
		}
		cell := strings.TrimSpace(rec[0])
		if n == 1 && !strings.ContainsAny(cell, "0123456789") {
			continue // header
		}
		if cell == "" && len(rec) == 1 {
			continue // blank line
		}
		phone, err := sessions.NormalizePhone(cell, region)
		if err != nil {
			var pe *sessions.PhoneError
			why := "not a phone number"
			if errors.As(err, &pe) {
				why = pe.Reason
			}
			errs = append(errs, fmt.Errorf("%w: csv line %d: %s", ErrInvalid, line, why))
			continue
		}
		if seen[phone] {
			continue
		}
		seen[phone] = true
		e := CSVEntry{Line: line, Phone: phone}
		if len(rec) > 1 {
			e.Name = strings.TrimSpace(rec[1])
		}
		out = append(out, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
