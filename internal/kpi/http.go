package kpi

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
)

// Routes are the report routes, for api.Options.Routes:
// GET /v1/reports/kpis.
func (e *Engine) Routes() []api.Route {
	return []api.Route{{Pattern: "GET /v1/reports/kpis", Handle: e.serveKPIs,
		Roles: []auth.Role{auth.RoleAdmin, auth.RoleSupervisor, auth.RoleRep}}}
}

func invalid(format string, a ...any) *api.Error {
	return &api.Error{Code: api.CodeInvalid, Message: fmt.Sprintf(format, a...)}
}

// serveKPIs answers GET /v1/reports/kpis?interval=15m|hour|day&from=&to=
// &by=all|queue|channel|rep[&format=csv]: JSON {"interval","by","from",
// "to","rows"}, or CSV (format=csv or Accept: text/csv) with one header
// line. from and to are RFC 3339; from defaults to the start of today
// (UTC), to to now. A rep reads only their own rows (by=rep), and the
// team's too when reports.rep_team_view is set.
func (e *Engine) serveKPIs(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	qv, err := api.Query(r, "interval", "from", "to", "by", "format")
	if err != nil {
		return err
	}
	q := Query{By: qv.Get("by")}
	if q.By == "" {
		q.By = dimAll
	}
	interval := qv.Get("interval")
	if interval == "" {
		interval = "hour"
	}
	var ok bool
	if q.Interval, ok = Intervals[interval]; !ok {
		return invalid("interval %q is not 15m, hour or day", interval)
	}
	if !slices.Contains(Bys, q.By) {
		return invalid("by %q is not all, queue, channel or rep", q.By)
	}
	now := e.now().UTC()
	q.From, q.To = now.Truncate(24*time.Hour), now
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if v := qv.Get(t.name); v != "" {
			if *t.dst, err = time.Parse(time.RFC3339, v); err != nil {
				return invalid("%s %q is not an RFC 3339 time", t.name, v)
			}
		}
	}
	if !q.From.Before(q.To) {
		return invalid("from (%s) must be before to (%s)", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	if n := q.To.Sub(q.From) / q.Interval; int(n) > e.cfg.MaxRows {
		return invalid("%d intervals is more than reports.max_rows (%d): ask for a shorter range or a longer interval", n, e.cfg.MaxRows)
	}
	if p.Role == auth.RoleRep {
		switch {
		case q.By == dimRep:
			q.Rep = p.ID
		case !e.cfg.RepTeamView:
			return &api.Error{Code: api.CodeForbidden, Message: "reps read only their own KPIs (by=rep); reports.rep_team_view is off"}
		}
	}
	format := qv.Get("format")
	if format == "" && strings.Contains(r.Header.Get("Accept"), "text/csv") {
		format = "csv"
	}
	if format != "" && format != "csv" && format != "json" {
		return invalid("format %q is not json or csv", format)
	}
	rows, err := e.Report(r.Context(), q)
	if err != nil {
		return err
	}
	if format == "csv" {
		return writeCSV(w, q.By, rows)
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"interval": interval, "by": q.By,
		"from": q.From.UTC().Truncate(q.Interval), "to": q.To, "rows": rows})
	return nil
}

// writeCSV writes rows with a header of their JSON names (by, then the
// Row fields), nulls as empty cells. Phone numbers are masked for reps
// by the API's writer, as in JSON.
func writeCSV(w http.ResponseWriter, by string, rows []Row) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="kpis.csv"`)
	cw := csv.NewWriter(w)
	rt := reflect.TypeFor[Row]()
	header := []string{"by"}
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		header = append(header, name)
	}
	_ = cw.Write(header)
	for _, row := range rows {
		rv := reflect.ValueOf(row)
		rec := []string{by}
		for i := range rv.NumField() {
			rec = append(rec, cell(rv.Field(i).Interface()))
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}

func cell(v any) string {
	switch v := v.(type) {
	case time.Time:
		return v.Format(time.RFC3339)
	case *float64:
		if v == nil {
			return ""
		}
		return strconv.FormatFloat(*v, 'f', -1, 64)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}
