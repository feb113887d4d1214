package kpi

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Snapshot is the live view: the wallboard's frame and the gauges.
type Snapshot struct {
	At     time.Time   `json:"at,omitzero"`
	Queues []LiveQueue `json:"queues"`
	Reps   []LiveRep   `json:"reps"`
	// ByState counts reps by presence (offline reps included).
	ByState map[string]int `json:"by_state"`
	// Day is today's 15-minute slots so far, the whole team.
	Day    []LiveSlot `json:"day"`
	Alerts []Alert    `json:"alerts"`
}

// LiveQueue is one queue now and today.
type LiveQueue struct {
	Name    string `json:"name"`
	Waiting int    `json:"waiting"`
	// OldestSince is when the longest-waiting contact started waiting; the
	// wallboard counts the longest wait up from it, so the frame changes
	// only when something happened, not every second.
	OldestSince *time.Time `json:"oldest_since,omitempty"`
	// LongestWait is now - OldestSince, in whole seconds (the gauge).
	LongestWait int64 `json:"-"`
	Offered     int64 `json:"offered"`
	Answered    int64 `json:"answered"`
	Abandoned   int64 `json:"abandoned"`
	// ServiceLevel today; nil before anything was answered or abandoned.
	ServiceLevel *float64 `json:"service_level"`
	TargetS      float64  `json:"target_s"`
	Goal         float64  `json:"goal"`
	ASA          *float64 `json:"asa_s"`
}

// LiveRep is one rep's state now.
type LiveRep struct {
	ID       string    `json:"id"`
	Name     string    `json:"name,omitempty"`
	Presence string    `json:"presence"`
	Reason   string    `json:"reason,omitempty"`
	Since    time.Time `json:"since"`
	Active   int       `json:"active"`
}

// LiveSlot is one slot of today for the charts.
type LiveSlot struct {
	Start        time.Time `json:"start"`
	Offered      int64     `json:"offered"`
	Answered     int64     `json:"answered"`
	Abandoned    int64     `json:"abandoned"`
	ServiceLevel *float64  `json:"service_level"`
}

// Alert is a condition the wallboard shows in red.
type Alert struct {
	// Kind is "service_level" (today's under the queue's goal) or
	// "long_wait" (a contact waiting longer than reports.alert_wait).
	Kind    string `json:"kind"`
	Queue   string `json:"queue"`
	Message string `json:"message"`
}

// Version changes whenever the live view may have (a count, a rep state);
// alerts for long waits come with the clock besides.
func (e *Engine) Version() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.version
}

