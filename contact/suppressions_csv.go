package contact

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// csvHeader is the CSV format's columns; a first line naming them (or
// their start) is a header and is skipped.
var csvHeader = []string{"kind", "value", "channel", "purpose", "reason"}

// maxCSVErrors caps how many bad lines ImportCSV lists; the rest are
// counted.
const maxCSVErrors = 50

// ImportCSV reads "kind,value,channel,purpose,reason" lines (header
// optional; channel, purpose and reason may be left off) into s, with
// Source source and At now. Every bad line is reported by number and
// nothing is imported if any line is bad: the whole file is checked
// before the first Add. Adds are idempotent, so if the store fails part
// way (the error says so), importing the same file again finishes the
// job. n is the number of lines imported.
func ImportCSV(ctx context.Context, s Suppressions, r io.Reader, source string, now time.Time) (n int, err error) {
	entries, err := parseCSV(r, source, now)
	if err != nil {
		return 0, err
	}
	for i, e := range entries {
		if err := s.Add(ctx, e); err != nil {
			return i, fmt.Errorf("contact: import stopped after %d of %d lines (importing again is safe): %w", i, len(entries), err)
		}
	}
	return len(entries), nil
}

// parseCSV reads and checks every line.
func parseCSV(r io.Reader, source string, now time.Time) ([]Suppression, error) {
	if err := checkWord("source", source); err != nil {
		return nil, err
	}
	if now.IsZero() {
		return nil, fmt.Errorf("%w: import without a time", ErrInvalidSuppression)
	}
	// Spreadsheets save CSV with a UTF-8 byte order mark, which would
	// otherwise be part of the first kind.
	br := bufio.NewReader(r)
	if bom, err := br.Peek(3); err == nil && string(bom) == "\ufeff" {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	var out []Suppression
	var errs []error
	bad := 0
	fail := func(line int, err error) {
		bad++
		if bad <= maxCSVErrors {
			errs = append(errs, fmt.Errorf("line %d: %w", line, err))
		}
	}
	for first := true; ; first = false {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		var perr *csv.ParseError
		if errors.As(err, &perr) {
			fail(perr.StartLine, fmt.Errorf("%w: %w", ErrInvalidSuppression, perr.Err))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("contact: reading CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if first && isHeader(rec) {
			continue
		}
		if len(rec) < 2 || len(rec) > len(csvHeader) {
			fail(line, fmt.Errorf("%w: %d fields, want kind,value[,channel[,purpose[,reason]]]", ErrInvalidSuppression, len(rec)))
			continue
		}
		rec = append(rec, make([]string, len(csvHeader)-len(rec))...)
		e, err := normalizeSuppression(Suppression{
			Kind: strings.TrimSpace(rec[0]), Value: rec[1],
			Channel: strings.TrimSpace(rec[2]), Purpose: strings.TrimSpace(rec[3]), Reason: rec[4],
			Source: source, At: now,
		})
		if err != nil {
			fail(line, err)
			continue
		}
		out = append(out, e)
	}
	if bad > maxCSVErrors {
		errs = append(errs, fmt.Errorf("and %d more bad lines", bad-maxCSVErrors))
	}
	if bad > 0 {
		return nil, fmt.Errorf("contact: CSV has %d bad lines, nothing imported:\n%w", bad, errors.Join(errs...))
	}
	return out, nil
}

func isHeader(rec []string) bool {
	if len(rec) < 2 || len(rec) > len(csvHeader) {
		return false
	}
	for i, f := range rec {
		if !strings.EqualFold(strings.TrimSpace(f), csvHeader[i]) {
			return false
		}
	}
	return true
}

// ExportCSV writes every entry of s in ImportCSV's format, with a header,
// in List order; importing it gives the same list back (Source and At
// aside, which the format does not carry).
func ExportCSV(ctx context.Context, s Suppressions, w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	cursor := ""
	for {
		page, next, err := s.List(ctx, cursor, 1000)
		if err != nil {
			return err
		}
		for _, e := range page {
			if err := cw.Write([]string{e.Kind, e.Value, e.Channel, e.Purpose, e.Reason}); err != nil {
				return err
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	cw.Flush()
	return cw.Error()
}
