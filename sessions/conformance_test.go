package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// runConformance checks the guarantees of the Store contract. Every
// implementation's test calls it with a constructor that returns a fresh,
// empty store; the suite closes what it opens.
func runConformance(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"ResolveCreatesOnce", testResolveCreatesOnce},
		{"ResolveConcurrentOneCustomer", testResolveConcurrent},
		{"ResolveRejectsBadIdentity", testResolveRejectsBad},
		{"AppendAssignsGapFreeSeq", testAppendSeq},
		{"AppendIdempotentByExternalID", testAppendIdempotent},
		{"AppendConcurrentSameExternalID", testAppendConcurrentSameExternal},
		{"AppendConcurrentGapFree", testAppendConcurrentGapFree},
		{"AppendRejectsBadInput", testAppendRejects},
		{"TimelinePages", testTimelinePages},
		{"OpenConversationGetOrOpen", testOpenConversation},
		{"OpenConversationConcurrent", testOpenConversationConcurrent},
		{"IntakeOpensWhenNoneActive", testIntakeOpens},
		{"IntakeJoinsActive", testIntakeJoinsActive},
		{"IntakeAfterResolveOpensNew", testIntakeAfterResolve},
		{"IntakeConcurrentOneConversation", testIntakeConcurrent},
		{"IntakeRacingResolve", testIntakeRacingResolve},
		{"IntakeIdempotentByExternalID", testIntakeIdempotent},
		{"IntakeRejectsBadInput", testIntakeRejects},
		{"UpdateConversation", testUpdateConversation},
		{"ReopenConflict", testReopenConflict},
		{"ListConversations", testListConversations},
		{"LinkIdentity", testLinkIdentity},
		{"Merge", testMerge},
		{"FindCustomers", testFindCustomers},
		{"UpdateCustomer", testUpdateCustomer},
		{"SubscribeInOrder", testSubscribe},
		{"FollowResumesExactlyOnce", testFollow},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
}

func phone(n int) Identity {
	return Identity{Kind: IdentityPhone, Value: "+86138" + fmt.Sprintf("%08d", n), Verified: true}
}

// uniquePhone keeps parallel tests on shared backends (one Valkey) apart.
var phoneSeq struct {
	sync.Mutex
	n int
}

func nextPhone() Identity {
	phoneSeq.Lock()
	defer phoneSeq.Unlock()
	phoneSeq.n++
	return phone(int(time.Now().UnixNano()%1e6)*100 + phoneSeq.n%100)
}

func newCustomer(t *testing.T, s Store) Customer {
	t.Helper()
	c, created, err := s.ResolveCustomer(context.Background(), nextPhone(), Customer{Name: "Wang Fang"})
	if err != nil || !created {
		t.Fatalf("ResolveCustomer: created=%v err=%v", created, err)
	}
	return c
}

func msg(customer, ext string) Event {
	p, _ := json.Marshal(Message{Text: "hello " + ext})
	return Event{CustomerID: customer, Kind: KindMessageIn, Channel: ChannelWebchat, ExternalID: ext, Author: "customer", Payload: p}
}

func mustAppend(t *testing.T, s Store, ev Event) Event {
	t.Helper()
	got, _, err := s.Append(context.Background(), ev)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return got
}

func timeline(t *testing.T, s Store, id string) []Event {
	t.Helper()
	var all []Event
	var after uint64
	for {
		page, err := s.Timeline(context.Background(), id, after, 0)
		if err != nil {
			t.Fatalf("Timeline: %v", err)
		}
		all = append(all, page...)
		if len(page) == 0 {
			return all
		}
		after = page[len(page)-1].Seq
	}
}

func checkGapFree(t *testing.T, evs []Event) {
	t.Helper()
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d: timeline has a gap or is out of order", i, ev.Seq)
		}
	}
}

func testResolveCreatesOnce(t *testing.T, s Store) {
	ctx := context.Background()
	id := nextPhone()
	c1, created, err := s.ResolveCustomer(ctx, id, Customer{Name: "Li Lei", Tier: TierB, VIP: true})
	if err != nil || !created {
		t.Fatalf("first resolve: created=%v err=%v", created, err)
	}
	if c1.Name != "Li Lei" || c1.Tier != TierB || !c1.VIP || c1.CreatedAt.IsZero() {
		t.Fatalf("seed not kept: %+v", c1)
	}
	c2, created, err := s.ResolveCustomer(ctx, id, Customer{Name: "Someone Else"})
	if err != nil || created || c2.ID != c1.ID || c2.Name != "Li Lei" {
		t.Fatalf("second resolve: %+v created=%v err=%v", c2, created, err)
	}
	owner, err := s.IdentityOwner(ctx, id)
	if err != nil || owner != c1.ID {
		t.Fatalf("IdentityOwner = %q, %v", owner, err)
	}
	ids, err := s.Identities(ctx, c1.ID)
	if err != nil || len(ids) != 1 || ids[0].Value != id.Value || !ids[0].Verified || ids[0].CustomerID != c1.ID {
		t.Fatalf("Identities = %+v, %v", ids, err)
	}
	if _, err := s.IdentityOwner(ctx, nextPhone()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown identity: %v", err)
	}
	if _, err := s.Customer(ctx, "cus_nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown customer: %v", err)
	}
}

