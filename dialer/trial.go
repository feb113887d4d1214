package dialer

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// stratum names a customer's trial stratum: tier, region, channel
// history ("B|CN|voice", "-|US|new").
func (t target) stratum() string {
	tier := cmp.Or(string(t.customer.Tier), "-")
	history := "new"
	if t.voice {
		history = "voice"
	}
	return tier + "|" + t.region() + "|" + history
}

// region is the customer's profile region (attribute region) or else
// the region of their number's country code.
func (t target) region() string {
	if r := t.customer.Attributes["region"]; r != "" {
		return strings.ToUpper(r)
	}
	if n, err := phonenumbers.Parse(t.phone, "ZZ"); err == nil {
		if r := phonenumbers.GetRegionCodeForNumber(n); r != "" {
			return r
		}
		return "+" + strconv.Itoa(int(n.GetCountryCode()))
	}
	return "-"
}

// trialSample picks about fraction of targets, stratified: each stratum
// gets its proportional share (largest remainders first) and at least
// one customer, so a small stratum is not missed. Within a stratum the
// customers are taken evenly spread through the list, so the pick is
// deterministic and not just the first rows of a CSV. It returns the
// picked indexes and their strata.
func trialSample(targets []target, fraction float64) map[int]string {
	strata := map[string][]int{}
	for i, t := range targets {
		k := t.stratum()
		strata[k] = append(strata[k], i)
	}
	names := sortedKeys(strata)
	total := int(math.Round(fraction * float64(len(targets))))
	total = max(total, len(names))
	type share struct {
		name string
		n    int
		rest float64
	}
	shares := make([]share, len(names))
	given := 0
	for i, k := range names {
		exact := fraction * float64(len(strata[k]))
		n := max(int(exact), 1)
		shares[i] = share{k, n, exact - float64(int(exact))}
		given += n
	}
	slices.SortStableFunc(shares, func(a, b share) int { return cmp.Compare(b.rest, a.rest) })
	for i := 0; given < total && i < len(shares); i++ {
		if shares[i].n < len(strata[shares[i].name]) {
			shares[i].n++
			given++
		}
	}
	out := map[int]string{}
	for _, sh := range shares {
		members := strata[sh.name]
		step := float64(len(members)) / float64(sh.n)
		for j := range sh.n {
			out[members[int(float64(j)*step)]] = sh.name
		}
	}
	return out
}
