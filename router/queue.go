package router

import (
	"container/heap"
	"slices"
	"strconv"
	"strings"
	"time"
)

// bitset is a set of small integers (interned skill or language ids).
type bitset []uint64

func (b bitset) has(i int) bool {
	w := i >> 6
	return w < len(b) && b[w]&(1<<(uint(i)&63)) != 0
}

func (b *bitset) set(i int) {
	w := i >> 6
	for len(*b) <= w {
		*b = append(*b, 0)
	}
	(*b)[w] |= 1 << (uint(i) & 63)
}

// covers reports whether b holds every member of o.
func (b bitset) covers(o bitset) bool {
	for i, w := range o {
		if w == 0 {
			continue
		}
		if i >= len(b) || b[i]&w != w {
			return false
		}
	}
	return true
}

// level is a required skill above level 1.
type level struct {
	skill int
	min   uint8
}

// need is what a task requires of a rep, with skill and language names
// interned. Tasks requiring the same share one need.
type need struct {
	skills        bitset
	levels        []level
	relaxedSkills bitset
	relaxedLevels []level
	lang          int // -1: any
}

// stage is how far out a waiting task's rings reach.
type stage uint8

const (
	stageTarget  stage = iota // only the sticky assignee or owner
	stageExact                // target, then the exact ring
	stageRelaxed              // target, exact, then the relaxed ring
)

func (s stage) ring() Ring {
	switch s {
	case stageTarget:
		return RingOwner
	case stageExact:
		return RingExact
	}
	return RingRelaxed
}

// queue is one configured queue and its waiting tasks, grouped in classes
// of identical requirements so a rep that frees up looks at each class's
// head instead of every task.
type queue struct {
	cfg     QueueConfig
	skills  map[string]int
	dropAll bool
	drop    map[string]bool
	classes map[string]*class
	rrLast  string // round robin: the rep chosen last
}

// class holds the waiting tasks of one queue with the same channel, need and
// stage, in priority order.
type class struct {
	key     string
	q       *queue
	channel string
	cost    int
	need    *need
	stage   stage
	tasks   taskHeap
	// members caches the reps in the class's rings (see Router.members).
	members    []*repState
	membersVer uint64
}

// taskHeap orders tasks by effective priority; see taskState.before.
type taskHeap []*taskState

func (h taskHeap) Len() int           { return len(h) }
func (h taskHeap) Less(i, j int) bool { return h[i].before(h[j]) }
func (h taskHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx = i
	h[j].hidx = j
}
func (h *taskHeap) Push(x any) {
	t := x.(*taskState)
	t.hidx = len(*h)
	*h = append(*h, t)
}
func (h *taskHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.hidx = -1
	return t
}

// first returns the first task in order that passes ok, or nil. The head
// almost always passes; the full scan is for tasks a rep declined.
func (h taskHeap) first(ok func(*taskState) bool) *taskState {
	if len(h) == 0 {
		return nil
	}
	if ok(h[0]) {
		return h[0]
	}
	var best *taskState
	for _, t := range h[1:] {
		if ok(t) && (best == nil || t.before(best)) {
			best = t
		}
	}
	return best
}

// timer is a pending deadline: a task's next stage, overflow or offer
// timeout (task set), or the end of a rep's wrap-up (rep set). gen must
// still match the owner's gen, else the timer is stale and ignored.
type timer struct {
	at   time.Time
	seq  uint64
	task *taskState
	rep  *repState
	gen  uint64
}

type timerHeap []timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

func (t timer) live() bool {
	if t.task != nil {
		return t.task.gen == t.gen && !t.task.gone
	}
	return t.rep.wrapGen == t.gen
}

// interner gives names small ids for bitsets.
type interner map[string]int

func (in interner) id(name string) int {
	if id, ok := in[name]; ok {
		return id
	}
	id := len(in)
	in[name] = id
	return id
}

// needKey is the canonical text of a requirement, for sharing needs and
// classes.
func needKey(skills map[string]int, lang string) string {
	names := make([]string, 0, len(skills))
	for s := range skills {
		names = append(names, s)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, s := range names {
		b.WriteString(s)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(max(skills[s], 1)))
		b.WriteByte(',')
	}
	b.WriteByte('|')
	b.WriteString(lang)
	return b.String()
}

func heapRemove(h *taskHeap, t *taskState) {
	if t.hidx >= 0 && t.hidx < len(*h) && (*h)[t.hidx] == t {
		heap.Remove(h, t.hidx)
	}
}