func testResolveConcurrent(t *testing.T, s Store) {
	id := nextPhone()
	var wg sync.WaitGroup
	ids := make([]string, 50)
	creations := make([]bool, 50)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, created, err := s.ResolveCustomer(context.Background(), id, Customer{})
			if err != nil {
				t.Errorf("resolve %d: %v", i, err)
			}
			ids[i], creations[i] = c.ID, created
		}()
	}
	wg.Wait()
	n := 0
	for i := range ids {
		if ids[i] != ids[0] || ids[i] == "" {
			t.Fatalf("goroutine %d got customer %q, goroutine 0 got %q", i, ids[i], ids[0])
		}
		if creations[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d goroutines report creating the customer, want 1", n)
	}
	found, err := s.FindCustomers(context.Background(), CustomerQuery{Phone: id.Value})
	if err != nil || len(found) != 1 {
		t.Fatalf("FindCustomers by phone = %d customers, %v", len(found), err)
	}
}

func testResolveRejectsBad(t *testing.T, s Store) {
	bad := []Identity{
		{Kind: IdentityPhone, Value: "13800000000"},
		{Kind: IdentityEmail, Value: "Not@Lower.com"},
		{Kind: IdentityVisitor, Value: "v1"},
		{Kind: "fax", Value: "1"},
		{Kind: IdentityWeChatUnionID, Value: ""},
	}
	for _, id := range bad {
		if _, _, err := s.ResolveCustomer(context.Background(), id, Customer{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: err = %v, want ErrInvalid", id, err)
		}
	}
}

func testAppendSeq(t *testing.T, s Store) {
	c := newCustomer(t, s)
	for i := 1; i <= 5; i++ {
		ev, appended, err := s.Append(context.Background(), msg(c.ID, ""))
		if err != nil || !appended || ev.Seq != uint64(i) || ev.ID == "" || ev.Time.IsZero() {
			t.Fatalf("append %d: %+v appended=%v err=%v", i, ev, appended, err)
		}
	}
	evs := timeline(t, s, c.ID)
	checkGapFree(t, evs)
	if len(evs) != 5 || string(evs[2].Payload) != string(msg("", "").Payload) {
		t.Fatalf("timeline = %d events, third payload %s", len(evs), evs[2].Payload)
	}
}

func testAppendIdempotent(t *testing.T, s Store) {
	c := newCustomer(t, s)
	first := mustAppend(t, s, msg(c.ID, "wx-1"))
	again, appended, err := s.Append(context.Background(), msg(c.ID, "wx-1"))
	if err != nil || appended || again.Seq != first.Seq || again.ID != first.ID {
		t.Fatalf("retry: %+v appended=%v err=%v; first %+v", again, appended, err, first)
	}
	other := msg(c.ID, "wx-1")
	other.Channel = ChannelSMS
	if ev := mustAppend(t, s, other); ev.Seq != 2 {
		t.Fatalf("same external id on another channel got seq %d, want 2", ev.Seq)
	}
	if n := len(timeline(t, s, c.ID)); n != 2 {
		t.Fatalf("timeline has %d events, want 2", n)
	}
}

func testAppendConcurrentSameExternal(t *testing.T, s Store) {
	c := newCustomer(t, s)
	var wg sync.WaitGroup
	var mu sync.Mutex
	appendedCount := 0
	seqs := map[uint64]bool{}
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev, appended, err := s.Append(context.Background(), msg(c.ID, "msgid-42"))
			if err != nil {
				t.Errorf("append: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			seqs[ev.Seq] = true
			if appended {
				appendedCount++
			}
		}()
	}
	wg.Wait()
	if appendedCount != 1 || len(seqs) != 1 {
		t.Fatalf("%d appends reported, seqs %v; want exactly one event", appendedCount, seqs)
	}
	if n := len(timeline(t, s, c.ID)); n != 1 {
		t.Fatalf("timeline has %d events, want 1", n)
	}
}

func testAppendConcurrentGapFree(t *testing.T, s Store) {
	c := newCustomer(t, s)
	const writers, each = 16, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, _, err := s.Append(context.Background(), msg(c.ID, fmt.Sprintf("w%d-%d", w, i))); err != nil {
					t.Errorf("append: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	evs := timeline(t, s, c.ID)
	if len(evs) != writers*each {
		t.Fatalf("timeline has %d events, want %d", len(evs), writers*each)
	}
	checkGapFree(t, evs)
	seen := map[string]bool{}
	for _, ev := range evs {
		if seen[ev.ExternalID] {
			t.Fatalf("external id %s appended twice", ev.ExternalID)
		}
		seen[ev.ExternalID] = true
	}
}

func testAppendRejects(t *testing.T, s Store) {
	ctx := context.Background()
	c := newCustomer(t, s)
	other := newCustomer(t, s)
	cv, _, err := s.OpenConversation(ctx, other.ID, "", ChannelSMS)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ev   Event
		want error
	}{
		{"unknown customer", msg("cus_missing", ""), ErrNotFound},
		{"no kind", Event{CustomerID: c.ID, Channel: ChannelSMS}, ErrInvalid},
		{"no channel", Event{CustomerID: c.ID, Kind: KindNote}, ErrInvalid},
		{"payload not JSON", Event{CustomerID: c.ID, Kind: KindNote, Channel: ChannelAPI, Payload: json.RawMessage("{nope")}, ErrInvalid},
		{"payload too large", Event{CustomerID: c.ID, Kind: KindNote, Channel: ChannelAPI, Payload: json.RawMessage(`"` + string(make([]byte, MaxPayload)) + `"`)}, ErrInvalid},
		{"someone else's conversation", Event{CustomerID: c.ID, Kind: KindNote, Channel: ChannelAPI, ConversationID: cv.ID}, ErrInvalid},
		{"unknown conversation", Event{CustomerID: c.ID, Kind: KindNote, Channel: ChannelAPI, ConversationID: "cnv_missing"}, ErrInvalid},
	}
	for _, tc := range cases {
		if _, _, err := s.Append(ctx, tc.ev); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if n := len(timeline(t, s, c.ID)); n != 0 {
		t.Fatalf("rejected appends wrote %d events", n)
	}
	if n := len(timeline(t, s, other.ID)); n != 1 {
		t.Fatalf("other customer's timeline has %d events, want only the opening", n)
	}
}

func testTimelinePages(t *testing.T, s Store) {
	c := newCustomer(t, s)
	for range 25 {
		mustAppend(t, s, msg(c.ID, ""))
	}
	page, err := s.Timeline(context.Background(), c.ID, 10, 7)
	if err != nil || len(page) != 7 || page[0].Seq != 11 || page[6].Seq != 17 {
		t.Fatalf("Timeline(after 10, limit 7) = %d events from %v, %v", len(page), page, err)
	}
	if last, err := s.LastSeq(context.Background(), c.ID); err != nil || last != 25 {
		t.Fatalf("LastSeq = %d, %v; want 25", last, err)
	}
	if last, err := s.LastSeq(context.Background(), newCustomer(t, s).ID); err != nil || last != 0 {
		t.Fatalf("LastSeq of an empty timeline = %d, %v", last, err)
	}
	if _, err := s.LastSeq(context.Background(), "cus_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LastSeq of unknown customer: %v", err)
	}
	page, err = s.Timeline(context.Background(), c.ID, 25, 10)
	if err != nil || len(page) != 0 {
		t.Fatalf("Timeline after the end = %d events, %v", len(page), err)
	}
	if _, err := s.Timeline(context.Background(), "cus_missing", 0, 10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown customer: %v", err)
	}
}

func testOpenConversation(t *testing.T, s Store) {
	ctx := context.Background()
	c := newCustomer(t, s)
	cv, created, err := s.OpenConversation(ctx, c.ID, "order-1001", ChannelWeChat)
	if err != nil || !created || cv.Status != StatusOpen || cv.Channel != ChannelWeChat || cv.Topic != "order-1001" || cv.CustomerID != c.ID {
		t.Fatalf("open: %+v created=%v err=%v", cv, created, err)
	}
	again, created, err := s.OpenConversation(ctx, c.ID, "order-1001", ChannelSMS)
	if err != nil || created || again.ID != cv.ID {
		t.Fatalf("same topic on another channel: %+v created=%v err=%v", again, created, err)
	}
	general, created, err := s.OpenConversation(ctx, c.ID, "", ChannelSMS)
	if err != nil || !created || general.ID == cv.ID {
		t.Fatalf("other topic: %+v created=%v err=%v", general, created, err)
	}
	evs := timeline(t, s, c.ID)
	if len(evs) != 2 || evs[0].Kind != KindStatusChange || evs[0].ConversationID != cv.ID {
		t.Fatalf("opening events = %+v", evs)
	}
	ev := mustAppend(t, s, Event{CustomerID: c.ID, ConversationID: cv.ID, Kind: KindMessageIn, Channel: ChannelSMS})
	got, err := s.Conversation(ctx, cv.ID)
	if err != nil || got.LastSeq != ev.Seq || got.UpdatedAt.Before(cv.UpdatedAt) {
		t.Fatalf("conversation after append: %+v, %v (event seq %d)", got, err, ev.Seq)
	}
	if _, _, err := s.OpenConversation(ctx, "cus_missing", "", ChannelSMS); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown customer: %v", err)
	}
	if _, _, err := s.OpenConversation(ctx, c.ID, "x", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no channel: %v", err)
	}
	if _, err := s.Conversation(ctx, "cnv_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown conversation: %v", err)
	}
}

