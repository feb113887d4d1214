package kpi

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Query asks for a report: one row per interval and key.
type Query struct {
	// Interval is Slot (15m), time.Hour or 24 hours (days start at
	// midnight UTC).
	Interval time.Duration
	// From and To bound the report: intervals starting in [From, To).
	From, To time.Time
	// By is "all" (the whole team), "queue", "channel" or "rep".
	By string
	// Rep, when set, keeps only that rep's rows (By "rep").
	Rep string
}

// Row is one interval's KPIs for one key. Ratios are null when their
// denominator is zero; durations are in seconds.
type Row struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Key is the queue, channel or rep; empty for the whole team.
	Key string `json:"key"`

	Offered      int64 `json:"offered"`
	Answered     int64 `json:"answered"`
	AnsweredInSL int64 `json:"answered_in_target"`
	Abandoned    int64 `json:"abandoned"`
	Overflowed   int64 `json:"overflowed"`
	// ServiceLevel is answered within target / (answered + abandoned).
	ServiceLevel *float64 `json:"service_level"`
	// TargetS and Goal are the queue's (By "queue" only).
	TargetS     *float64 `json:"service_level_target_s,omitempty"`
	Goal        *float64 `json:"service_level_goal,omitempty"`
	ASA         *float64 `json:"asa_s"`
	ASAP90      *float64 `json:"asa_p90_s"`
	AbandonRate *float64 `json:"abandon_rate"`

	FirstResponses int64    `json:"first_responses"`
	FRT            *float64 `json:"first_response_avg_s"`
	Handled        int64    `json:"handled"`
	AHT            *float64 `json:"handle_avg_s"`
	Resolution     *float64 `json:"resolution_avg_s"`

	Contacts   int64 `json:"contacts"`
	Repeat     int64 `json:"repeat_contacts"`
	Merged     int64 `json:"merged_contacts"`
	Suppressed int64 `json:"suppressed_contacts"`

	Calls           int64    `json:"calls"`
	CallsConnected  int64    `json:"calls_connected"`
	CallsAbandoned  int64    `json:"calls_abandoned"`
	ConnectRate     *float64 `json:"connect_rate"`
	CallAbandonRate *float64 `json:"call_abandon_rate"`

	LoggedInS   float64  `json:"logged_in_s"`
	HandlingS   float64  `json:"handling_s"`
	IdleS       float64  `json:"idle_s"`
	BreakS      float64  `json:"break_s"`
	AwayS       float64  `json:"away_s"`
	Occupancy   *float64 `json:"occupancy"`
	Utilisation *float64 `json:"utilisation"`
}

// Intervals the API takes, by name.
var Intervals = map[string]time.Duration{"15m": Slot, "hour": time.Hour, "day": 24 * time.Hour}

// Bys are the report's groupings.
var Bys = []string{dimAll, dimQueue, dimChannel, dimRep}

// Report adds what was counted to the store, then reads the slots of q's
// range and sums them into rows, sorted by start then key.
func (e *Engine) Report(ctx context.Context, q Query) ([]Row, error) {
	if !slices.Contains(Bys, q.By) {
		return nil, fmt.Errorf("kpi: by %q", q.By)
	}
	if err := e.Flush(ctx); err != nil {
		return nil, err
	}
	from, to := q.From.UTC().Truncate(q.Interval), q.To.UTC()
	slots, err := e.store.Load(ctx, from.Unix(), to.Unix())
	if err != nil {
		return nil, err
	}
	type rk struct {
		start int64
		key   string
	}
	agg := map[rk]Counts{}
	step := int64(q.Interval / time.Second)
	for slot, counts := range slots {
		start := from.Unix() + (slot-from.Unix())/step*step
		for k, v := range counts {
			dim, val, counter, ok := splitKey(k)
			if !ok || dim != q.By || (q.Rep != "" && val != q.Rep) {
				continue
			}
			c := agg[rk{start, val}]
			if c == nil {
				c = Counts{}
				agg[rk{start, val}] = c
			}
			c[counter] += v
		}
	}
	rows := make([]Row, 0, len(agg))
	for k, c := range agg {
		start := time.Unix(k.start, 0).UTC()
		row := e.row(c, q.By, k.key)
		row.Start, row.End = start, start.Add(q.Interval)
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b Row) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return rows, nil
}

// row works out the KPIs of one key's counters.
func (e *Engine) row(c Counts, by, key string) Row {
	r := Row{Key: key, Offered: c[cOffered], Answered: c[cAnswered], AnsweredInSL: c[cAnsweredInSL],
		Abandoned: c[cAbandoned], Overflowed: c[cOverflowed], FirstResponses: c[cFirstResp], Handled: c[cHandled],
		Contacts: c[cContacts], Repeat: c[cRepeat], Merged: c[cMerged], Suppressed: c[cSuppressed],
		Calls: c[cCalls], CallsConnected: c[cConnected], CallsAbandoned: c[cCallAbandon]}
	r.ServiceLevel = ratio(c[cAnsweredInSL], c[cAnswered]+c[cAbandoned])
	r.AbandonRate = ratio(c[cAbandoned], c[cAnswered]+c[cAbandoned])
	r.ASA = ratio(c[cWaitMS], c[cAnswered]*1000)
	hist := map[int]int64{}
	for k, v := range c {
		if i, err := strconv.Atoi(strings.TrimPrefix(k, cWaitHist)); err == nil && strings.HasPrefix(k, cWaitHist) {
			hist[i] = v
		}
	}
	if p := percentile(hist, 0.9); p >= 0 {
		r.ASAP90 = &p
	}
	r.FRT = ratio(c[cFirstRespMS], c[cFirstResp]*1000)
	r.AHT = ratio(c[cHandleMS], c[cHandled]*1000)
	r.Resolution = ratio(c[cResolutionMS], c[cHandled]*1000)
	r.ConnectRate = ratio(c[cConnected], c[cCalls])
	r.CallAbandonRate = ratio(c[cCallAbandon], c[cConnected])
	handling, idle, brk, away := c[cStatePrefix+stHandling], c[cStatePrefix+stIdle], c[cStatePrefix+stBreak], c[cStatePrefix+stAway]
	logged := handling + idle + brk + away
	r.LoggedInS, r.HandlingS, r.IdleS = seconds(logged), seconds(handling), seconds(idle)
	r.BreakS, r.AwayS = seconds(brk), seconds(away)
	r.Occupancy = ratio(handling, logged-brk)
	r.Utilisation = ratio(handling, logged)
	if by == dimQueue {
		q := e.queue(key, "")
		t, g := q.SLTarget().Seconds(), float64(q.SLGoal())/100
		r.TargetS, r.Goal = &t, &g
	}
	return r
}

// ratio is a/b rounded to 4 decimals (so a masked answer never takes a
// long fraction for a phone number), nil when b is zero.
func ratio(a, b int64) *float64 {
	if b == 0 {
		return nil
	}
	v := math.Round(float64(a)/float64(b)*10000) / 10000
	return &v
}

func seconds(msec int64) float64 { return math.Round(float64(msec)/100) / 10 }