// Snapshot is the live view now.
func (e *Engine) Snapshot() Snapshot {
	now := e.now().UTC()
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Snapshot{At: now, ByState: map[string]int{}, Alerts: []Alert{}}
	queues := map[string]*LiveQueue{}
	lq := func(name string) *LiveQueue {
		if q := queues[name]; q != nil {
			return q
		}
		qc := e.queue(name, "")
		q := &LiveQueue{Name: name, TargetS: qc.SLTarget().Seconds(), Goal: float64(qc.SLGoal()) / 100}
		queues[name] = q
		return q
	}
	for _, qc := range e.rcfg.Queues {
		lq(qc.Name)
	}
	if len(e.rcfg.Queues) == 0 {
		lq(e.rcfg.QueueOf("").Name)
	}
	for _, c := range e.convs {
		if c.waiting.IsZero() {
			continue
		}
		q := lq(c.queue)
		q.Waiting++
		if q.OldestSince == nil || c.waiting.Before(*q.OldestSince) {
			since := c.waiting.UTC()
			q.OldestSince = &since
			q.LongestWait = max(int64(now.Sub(since)/time.Second), 0)
		}
	}
	today := Counts{}
	for slot, c := range e.today {
		if slot < e.day {
			continue
		}
		today.merge(c)
		ls := LiveSlot{Start: time.Unix(slot, 0).UTC(), Offered: c[key(dimAll, "", cOffered)],
			Answered: c[key(dimAll, "", cAnswered)], Abandoned: c[key(dimAll, "", cAbandoned)]}
		ls.ServiceLevel = ratio(c[key(dimAll, "", cAnsweredInSL)], ls.Answered+ls.Abandoned)
		s.Day = append(s.Day, ls)
	}
	slices.SortFunc(s.Day, func(a, b LiveSlot) int { return a.Start.Compare(b.Start) })
	for k := range today {
		if dim, val, _, ok := splitKey(k); ok && dim == dimQueue {
			lq(val)
		}
	}
	for name, q := range queues {
		get := func(counter string) int64 { return today[key(dimQueue, name, counter)] }
		q.Offered, q.Answered, q.Abandoned = get(cOffered), get(cAnswered), get(cAbandoned)
		q.ServiceLevel = ratio(get(cAnsweredInSL), q.Answered+q.Abandoned)
		q.ASA = ratio(get(cWaitMS), q.Answered*1000)
		if q.ServiceLevel != nil && *q.ServiceLevel < q.Goal {
			s.Alerts = append(s.Alerts, Alert{Kind: "service_level", Queue: name,
				Message: fmt.Sprintf("%s: service level %.0f%% is under the %.0f%% goal", name, *q.ServiceLevel*100, q.Goal*100)})
		}
		if time.Duration(q.LongestWait)*time.Second > e.cfg.AlertWait {
			s.Alerts = append(s.Alerts, Alert{Kind: "long_wait", Queue: name,
				Message: fmt.Sprintf("%s: a contact has waited over %s", name, e.cfg.AlertWait)})
		}
		s.Queues = append(s.Queues, *q)
	}
	slices.SortFunc(s.Queues, func(a, b LiveQueue) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(s.Alerts, func(a, b Alert) int { return strings.Compare(a.Queue+a.Kind, b.Queue+b.Kind) })
	for id, r := range e.reps {
		p := string(r.presence)
		s.ByState[p]++
		s.Reps = append(s.Reps, LiveRep{ID: id, Name: e.names[id], Presence: p, Reason: r.reason, Since: r.since, Active: r.active})
	}
	slices.SortFunc(s.Reps, func(a, b LiveRep) int { return strings.Compare(a.ID, b.ID) })
	return s
}

// liveCollector serves the live view as gauges, computed at scrape.
type liveCollector struct{ e *Engine }

var (
	descWaiting = prometheus.NewDesc("omnigate_kpi_waiting", "Contacts waiting for a rep, by queue.", []string{"queue"}, nil)
	descLongest = prometheus.NewDesc("omnigate_kpi_longest_wait_seconds", "The longest wait now, by queue.", []string{"queue"}, nil)
	descSL      = prometheus.NewDesc("omnigate_kpi_service_level_today", "Today's service level (0 to 1; answered within target / answered and abandoned), by queue; absent before any answer.", []string{"queue"}, nil)
	descReps    = prometheus.NewDesc("omnigate_kpi_reps", "Reps by state.", []string{"state"}, nil)
)

func (l liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descWaiting
	ch <- descLongest
	ch <- descSL
	ch <- descReps
}

func (l liveCollector) Collect(ch chan<- prometheus.Metric) {
	s := l.e.Snapshot()
	for _, q := range s.Queues {
		ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, float64(q.Waiting), q.Name)
		ch <- prometheus.MustNewConstMetric(descLongest, prometheus.GaugeValue, float64(q.LongestWait), q.Name)
		if q.ServiceLevel != nil {
			ch <- prometheus.MustNewConstMetric(descSL, prometheus.GaugeValue, *q.ServiceLevel, q.Name)
		}
	}
	for state, n := range s.ByState {
		ch <- prometheus.MustNewConstMetric(descReps, prometheus.GaugeValue, float64(n), state)
	}
}

// WallboardFrame is the live view as the wallboard's JSON, without its
// time, so the same bytes mean nothing changed (inbox.WallboardSource).
func (e *Engine) WallboardFrame() []byte {
	s := e.Snapshot()
	s.At = time.Time{}
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // only strings, numbers and times
	}
	return b
}