func testOpenConversationConcurrent(t *testing.T, s Store) {
	c := newCustomer(t, s)
	var wg sync.WaitGroup
	ids := make([]string, 20)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cv, _, err := s.OpenConversation(context.Background(), c.ID, "complaint", ChannelVoice)
			if err != nil {
				t.Errorf("open: %v", err)
			}
			ids[i] = cv.ID
		}()
	}
	wg.Wait()
	for i := range ids {
		if ids[i] != ids[0] {
			t.Fatalf("two conversations for one topic: %s and %s", ids[0], ids[i])
		}
	}
	if n := len(timeline(t, s, c.ID)); n != 1 {
		t.Fatalf("%d opening events, want 1", n)
	}
}

func testUpdateConversation(t *testing.T, s Store) {
	ctx := context.Background()
	c := newCustomer(t, s)
	cv, _, _ := s.OpenConversation(ctx, c.ID, "", ChannelWebchat)
	alice := "alice"
	why := json.RawMessage(`{"ring":"owner"}`)
	got, ev, err := s.UpdateConversation(ctx, cv.ID, ConversationUpdate{Assignee: &alice, Event: Event{Author: "router", Payload: why}})
	if err != nil || got.Assignee != "alice" || ev.Kind != KindAssignment || ev.Seq != 2 || ev.ConversationID != cv.ID || string(ev.Payload) != string(why) {
		t.Fatalf("assign: %+v %+v %v", got, ev, err)
	}
	resolved := StatusResolved
	got, ev, err = s.UpdateConversation(ctx, cv.ID, ConversationUpdate{Status: &resolved, Event: Event{Author: "rep:alice"}})
	if err != nil || got.Status != StatusResolved || got.ResolvedAt.IsZero() || ev.Kind != KindStatusChange || ev.Author != "rep:alice" {
		t.Fatalf("resolve: %+v %+v %v", got, ev, err)
	}
	stored, _ := s.Conversation(ctx, cv.ID)
	if stored.Status != StatusResolved || stored.Assignee != "alice" || stored.LastSeq != ev.Seq {
		t.Fatalf("stored: %+v", stored)
	}
	bogus := ConversationStatus("closed")
	if _, _, err := s.UpdateConversation(ctx, cv.ID, ConversationUpdate{Status: &bogus}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad status: %v", err)
	}
	if _, _, err := s.UpdateConversation(ctx, cv.ID, ConversationUpdate{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty update: %v", err)
	}
	if _, _, err := s.UpdateConversation(ctx, "cnv_missing", ConversationUpdate{Assignee: &alice}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if n := len(timeline(t, s, c.ID)); n != 3 {
		t.Fatalf("timeline has %d events, want 3 (open, assign, resolve)", n)
	}
	// A resolved conversation no longer holds the topic.
	next, created, err := s.OpenConversation(ctx, c.ID, "", ChannelSMS)
	if err != nil || !created || next.ID == cv.ID {
		t.Fatalf("open after resolve: %+v created=%v err=%v", next, created, err)
	}
}

func testReopenConflict(t *testing.T, s Store) {
	ctx := context.Background()
	c := newCustomer(t, s)
	first, _, _ := s.OpenConversation(ctx, c.ID, "t", ChannelSMS)
	resolved, open := StatusResolved, StatusOpen
	if _, _, err := s.UpdateConversation(ctx, first.ID, ConversationUpdate{Status: &resolved}); err != nil {
		t.Fatal(err)
	}
	second, _, _ := s.OpenConversation(ctx, c.ID, "t", ChannelSMS)
	before := len(timeline(t, s, c.ID))
	if _, _, err := s.UpdateConversation(ctx, first.ID, ConversationUpdate{Status: &open}); !errors.Is(err, ErrConflict) {
		t.Fatalf("reopen with another active on the topic: %v", err)
	}
	if after := len(timeline(t, s, c.ID)); after != before {
		t.Fatalf("refused reopen wrote %d events", after-before)
	}
	if _, _, err := s.UpdateConversation(ctx, second.ID, ConversationUpdate{Status: &resolved}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.UpdateConversation(ctx, first.ID, ConversationUpdate{Status: &open}); err != nil || got.Status != StatusOpen || !got.ResolvedAt.IsZero() {
		t.Fatalf("reopen: %+v %v", got, err)
	}
}

func testListConversations(t *testing.T, s Store) {
	ctx := context.Background()
	c := newCustomer(t, s)
	var ids []string
	for i := range 7 {
		ch := ChannelSMS
		if i%2 == 0 {
			ch = ChannelWeChat
		}
		cv, _, err := s.OpenConversation(ctx, c.ID, "topic-"+strconv.Itoa(i), ch)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cv.ID)
		time.Sleep(2 * time.Millisecond) // ids sort by millisecond
	}
	bob := "bob"
	if _, _, err := s.UpdateConversation(ctx, ids[1], ConversationUpdate{Assignee: &bob}); err != nil {
		t.Fatal(err)
	}
	resolved := StatusResolved
	if _, _, err := s.UpdateConversation(ctx, ids[2], ConversationUpdate{Status: &resolved}); err != nil {
		t.Fatal(err)
	}
	list := func(q ConversationQuery) []string {
		q.CustomerID = c.ID
		var out []string
		for {
			page, next, err := s.Conversations(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, cv := range page {
				out = append(out, cv.ID)
			}
			if next == "" {
				return out
			}
			q.Cursor = next
		}
	}
	all := list(ConversationQuery{Limit: 3})
	if fmt.Sprint(all) != fmt.Sprint([]string{ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}) {
		t.Fatalf("paged list = %v, want newest first %v", all, ids)
	}
	if got := list(ConversationQuery{Assignee: "bob"}); fmt.Sprint(got) != fmt.Sprint([]string{ids[1]}) {
		t.Fatalf("assignee bob = %v", got)
	}
	if got := list(ConversationQuery{Status: StatusResolved}); fmt.Sprint(got) != fmt.Sprint([]string{ids[2]}) {
		t.Fatalf("resolved = %v", got)
	}
	if got := list(ConversationQuery{Channel: ChannelWeChat, Status: StatusOpen}); fmt.Sprint(got) != fmt.Sprint([]string{ids[6], ids[4], ids[0]}) {
		t.Fatalf("open wechat = %v", got)
	}
	if got := list(ConversationQuery{Unassigned: true, Status: StatusOpen}); len(got) != 5 {
		t.Fatalf("open unassigned = %v, want 5", got)
	}
}

func testLinkIdentity(t *testing.T, s Store) {
	ctx := context.Background()
	c := newCustomer(t, s)
	email := Identity{Kind: IdentityEmail, Value: "fang@example.com"}
	ev, appended, err := s.LinkIdentity(ctx, c.ID, email, "customer")
	if err != nil || !appended || ev.Kind != KindIdentityLinked || ev.Seq != 1 {
		t.Fatalf("link: %+v appended=%v err=%v", ev, appended, err)
	}
	if _, appended, err := s.LinkIdentity(ctx, c.ID, email, "customer"); err != nil || appended {
		t.Fatalf("relink: appended=%v err=%v", appended, err)
	}
	email.Verified = true
	if _, _, err := s.LinkIdentity(ctx, c.ID, email, "system"); err != nil {
		t.Fatal(err)
	}
	ids, _ := s.Identities(ctx, c.ID)
	verified := false
	for _, id := range ids {
		if id.Kind == IdentityEmail {
			verified = id.Verified
		}
	}
	if len(ids) != 2 || !verified {
		t.Fatalf("identities after verifying the email: %+v", ids)
	}
	other := newCustomer(t, s)
	if _, _, err := s.LinkIdentity(ctx, other.ID, email, "customer"); !errors.Is(err, ErrIdentityTaken) {
		t.Fatalf("linking another customer's identity: %v", err)
	}
	if n := len(timeline(t, s, other.ID)); n != 0 {
		t.Fatalf("refused link wrote %d events", n)
	}
}

func testMerge(t *testing.T, s Store) {
	ctx := context.Background()
	into := newCustomer(t, s)
	from := newCustomer(t, s)
	union := Identity{Kind: IdentityWeChatUnionID, Value: "union-" + from.ID, Verified: true}
	if _, _, err := s.LinkIdentity(ctx, from.ID, union, "system"); err != nil {
		t.Fatal(err)
	}
	keep, _, _ := s.OpenConversation(ctx, into.ID, "order-7", ChannelSMS)
	dup, _, _ := s.OpenConversation(ctx, from.ID, "order-7", ChannelWeChat)
	moved, _, _ := s.OpenConversation(ctx, from.ID, "billing", ChannelWeChat)
	mustAppend(t, s, msg(from.ID, "wx-77"))
	mustAppend(t, s, msg(into.ID, "web-1"))
	fromEvents := timeline(t, s, from.ID)
	intoBefore := len(timeline(t, s, into.ID))

	if _, err := s.Merge(ctx, into.ID, into.ID, "x", "admin:root"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("self merge: %v", err)
	}
	merged, err := s.Merge(ctx, into.ID, from.ID, "wechat_unionid", "system")
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	var m Merge
	if err := json.Unmarshal(merged.Payload, &m); err != nil || merged.Kind != KindMerged || m.From != from.ID ||
		m.Into != into.ID || m.Evidence != "wechat_unionid" || m.Copied != len(fromEvents) || m.FirstSeq != merged.Seq+1 {
		t.Fatalf("merge event %+v payload %+v %v", merged, m, err)
	}
	tl := timeline(t, s, into.ID)
	checkGapFree(t, tl)
	// merge event, the copies, then the duplicate topic resolved.
	if len(tl) != intoBefore+1+len(fromEvents)+1 {
		t.Fatalf("into timeline has %d events, want %d", len(tl), intoBefore+1+len(fromEvents)+1)
	}
	for i, orig := range fromEvents {
		cp := tl[intoBefore+1+i]
		if cp.Origin != from.ID+"/"+strconv.FormatUint(orig.Seq, 10) || cp.Kind != orig.Kind ||
			string(cp.Payload) != string(orig.Payload) || cp.ExternalID != orig.ExternalID || cp.CustomerID != into.ID {
			t.Fatalf("copy %d = %+v of %+v", i, cp, orig)
		}
	}
	// From's own timeline is kept as it was.
	if got := timeline(t, s, from.ID); len(got) != len(fromEvents) {
		t.Fatalf("from's timeline now has %d events, had %d", len(got), len(fromEvents))
	}
	if owner, _ := s.IdentityOwner(ctx, union); owner != into.ID {
		t.Fatalf("union id owned by %s after merge", owner)
	}
	if cv, _ := s.Conversation(ctx, moved.ID); cv.CustomerID != into.ID || cv.Status != StatusOpen {
		t.Fatalf("moved conversation = %+v", cv)
	}
	// A moved conversation's LastSeq is in into's numbering: its last copy,
	// then whatever is appended to it after the merge.
	var lastCopy uint64
	for _, ev := range tl {
		if ev.ConversationID == moved.ID {
			lastCopy = ev.Seq
		}
	}
	if cv, _ := s.Conversation(ctx, moved.ID); lastCopy == 0 || cv.LastSeq != lastCopy {
		t.Fatalf("moved conversation LastSeq = %d, its last copy is seq %d", cv.LastSeq, lastCopy)
	}
	after := msg(into.ID, "after-merge")
	after.ConversationID = moved.ID
	ev := mustAppend(t, s, after)
	if cv, _ := s.Conversation(ctx, moved.ID); cv.LastSeq != ev.Seq {
		t.Fatalf("moved conversation LastSeq = %d after an append at %d", cv.LastSeq, ev.Seq)
	}
	if cv, _ := s.Conversation(ctx, dup.ID); cv.CustomerID != into.ID || cv.Status != StatusResolved {
		t.Fatalf("duplicate topic conversation = %+v", cv)
	}
	if cv, _, _ := s.OpenConversation(ctx, into.ID, "order-7", ChannelSMS); cv.ID != keep.ID {
		t.Fatalf("topic order-7 now opens %s, want %s", cv.ID, keep.ID)
	}
	old, _ := s.Customer(ctx, from.ID)
	if old.MergedInto != into.ID {
		t.Fatalf("from.MergedInto = %q", old.MergedInto)
	}
	if _, _, err := s.Append(ctx, msg(from.ID, "late")); !errors.Is(err, ErrMerged) {
		t.Fatalf("append to merged customer: %v", err)
	}
	// A retry of an input the merged customer already had is still a retry.
	if _, appended, err := s.Append(ctx, msg(into.ID, "wx-77")); err != nil || appended {
		t.Fatalf("retry of pre-merge input: appended=%v err=%v", appended, err)
	}
	if _, err := s.Merge(ctx, into.ID, from.ID, "again", "system"); !errors.Is(err, ErrMerged) {
		t.Fatalf("second merge: %v", err)
	}
}

func testFindCustomers(t *testing.T, s Store) {
	ctx := context.Background()
	p := nextPhone()
	tag := "tag" + p.Value[1:]
	c, _, _ := s.ResolveCustomer(ctx, p, Customer{Name: "Zhang Xiaoming " + p.Value, Tags: []string{"vip", tag}})
	email := Identity{Kind: IdentityEmail, Value: "xm" + p.Value[1:] + "@example.com"}
	if _, _, err := s.LinkIdentity(ctx, c.ID, email, "customer"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []CustomerQuery{{Phone: p.Value}, {Email: email.Value}, {Name: "xiaoming " + p.Value}, {Phone: p.Value, Name: "zhang"},
		{Tag: strings.ToUpper(tag)}, {Email: email.Value, Tag: tag}} {
		got, err := s.FindCustomers(ctx, q)
		if err != nil || len(got) != 1 || got[0].ID != c.ID {
			t.Errorf("%+v: %v %v", q, got, err)
		}
	}
	if got, err := s.FindCustomers(ctx, CustomerQuery{Phone: p.Value, Tag: "nope"}); err != nil || len(got) != 0 {
		t.Errorf("tag it lacks: %v %v", got, err)
	}
	if got, err := s.FindCustomers(ctx, CustomerQuery{Phone: p.Value, Name: "nobody"}); err != nil || len(got) != 0 {
		t.Errorf("contradictory query: %v %v", got, err)
	}
	if _, err := s.FindCustomers(ctx, CustomerQuery{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty query: %v", err)
	}
}

func testUpdateCustomer(t *testing.T, s Store) {
	ctx := context.Background()
	c := newCustomer(t, s)
	tier, vip, owner, tags := TierA, true, "alice", []string{"gold", "wine"}
	before := len(timeline(t, s, c.ID))
	u := CustomerUpdate{Tier: &tier, VIP: &vip, Owner: &owner, Tags: &tags, Attributes: map[string]string{"city": "Shanghai"}, Author: "admin:ops"}
	got, err := s.UpdateCustomer(ctx, c.ID, u)
	if err != nil || got.Tier != TierA || !got.VIP || got.Owner != "alice" || len(got.Tags) != 2 || got.Attributes["city"] != "Shanghai" {
		t.Fatalf("update: %+v %v", got, err)
	}
	read, _ := s.Customer(ctx, c.ID)
	if read.Tier != TierA || read.Owner != "alice" || read.Attributes["city"] != "Shanghai" || read.Name != c.Name {
		t.Fatalf("read back: %+v", read)
	}
	// The change is on the timeline, in the same write: who, what, from
	// what to what.
	tl := timeline(t, s, c.ID)
	if len(tl) != before+1 {
		t.Fatalf("%d events after the update, want %d", len(tl), before+1)
	}
	ev := tl[len(tl)-1]
	var pc struct {
		Changes map[string]struct{ From, To any }
	}
	if err := json.Unmarshal(ev.Payload, &pc); err != nil || ev.Kind != KindProfileChanged || ev.Author != "admin:ops" ||
		len(pc.Changes) != 5 || pc.Changes["tier"].From != "" || pc.Changes["tier"].To != "A" || pc.Changes["vip"].To != true ||
		pc.Changes["owner"].To != "alice" || pc.Changes["attributes.city"].To != "Shanghai" {
		t.Fatalf("profile change event %+v payload %+v %v", ev, pc, err)
	}
	// The same values again change nothing, so nothing is recorded.
	if _, err := s.UpdateCustomer(ctx, c.ID, u); err != nil {
		t.Fatal(err)
	}
	if n := len(timeline(t, s, c.ID)); n != before+1 {
		t.Fatalf("an update that changed nothing added %d events", n-before-1)
	}
	bad := Tier("Z")
	if _, err := s.UpdateCustomer(ctx, c.ID, CustomerUpdate{Tier: &bad, VIP: &vip}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad tier: %v", err)
	}
	zone := "Mars/Olympus"
	if _, err := s.UpdateCustomer(ctx, c.ID, CustomerUpdate{TimeZone: &zone}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad zone: %v", err)
	}
	if _, err := s.UpdateCustomer(ctx, "cus_missing", CustomerUpdate{VIP: &vip}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}

func testSubscribe(t *testing.T, s Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := s.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	c := newCustomer(t, s)
	for i := range 20 {
		mustAppend(t, s, msg(c.ID, strconv.Itoa(i)))
	}
	mustAppend(t, s, msg(c.ID, "3")) // a retry is not published again
	mustAppend(t, s, msg(c.ID, "last"))
	var want uint64 = 1
	for want <= 21 {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				t.Fatalf("subscription ended: %v", sub.Err())
			}
			if ev.CustomerID != c.ID {
				continue // other parallel tests share a Valkey feed
			}
			if ev.Seq != want {
				t.Fatalf("got seq %d, want %d", ev.Seq, want)
			}
			want++
		case <-ctx.Done():
			t.Fatalf("waiting for seq %d: %v", want, ctx.Err())
		}
	}
	sub.Close()
	if _, ok := <-sub.Events(); ok {
		// drain what was buffered before Close
		for range sub.Events() {
		}
	}
	if !errors.Is(sub.Err(), context.Canceled) {
		t.Fatalf("closed subscription Err = %v", sub.Err())
	}
}

func testFollow(t *testing.T, s Store) {
	c := newCustomer(t, s)
	for i := range 10 {
		mustAppend(t, s, msg(c.ID, "pre-"+strconv.Itoa(i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fan, err := NewFanout(s)
	if err != nil {
		t.Fatal(err)
	}
	defer fan.Close()
	got := make(chan Event, 100)
	done := make(chan error, 1)
	go func() {
		done <- Follow(ctx, s, fan, c.ID, 4, func(ev Event) error {
			got <- ev
			if ev.Seq == 30 {
				return errStop
			}
			return nil
		})
	}()
	for i := range 20 {
		mustAppend(t, s, msg(c.ID, "live-"+strconv.Itoa(i)))
	}
	if err := <-done; !errors.Is(err, errStop) {
		t.Fatalf("Follow: %v", err)
	}
	close(got)
	want := uint64(5)
	for ev := range got {
		if ev.Seq != want {
			t.Fatalf("Follow delivered seq %d, want %d", ev.Seq, want)
		}
		want++
	}
	if want != 31 {
		t.Fatalf("Follow delivered up to %d, want 30", want-1)
	}
}

var errStop = errors.New("stop")

func testClosed(t *testing.T, s Store) {
	c := newCustomer(t, s)
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, _, err := s.Append(context.Background(), msg(c.ID, "")); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}

func mustIntake(t *testing.T, s Store, topic string, ev Event) (Conversation, Event) {
	t.Helper()
	cv, stored, appended, err := s.Intake(context.Background(), topic, ev)
	if err != nil || !appended {
		t.Fatalf("Intake: appended=%v err=%v", appended, err)
	}
	if stored.ConversationID != cv.ID || cv.LastSeq != stored.Seq || !cv.Status.Active() || cv.Topic != topic {
		t.Fatalf("Intake returned %+v in %+v", stored, cv)
	}
	return cv, stored
}

func resolve(t *testing.T, s Store, id string) Event {
	t.Helper()
	resolved := StatusResolved
	_, ev, err := s.UpdateConversation(context.Background(), id, ConversationUpdate{Status: &resolved, Event: Event{Author: "rep:alice"}})
	if err != nil {
		t.Fatalf("resolve %s: %v", id, err)
	}
	return ev
}

func testIntakeOpens(t *testing.T, s Store) {
	ctx := context.Background()
	c := newCustomer(t, s)
	in := msg(c.ID, "m1")
	in.Channel = ChannelSMS
	cv, stored := mustIntake(t, s, "order-9", in)
	if cv.CustomerID != c.ID || cv.Channel != ChannelSMS || cv.Status != StatusOpen || stored.Kind != KindMessageIn || stored.ExternalID != "m1" {
		t.Fatalf("opened %+v with %+v", cv, stored)
	}
	evs := timeline(t, s, c.ID)
	checkGapFree(t, evs)
	if len(evs) != 2 {
		t.Fatalf("timeline has %d events, want the opening and the message", len(evs))
	}
	var change ConversationChange
	open := evs[0]
	if err := json.Unmarshal(open.Payload, &change); err != nil || open.Kind != KindStatusChange || open.ConversationID != cv.ID ||
		open.Author != ChannelSystem || open.Channel != ChannelSMS || change.Status != StatusOpen {
		t.Fatalf("opening event %+v (%v)", open, err)
	}
	if evs[1].ID != stored.ID || evs[1].ConversationID != cv.ID {
		t.Fatalf("stored %+v, timeline has %+v", stored, evs[1])
	}
	got, err := s.Conversation(ctx, cv.ID)
	if err != nil || got.LastSeq != stored.Seq || got.Status != StatusOpen || got.Topic != "order-9" {
		t.Fatalf("stored conversation %+v, %v", got, err)
	}
}

func testIntakeJoinsActive(t *testing.T, s Store) {
	ctx := context.Background()
	c := newCustomer(t, s)
	opened, _, err := s.OpenConversation(ctx, c.ID, "", ChannelWebchat)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := mustIntake(t, s, "", msg(c.ID, "m1"))
	in := msg(c.ID, "m2")
	in.Channel = ChannelSMS // another channel joins the same work
	second, ev := mustIntake(t, s, "", in)
	if first.ID != opened.ID || second.ID != opened.ID || second.Channel != ChannelWebchat {
		t.Fatalf("opened %s, intakes went to %s and %+v", opened.ID, first.ID, second)
	}
	other, _ := mustIntake(t, s, "refund", msg(c.ID, "m3"))
	if other.ID == opened.ID {
		t.Fatal("another topic joined the general conversation")
	}
	evs := timeline(t, s, c.ID)
	checkGapFree(t, evs)
	if len(evs) != 5 { // open, m1, m2, open refund, m3
		t.Fatalf("timeline has %d events, want 5", len(evs))
	}
	if got, _ := s.Conversation(ctx, opened.ID); got.LastSeq != ev.Seq {
		t.Fatalf("general conversation's last seq %d, want %d", got.LastSeq, ev.Seq)
	}
}

func testIntakeAfterResolve(t *testing.T, s Store) {
	ctx := context.Background()
	c := newCustomer(t, s)
	first, _ := mustIntake(t, s, "", msg(c.ID, "m1"))
	done := resolve(t, s, first.ID)
	next, ev := mustIntake(t, s, "", msg(c.ID, "m2"))
	if next.ID == first.ID || ev.ConversationID != next.ID {
		t.Fatalf("message after the resolution went to %s (resolved %s)", ev.ConversationID, first.ID)
	}
	if got, _ := s.Conversation(ctx, first.ID); got.Status != StatusResolved || got.LastSeq != done.Seq {
		t.Fatalf("resolved conversation changed: %+v", got)
	}
	checkGapFree(t, timeline(t, s, c.ID))
}

func testIntakeConcurrent(t *testing.T, s Store) {
	c := newCustomer(t, s)
	const writers = 50
	ids := make([]string, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			cv, _, _, err := s.Intake(context.Background(), "complaint", msg(c.ID, "m"+strconv.Itoa(i)))
			if err != nil {
				t.Errorf("intake: %v", err)
			}
			ids[i] = cv.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("two conversations for one topic: %s and %s", ids[0], id)
		}
	}
	evs := timeline(t, s, c.ID)
	checkGapFree(t, evs)
	opens := 0
	for _, ev := range evs {
		if ev.Kind == KindStatusChange {
			opens++
		}
		if ev.ConversationID != ids[0] {
			t.Fatalf("event %d is in %q, want %s", ev.Seq, ev.ConversationID, ids[0])
		}
	}
	if opens != 1 || len(evs) != writers+1 {
		t.Fatalf("%d opening events and %d events, want 1 and %d", opens, len(evs), writers+1)
	}
}

// testIntakeRacingResolve resolves each conversation as soon as an intake
// reports it, while intakes go on: no message may land in a conversation
// after its resolution.
func testIntakeRacingResolve(t *testing.T, s Store) {
	ctx := context.Background()
	c := newCustomer(t, s)
	const writers, each = 8, 15
	convs := make(chan string, writers*each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				cv, _, _, err := s.Intake(ctx, "", msg(c.ID, fmt.Sprintf("w%d-%d", w, i)))
				if err != nil {
					t.Errorf("intake: %v", err)
					return
				}
				convs <- cv.ID
			}
		})
	}
	resolved := map[string]bool{}
	resolver := make(chan struct{})
	go func() {
		defer close(resolver)
		for id := range convs {
			if !resolved[id] {
				resolved[id] = true
				resolve(t, s, id)
			}
		}
	}()
	wg.Wait()
	close(convs)
	<-resolver

	evs := timeline(t, s, c.ID)
	checkGapFree(t, evs)
	closed := map[string]uint64{} // conversation -> seq of its resolution
	messages := 0
	for _, ev := range evs {
		switch ev.Kind {
		case KindStatusChange:
			var change ConversationChange
			if err := json.Unmarshal(ev.Payload, &change); err != nil {
				t.Fatal(err)
			}
			if change.Status == StatusResolved {
				closed[ev.ConversationID] = ev.Seq
			}
		case KindMessageIn:
			messages++
			if ev.ConversationID == "" {
				t.Fatalf("message %d in no conversation", ev.Seq)
			}
			if at, ok := closed[ev.ConversationID]; ok {
				t.Fatalf("message %d appended to %s after its resolution at %d", ev.Seq, ev.ConversationID, at)
			}
		}
	}
	if messages != writers*each {
		t.Fatalf("%d messages, want %d", messages, writers*each)
	}
	active, _, err := s.Conversations(ctx, ConversationQuery{CustomerID: c.ID, Status: StatusOpen})
	if err != nil || len(active) > 1 {
		t.Fatalf("%d open conversations on one topic (%v)", len(active), err)
	}
}

func testIntakeIdempotent(t *testing.T, s Store) {
	ctx := context.Background()
	c := newCustomer(t, s)
	cv, first := mustIntake(t, s, "", msg(c.ID, "m1"))
	check := func(when string, wantStatus ConversationStatus) {
		t.Helper()
		before := len(timeline(t, s, c.ID))
		got, again, appended, err := s.Intake(ctx, "", msg(c.ID, "m1"))
		if err != nil || appended || again.ID != first.ID || again.Seq != first.Seq || got.ID != cv.ID || got.Status != wantStatus {
			t.Fatalf("retry %s: %+v in %+v appended=%v err=%v", when, again, got, appended, err)
		}
		if after := len(timeline(t, s, c.ID)); after != before {
			t.Fatalf("retry %s wrote %d events", when, after-before)
		}
	}
	check("while open", StatusOpen)
	resolve(t, s, cv.ID)
	check("after the resolution", StatusResolved)
	if list, _, _ := s.Conversations(ctx, ConversationQuery{CustomerID: c.ID}); len(list) != 1 {
		t.Fatalf("retries opened conversations: %+v", list)
	}

	// An external id stored outside any conversation is returned as it is.
	loose := mustAppend(t, s, msg(c.ID, "m2"))
	got, again, appended, err := s.Intake(ctx, "", msg(c.ID, "m2"))
	if err != nil || appended || again.ID != loose.ID || got.ID != "" {
		t.Fatalf("retry of an event in no conversation: %+v in %+v appended=%v err=%v", again, got, appended, err)
	}
	if list, _, _ := s.Conversations(ctx, ConversationQuery{CustomerID: c.ID}); len(list) != 1 {
		t.Fatalf("a retry opened a conversation: %+v", list)
	}
}

func testIntakeRejects(t *testing.T, s Store) {
	ctx := context.Background()
	c := newCustomer(t, s)
	cv, _, _ := s.OpenConversation(ctx, c.ID, "", ChannelSMS)
	into, from := newCustomer(t, s), newCustomer(t, s)
	if _, err := s.Merge(ctx, into.ID, from.ID, "admin:root", "admin:root"); err != nil {
		t.Fatal(err)
	}
	named := msg(c.ID, "")
	named.ConversationID = cv.ID
	noChannel := msg(c.ID, "")
	noChannel.Channel = ""
	cases := []struct {
		name  string
		topic string
		ev    Event
		want  error
	}{
		{"names a conversation", "", named, ErrInvalid},
		{"unknown customer", "", msg("cus_missing", ""), ErrNotFound},
		{"merged customer", "", msg(from.ID, "m1"), ErrMerged},
		{"no kind", "", Event{CustomerID: c.ID, Channel: ChannelSMS}, ErrInvalid},
		{"no channel", "", noChannel, ErrInvalid},
		{"topic with a control character", "a|b", msg(c.ID, ""), ErrInvalid},
		{"topic too long", string(make([]byte, MaxTopic+1)), msg(c.ID, ""), ErrInvalid},
	}
	lens := map[string]int{}
	for _, id := range []string{c.ID, into.ID, from.ID} {
		lens[id] = len(timeline(t, s, id))
	}
	for _, tc := range cases {
		if _, _, _, err := s.Intake(ctx, tc.topic, tc.ev); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	for id, n := range lens {
		if got := len(timeline(t, s, id)); got != n {
			t.Fatalf("refused intakes wrote %d events for %s", got-n, id)
		}
	}
	for _, id := range []string{c.ID, into.ID, from.ID} {
		if list, _, _ := s.Conversations(ctx, ConversationQuery{CustomerID: id}); len(list) > 1 || (id != c.ID && len(list) != 0) {
			t.Fatalf("refused intakes opened conversations for %s: %+v", id, list)
		}
	}
}
