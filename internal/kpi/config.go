package kpi

import (
	"fmt"
	"time"
)

// Config is the "reports" section of the gateway's YAML. Service-level
// targets are per queue (routing.queues[].service_level_target and
// service_level_goal); break reasons are routing.break_reasons.
type Config struct {
	// Disabled turns KPIs off: nothing is counted, GET /v1/reports/kpis
	// is not served and the wallboard gets no frames (also a way to
	// compare the gateway's CPU with and without them); false (the zero
	// value) counts.
	Disabled bool `yaml:"disabled"`
	// RepTeamView lets reps read the team's KPIs (by queue, channel and
	// the whole team) besides their own; false (the zero value) shows a
	// rep only their own rows (by=rep).
	RepTeamView bool `yaml:"rep_team_view"`
	// AlertWait raises a wallboard alert when a contact has waited longer;
	// zero means 60s.
	AlertWait time.Duration `yaml:"alert_wait"`
	// MaxRows caps the rows one report may have (intervals × keys), so a
	// year of 15-minute rows is refused rather than built; zero means
	// 20000.
	MaxRows int `yaml:"max_rows"`
}

// Defaults of the fields whose zero value means one.
const (
	DefaultAlertWait = time.Minute
	DefaultMaxRows   = 20000
)

// WithDefaults returns c with its zero values set to their defaults.
func (c Config) WithDefaults() Config {
	if c.AlertWait == 0 {
		c.AlertWait = DefaultAlertWait
	}
	if c.MaxRows == 0 {
		c.MaxRows = DefaultMaxRows
	}
	return c
}

// Validate reports every problem, each naming its YAML key.
func (c Config) Validate() []error {
	var errs []error
	if c.AlertWait < 0 {
		errs = append(errs, fmt.Errorf("reports.alert_wait: %v is negative", c.AlertWait))
	}
	if c.MaxRows < 0 {
		errs = append(errs, fmt.Errorf("reports.max_rows: %d is negative", c.MaxRows))
	}
	return errs
}
