package sessions

// ValkeyStore keeps everything in Valkey (or Redis 7, which speaks the same
// protocol) so several gateway nodes share one state, standalone or on
// Valkey Cluster.
//
// Key layout. P is ValkeyOptions.KeyPrefix; T is the customer's hash tag
// {c:<customer id>}, so all of one customer's keys live in one cluster slot
// and every per-customer write is one Lua script (valkey_scripts.go):
//
//	P:T:cus        hash: doc (Customer JSON, MergedInto left out), seq (last
//	               sequence), rev (doc version), merged and merged_at (set
//	               when merged away), merge_done
//	P:T:tl         stream: the timeline; entry id <seq>-0, field e = event JSON
//	P:T:dedup      hash: <channel>|<external id> -> seq
//	P:T:ids        hash: identity key -> Identity JSON
//	P:T:topics     hash: topic -> id of the customer's active conversation
//	P:T:convs      sorted set, by id: the customer's conversations
//	P:T:cv:<id>    hash: one conversation (convHashFields)
//	P:T:merges     hash: id of a customer merged in -> seq of its
//	               customers_merged event
//
// Global keys, each written with a single-key atomic command:
//
//	P:id:<identity key>  string: the owning customer id; SET NX is what
//	                     makes an identity belong to one customer
//	P:cv:<id>            string: the conversation's customer id
//	P:cus                sorted set, by id: customers, for name search (see list)
//	P:cvx:all, P:cvx:st:<status>, P:cvx:as:<assignee> ("" is unassigned),
//	P:cvx:ch:<channel>   sorted sets, by id: conversations, for listing
//	P:events             pub/sub channel: every appended event's JSON
//
// The global listing sets cannot be written by the per-customer scripts
// (another slot), so they are candidate lists, not the truth: a conversation
// is added to the sets of its new values before the script that gives it
// those values, removed from the sets of values it left after, and readers
// load each candidate and filter it with ConversationQuery.Matches. A crash
// between the steps leaves an extra candidate, never a missing one; see
// settle for concurrent writers. P:cv:<id> is likewise written before the
// conversation exists, and readers skip pointers that lead nowhere.
//
// Merge spans two customers, so two slots; it runs as steps, each atomic on
// one slot and safe to run again:
//
//  1. on from: mark it merged into into; from takes no more writes (ErrMerged)
//  2. on into: the customers_merged event, the copies of from's events,
//     from's identities and conversations, resolving clashing topics; done
//     at most once, recorded under P:T:merges
//  3. global pointers: identities and conversations re-pointed to into
//  4. on from: drop what moved and mark the merge done
//
// If a step fails, Merge returns the error and calling it again with the
// same customers resumes where it stopped (a merge that finished gives
// ErrMerged, as it should). Until then, readers that find from follow
// MergedInto to into.
//
// Change feed: the scripts PUBLISH each event they commit on P:events, in
// commit order. Every ValkeyStore holds one dedicated subscriber connection
// and hands what arrives to its hub, so Subscribe on any node sees appends
// from every node, in per-customer order (a customer's appends are
// serialized by its slot). Plain PUBLISH, not sharded: a sharded channel
// would have to share the customer's slot, one channel per customer, which
// no node can subscribe to in full. When the subscriber connection drops,
// events published meanwhile are gone, so every local subscriber is cut off
// with ErrSlow (and so is anyone who subscribed while it was down, once it
// is back): they catch up from the timeline, which Follow does.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"
)

// ValkeyOptions configures OpenValkey.
type ValkeyOptions struct {
	// Addrs are host:port seeds: the server, or any nodes of a cluster
	// (the client discovers the rest). Empty means 127.0.0.1:6379.
	Addrs []string `yaml:"addrs"`
	// Password authenticates with AUTH; empty means the server needs none.
	// It comes from the environment, never from the YAML file.
	Password string `yaml:"-"`
	// DB is the logical database on a standalone server; zero is the
	// default one. Valkey Cluster only has database 0.
	DB int `yaml:"db"`
	// KeyPrefix starts every key and the event channel, so deployments or
	// test runs can share a server; empty means "og". It may not contain
	// braces, which would change the cluster hash tags.
	KeyPrefix string `yaml:"key_prefix"`
}

// ValkeyStore is the cluster Store. See the top of this file for the key
// layout, the listing indexes, merges and the change feed.
type ValkeyStore struct {
	client  valkey.Client
	prefix  string // KeyPrefix and ":"
	channel string
	hub     *hub
	closed  atomic.Bool
	stop    context.CancelFunc // ends the feed
	done    chan struct{}      // closed when the feed has ended
}

var _ Store = (*ValkeyStore)(nil)

// OpenValkey connects and starts the change feed; it returns once the feed
// is subscribed, so Subscribe never misses an event committed after it.
func OpenValkey(ctx context.Context, opts ValkeyOptions) (*ValkeyStore, error) {
	addrs := opts.Addrs
	if len(addrs) == 0 {
		addrs = []string{"127.0.0.1:6379"}
	}
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = "og"
	}
	if strings.ContainsAny(prefix, "{} \t\r\n") {
		return nil, fmt.Errorf("%w: valkey key prefix %q has a brace or a space", ErrInvalid, prefix)
	}
	if opts.DB < 0 {
		return nil, fmt.Errorf("%w: valkey db %d", ErrInvalid, opts.DB)
	}
	client, err := valkey.NewClient(valkey.ClientOption{
		InitAddress: addrs,
		Password:    opts.Password,
		SelectDB:    opts.DB,
		// Nothing is read through client-side caching; tracking would only
		// cost the server memory and invalidation traffic.
		DisableCache: true,
	})
	if err != nil {
		return nil, fmt.Errorf("sessions: valkey %v: %w", addrs, err)
	}
	feedCtx, stop := context.WithCancel(context.Background())
	s := &ValkeyStore{client: client, prefix: prefix + ":", channel: prefix + ":events", hub: newHub(),
		stop: stop, done: make(chan struct{})}
	ready := make(chan error, 1)
	go s.feed(feedCtx, ready)
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		stop()
		<-s.done
		client.Close()
		return nil, fmt.Errorf("sessions: valkey subscribe %s: %w", s.channel, err)
	}
	return s, nil
}

// errFeedLost is the feed's end when valkey-go gives no reason.
var errFeedLost = errors.New("sessions: valkey pub/sub connection lost")

// feed runs the change feed until ctx ends, reconnecting with backoff. The
// first outcome (subscribed, or the error) goes to ready.
func (s *ValkeyStore) feed(ctx context.Context, ready chan<- error) {
	defer close(s.done)
	opened := false
	delay := 50 * time.Millisecond
	for {
		err := s.subscribe(ctx, func() {
			if !opened {
				opened = true
				ready <- nil
			}
			delay = 50 * time.Millisecond
		})
		if ctx.Err() != nil {
			return // Close: the hub closes its subscribers with ErrClosed
		}
		if !opened {
			ready <- err
			return
		}
		// Whatever was published until the next subscribe is lost to us.
		s.hub.dropAll(ErrSlow)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// subscribe holds one subscription on a dedicated connection until it
// breaks or ctx ends; live is called once the server confirmed it.
func (s *ValkeyStore) subscribe(ctx context.Context, live func()) error {
	dc, release := s.client.Dedicate()
	defer release()
	confirmed := make(chan struct{})
	var once sync.Once
	lost := dc.SetPubSubHooks(valkey.PubSubHooks{
		OnMessage: s.deliver,
		OnSubscription: func(sub valkey.PubSubSubscription) {
			if sub.Kind != "subscribe" {
				return
			}
			once.Do(func() {
				// Anyone who subscribed while the feed was down may have
				// missed events. This runs before the first message of
				// the new connection is delivered.
				s.hub.dropAll(ErrSlow)
				close(confirmed)
			})
		},
	})
	if err := dc.Do(ctx, dc.B().Subscribe().Channel(s.channel).Build()).Error(); err != nil {
		return err
	}
	for {
		select {
		case <-confirmed:
			live()
			confirmed = nil
		case err := <-lost:
			if err == nil {
				err = errFeedLost
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// deliver runs on the subscriber connection's reader; hub.publish never
// blocks it.
func (s *ValkeyStore) deliver(m valkey.PubSubMessage) {
	if s.hub.idle() {
		return // no one to decode for; the common case on busy nodes without websockets
	}
	var ev Event
	if err := json.Unmarshal([]byte(m.Message), &ev); err != nil {
		// Only our scripts publish here; if something else did, skipping
		// it silently could hide an event, so cut everyone off.
		s.hub.dropAll(ErrSlow)
		return
	}
	s.hub.publish(ev)
}

// Keys. See the layout at the top of the file.

type valkeyCustomerKeys struct {
	tag, cus, tl, dedup, ids, topics, convs, merges string
}

func (s *ValkeyStore) keys(customerID string) valkeyCustomerKeys {
	tag := s.prefix + "{c:" + customerID + "}:"
	return valkeyCustomerKeys{tag: tag, cus: tag + "cus", tl: tag + "tl", dedup: tag + "dedup", ids: tag + "ids",
		topics: tag + "topics", convs: tag + "convs", merges: tag + "merges"}
}

func (k valkeyCustomerKeys) conv(id string) string { return k.tag + "cv:" + id }

func (s *ValkeyStore) identityKey(id Identity) string { return s.prefix + "id:" + id.Key() }
func (s *ValkeyStore) ownerKey(convID string) string  { return s.prefix + "cv:" + convID }
func (s *ValkeyStore) customersKey() string           { return s.prefix + "cus" }

// indexKeys are the listing sets a conversation belongs in.
func (s *ValkeyStore) indexKeys(c Conversation) []string {
	x := s.prefix + "cvx:"
	return []string{x + "all", x + "st:" + string(c.Status), x + "as:" + c.Assignee, x + "ch:" + c.Channel}
}

// taggable rejects customer ids that could not have come from NewID and
// would break out of their hash tag.
func taggable(customerID string) bool {
	return customerID != "" && !strings.ContainsAny(customerID, "{}")
}

// convHashFields are the fields of a conversation hash, in the order
// valkeyMergeInto reads them.
var convHashFields = []string{"id", "customer_id", "status", "channel", "assignee", "topic",
	"created_at", "updated_at", "resolved_at", "last_seq", "ver"}

func convValues(c Conversation, ver int64) []string {
	return []string{c.ID, c.CustomerID, string(c.Status), c.Channel, c.Assignee, c.Topic,
		formatTime(c.CreatedAt), formatTime(c.UpdatedAt), formatTime(c.ResolvedAt),
		strconv.FormatUint(c.LastSeq, 10), strconv.FormatInt(ver, 10)}
}

// parseConversation returns the conversation and its version.
func parseConversation(m map[string]string) (Conversation, string, error) {
	c := Conversation{ID: m["id"], CustomerID: m["customer_id"], Status: ConversationStatus(m["status"]),
		Channel: m["channel"], Assignee: m["assignee"], Topic: m["topic"]}
	var errs []error
	var err error
	c.CreatedAt, err = parseTime(m["created_at"])
	errs = append(errs, err)
	c.UpdatedAt, err = parseTime(m["updated_at"])
	errs = append(errs, err)
	c.ResolvedAt, err = parseTime(m["resolved_at"])
	errs = append(errs, err)
	c.LastSeq, err = strconv.ParseUint(m["last_seq"], 10, 64)
	errs = append(errs, err)
	return c, m["ver"], errors.Join(errs...)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// Event JSON with a hole for the sequence, which the scripts fill in.

// seqHole is an event's JSON with Seq 0, around the sequence. customer_id
// comes first and is a JSON string, inside which an unescaped quote cannot
// occur, so the first match is the seq field.
var seqHole = []byte(`,"seq":0,`)

// firstSeqHole stands for Merge.FirstSeq until the merge script knows it;
// no real sequence gets near it.
const firstSeqHole uint64 = 1 << 62

func marshalEvent(ev Event) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep payloads as the caller wrote them
	if err := enc.Encode(ev); err != nil {
		return nil, fmt.Errorf("%w: event: %v", ErrInvalid, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// eventTemplate returns ev's JSON as head and tail; head + seq + tail is
// the stored event.
func eventTemplate(ev Event) (head, tail string, err error) {
	ev.Seq = 0
	b, err := marshalEvent(ev)
	if err != nil {
		return "", "", err
	}
	i := bytes.Index(b, seqHole)
	if i < 0 {
		return "", "", fmt.Errorf("sessions: event JSON has no seq field: %.80s", b)
	}
	return string(b[:i+len(seqHole)-2]), string(b[i+len(seqHole)-1:]), nil
}

// Script replies.

func (s *ValkeyStore) run(ctx context.Context, script *valkey.Lua, keys, args []string) (string, []valkey.ValkeyMessage, error) {
	arr, err := script.Exec(ctx, s.client, keys, args).ToArray()
	if err != nil {
		return "", nil, err
	}
	if len(arr) == 0 {
		return "", nil, errors.New("sessions: empty script reply")
	}
	status, err := arr[0].ToString()
	return status, arr[1:], err
}

func replySeq(vals []valkey.ValkeyMessage) (uint64, error) {
	if len(vals) == 0 {
		return 0, errors.New("sessions: script reply has no sequence")
	}
	return vals[0].AsUint64()
}

func replyString(vals []valkey.ValkeyMessage) string {
	if len(vals) == 0 {
		return ""
	}
	v, _ := vals[0].ToString()
	return v
}

func replyEvent(vals []valkey.ValkeyMessage) (Event, error) {
	var ev Event
	if len(vals) == 0 {
		return ev, errors.New("sessions: script reply has no event")
	}
	raw, err := vals[0].ToString()
	if err != nil {
		return ev, err
	}
	return ev, json.Unmarshal([]byte(raw), &ev)
}

func replyConversation(vals []valkey.ValkeyMessage) (Conversation, error) {
	if len(vals) == 0 {
		return Conversation{}, errors.New("sessions: script reply has no conversation")
	}
	m, err := vals[0].AsStrMap()
	if err != nil {
		return Conversation{}, err
	}
	cv, _, err := parseConversation(m)
	return cv, err
}

// refused turns a script's refusal to write a customer into its error.
func refused(customerID, status string, vals []valkey.ValkeyMessage) error {
	switch status {
	case "notfound":
		return notFound("customer", customerID)
	case "merged":
		return fmt.Errorf("customer %s into %s: %w", customerID, replyString(vals), ErrMerged)
	}
	return fmt.Errorf("sessions: valkey script answered %q for customer %s", status, customerID)
}

func notFound(what, id string) error { return fmt.Errorf("%s %s: %w", what, id, ErrNotFound) }

// fail wraps a backend error with what was being done.
func (s *ValkeyStore) fail(op, id string, err error) error {
	if errors.Is(err, valkey.ErrClosing) || s.closed.Load() {
		return fmt.Errorf("%s %s: %w", op, id, ErrClosed)
	}
	return fmt.Errorf("sessions: valkey %s %s: %w", op, id, err)
}

func (s *ValkeyStore) ready() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// afterCommit is the context for bookkeeping after a script committed: the
// caller giving up must not leave it half done.
func afterCommit(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

// Customers and identities.

func (s *ValkeyStore) ResolveCustomer(ctx context.Context, id Identity, seed Customer) (Customer, bool, error) {
	if err := id.Validate(); err != nil {
		return Customer{}, false, err
	}
	if err := s.ready(); err != nil {
		return Customer{}, false, err
	}
	key := s.identityKey(id)
	// Another round only follows a lost race, which leaves the winner's
	// pointer in place; the bound is a guard, not a retry policy.
	for range 8 {
		owner, err := s.client.Do(ctx, s.client.B().Get().Key(key).Build()).ToString()
		if err == nil {
			c, err := s.follow(ctx, owner)
			return c, false, err
		}
		if !valkey.IsValkeyNil(err) {
			return Customer{}, false, s.fail("resolve", string(id.Kind), err)
		}
		c, won, err := s.create(ctx, key, id, seed)
		if err != nil || won {
			return c, won, err
		}
	}
	return Customer{}, false, fmt.Errorf("sessions: valkey resolve %s: identity pointer keeps vanishing", id.Kind)
}

// create writes a new customer with id, then claims id for it. The record
// exists before the pointer does, so whoever reads the pointer finds the
// customer; the loser of a race deletes its record, which no one saw.
func (s *ValkeyStore) create(ctx context.Context, key string, id Identity, seed Customer) (Customer, bool, error) {
	now := time.Now().UTC()
	c := cloneCustomer(seed)
	c.ID, c.MergedInto = NewID("cus"), ""
	c.CreatedAt, c.UpdatedAt = now, now
	id.CustomerID, id.LinkedAt = c.ID, now
	doc, err := json.Marshal(c)
	if err != nil {
		return Customer{}, false, fmt.Errorf("%w: customer: %v", ErrInvalid, err)
	}
	k := s.keys(c.ID)
	b := s.client.B()
	for _, r := range s.client.DoMulti(ctx,
		b.Hset().Key(k.cus).FieldValue().FieldValue("doc", string(doc)).FieldValue("seq", "0").FieldValue("rev", "0").Build(),
		b.Hset().Key(k.ids).FieldValue().FieldValue(id.Key(), string(mustJSON(id))).Build(),
	) {
		if err := r.Error(); err != nil {
			return Customer{}, false, s.fail("create customer", c.ID, err)
		}
	}
	err = s.client.Do(ctx, b.Set().Key(key).Value(c.ID).Nx().Build()).Error()
	if valkey.IsValkeyNil(err) {
		s.client.Do(ctx, b.Del().Key(k.cus, k.ids).Build())
		return Customer{}, false, nil
	}
	if err != nil {
		return Customer{}, false, s.fail("claim identity for", c.ID, err)
	}
	s.list(ctx, c.ID)
	return c, true, nil
}

// list adds the customer to the name search set. It is written only once
// the customer owns its identity, so a record whose creation lost a race
// or crashed never shows up in search. The customer exists either way:
// failing here would only make the caller retry and be told it was not
// created, so a failure leaves it out of name search until its next
// update, which lists it again.
func (s *ValkeyStore) list(ctx context.Context, id string) {
	ctx, cancel := afterCommit(ctx)
	defer cancel()
	s.client.Do(ctx, s.client.B().Zadd().Key(s.customersKey()).ScoreMember().ScoreMember(0, id).Build())
}

// follow returns the customer, or the one it was merged into: a reader can
// meet the pointer of a merged customer before a merge re-points it.
func (s *ValkeyStore) follow(ctx context.Context, id string) (Customer, error) {
	for range 16 {
		c, err := s.Customer(ctx, id)
		if err != nil || c.MergedInto == "" {
			return c, err
		}
		id = c.MergedInto
	}
	return Customer{}, fmt.Errorf("sessions: customer %s: merge chain too long", id)
}

// settled is follow for callers who only need the id.
func (s *ValkeyStore) settled(ctx context.Context, id string) (string, error) {
	for range 16 {
		into, err := s.client.Do(ctx, s.client.B().Hget().Key(s.keys(id).cus).Field("merged").Build()).ToString()
		if valkey.IsValkeyNil(err) {
			return id, nil
		}
		if err != nil {
			return "", s.fail("read customer", id, err)
		}
		id = into
	}
	return "", fmt.Errorf("sessions: customer %s: merge chain too long", id)
}

func (s *ValkeyStore) Customer(ctx context.Context, id string) (Customer, error) {
	if err := s.ready(); err != nil {
		return Customer{}, err
	}
	if !taggable(id) {
		return Customer{}, notFound("customer", id)
	}
	vals, err := s.client.Do(ctx, s.client.B().Hmget().Key(s.keys(id).cus).Field("doc", "merged", "merged_at").Build()).ToArray()
	if err != nil {
		return Customer{}, s.fail("read customer", id, err)
	}
	return decodeCustomer(id, vals)
}

// decodeCustomer reads HMGET doc merged merged_at.
func decodeCustomer(id string, vals []valkey.ValkeyMessage) (Customer, error) {
	var c Customer
	if len(vals) != 3 || vals[0].IsNil() {
		return c, notFound("customer", id)
	}
	doc, _ := vals[0].ToString()
	if err := json.Unmarshal([]byte(doc), &c); err != nil {
		return c, fmt.Errorf("sessions: customer %s: %w", id, err)
	}
	if into, err := vals[1].ToString(); err == nil {
		c.MergedInto = into
		at, _ := vals[2].ToString()
		if t, err := parseTime(at); err == nil && !t.IsZero() {
			c.UpdatedAt = t
		}
	}
	return c, nil
}

func (s *ValkeyStore) UpdateCustomer(ctx context.Context, id string, u CustomerUpdate) (Customer, error) {
	if err := u.Validate(); err != nil {
		return Customer{}, err
	}
	if err := s.ready(); err != nil {
		return Customer{}, err
	}
	if !taggable(id) {
		return Customer{}, notFound("customer", id)
	}
	k := s.keys(id)
	// Optimistic: read, apply in Go (so every store applies updates the
	// same way), write if the document is unchanged, else read again.
	for range 100 {
		vals, err := s.client.Do(ctx, s.client.B().Hmget().Key(k.cus).Field("doc", "rev", "merged").Build()).ToArray()
		if err != nil {
			return Customer{}, s.fail("read customer", id, err)
		}
		if len(vals) != 3 || vals[0].IsNil() {
			return Customer{}, notFound("customer", id)
		}
		if into, err := vals[2].ToString(); err == nil {
			return Customer{}, fmt.Errorf("customer %s into %s: %w", id, into, ErrMerged)
		}
		var c Customer
		doc, _ := vals[0].ToString()
		rev, _ := vals[1].ToString()
		if err := json.Unmarshal([]byte(doc), &c); err != nil {
			return Customer{}, fmt.Errorf("sessions: customer %s: %w", id, err)
		}
		now := time.Now().UTC()
		ev, changed := u.Change(&c, now)
		next, err := json.Marshal(c)
		if err != nil {
			return Customer{}, fmt.Errorf("%w: customer: %v", ErrInvalid, err)
		}
		var head, tail string
		if changed {
			ev.stamp(now)
			if head, tail, err = eventTemplate(ev); err != nil {
				return Customer{}, err
			}
		}
		status, vals, err := s.run(ctx, valkeyUpdateCustomer, []string{k.cus, k.tl, k.dedup},
			[]string{rev, string(next), head, tail, s.channel})
		switch {
		case err != nil:
			return Customer{}, s.fail("update customer", id, err)
		case status == "ok":
			s.list(ctx, id)
			return c, nil
		case status != "stale":
			return Customer{}, refused(id, status, vals)
		}
	}
	return Customer{}, fmt.Errorf("sessions: valkey update customer %s: too much contention", id)
}

func (s *ValkeyStore) Identities(ctx context.Context, customerID string) ([]Identity, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	if !taggable(customerID) {
		return nil, notFound("customer", customerID)
	}
	k := s.keys(customerID)
	b := s.client.B()
	res := s.client.DoMulti(ctx, b.Exists().Key(k.cus).Build(), b.Hvals().Key(k.ids).Build())
	n, err := res[0].AsInt64()
	if err != nil {
		return nil, s.fail("read customer", customerID, err)
	}
	if n == 0 {
		return nil, notFound("customer", customerID)
	}
	raw, err := res[1].AsStrSlice()
	if err != nil {
		return nil, s.fail("read identities of", customerID, err)
	}
	out := make([]Identity, 0, len(raw))
	for _, r := range raw {
		var id Identity
		if err := json.Unmarshal([]byte(r), &id); err != nil {
			return nil, fmt.Errorf("sessions: identity of %s: %w", customerID, err)
		}
		out = append(out, id)
	}
	SortIdentities(out)
	return out, nil
}

func (s *ValkeyStore) IdentityOwner(ctx context.Context, id Identity) (string, error) {
	if err := s.ready(); err != nil {
		return "", err
	}
	owner, err := s.client.Do(ctx, s.client.B().Get().Key(s.identityKey(id)).Build()).ToString()
	if valkey.IsValkeyNil(err) {
		return "", notFound("identity", string(id.Kind))
	}
	if err != nil {
		return "", s.fail("read identity", string(id.Kind), err)
	}
	return s.settled(ctx, owner)
}

func (s *ValkeyStore) LinkIdentity(ctx context.Context, customerID string, id Identity, author string) (Event, bool, error) {
	if err := id.Validate(); err != nil {
		return Event{}, false, err
	}
	if err := s.ready(); err != nil {
		return Event{}, false, err
	}
	if !taggable(customerID) {
		return Event{}, false, notFound("customer", customerID)
	}
	k := s.keys(customerID)
	b := s.client.B()
	// Checked first so a customer who cannot take the identity does not
	// hold its pointer even for a moment.
	vals, err := s.client.Do(ctx, b.Hmget().Key(k.cus).Field("seq", "merged").Build()).ToArray()
	if err != nil {
		return Event{}, false, s.fail("read customer", customerID, err)
	}
	if len(vals) != 2 || vals[0].IsNil() {
		return Event{}, false, notFound("customer", customerID)
	}
	if into, err := vals[1].ToString(); err == nil {
		return Event{}, false, fmt.Errorf("customer %s into %s: %w", customerID, into, ErrMerged)
	}

	key := s.identityKey(id)
	err = s.client.Do(ctx, b.Set().Key(key).Value(customerID).Nx().Build()).Error()
	claimed := err == nil
	if err != nil && !valkey.IsValkeyNil(err) {
		return Event{}, false, s.fail("claim identity for", customerID, err)
	}
	if !claimed {
		owner, err := s.IdentityOwner(ctx, id)
		if err != nil {
			return Event{}, false, err
		}
		if owner != customerID {
			return Event{}, false, fmt.Errorf("%s to %s: %w", id.Kind, customerID, ErrIdentityTaken)
		}
		// Ours already: the script upgrades it, or adds it when a crash
		// came between claiming the pointer and recording the identity.
	}

	now := time.Now().UTC()
	id.CustomerID, id.LinkedAt = customerID, now
	payload := mustJSON(id)
	ev := Event{CustomerID: customerID, Kind: KindIdentityLinked, Channel: ChannelSystem, Author: author, Payload: payload}
	ev.stamp(now)
	head, tail, err := eventTemplate(ev)
	if err != nil {
		return Event{}, false, err
	}
	verified := ""
	if id.Verified {
		verified = "1"
	}
	status, vals, err := s.run(ctx, valkeyLink, []string{k.cus, k.tl, k.dedup, k.ids},
		[]string{id.Key(), string(payload), verified, head, tail, s.channel})
	if err != nil {
		return Event{}, false, s.fail("link identity to", customerID, err)
	}
	switch status {
	case "ok":
		ev.Seq, err = replySeq(vals)
		return ev, true, err
	case "have":
		return Event{}, false, nil
	}
	if claimed {
		// Merged or gone since the check: give the identity back.
		_, _, _ = s.run(ctx, valkeyRepoint, []string{key}, []string{customerID, ""})
	}
	return Event{}, false, refused(customerID, status, vals)
}

func (s *ValkeyStore) FindCustomers(ctx context.Context, q CustomerQuery) ([]Customer, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if err := s.ready(); err != nil {
		return nil, err
	}
	if q.Phone != "" || q.Email != "" {
		return s.findByIdentity(ctx, q)
	}
	// Name alone: scan customers in id order until the limit is met. This
	// reads every customer when few match; a search index is the next step
	// if operators search by name on millions of customers.
	const batch = 256
	limit := q.limit()
	var out []Customer
	start := "-"
	for {
		ids, err := s.client.Do(ctx, s.client.B().Zrange().Key(s.customersKey()).Min(start).Max("+").
			Bylex().Limit(0, batch).Build()).AsStrSlice()
		if err != nil {
			return nil, s.fail("scan customers", "", err)
		}
		cmds := make(valkey.Commands, len(ids))
		for i, id := range ids {
			cmds[i] = s.client.B().Hmget().Key(s.keys(id).cus).Field("doc", "merged", "merged_at").Build()
		}
		for i, r := range s.client.DoMulti(ctx, cmds...) {
			vals, err := r.ToArray()
			if err != nil {
				return nil, s.fail("read customer", ids[i], err)
			}
			c, err := decodeCustomer(ids[i], vals)
			if err != nil {
				return nil, err
			}
			if c.MergedInto == "" && q.Matches(c) {
				out = append(out, c)
				if len(out) == limit {
					return out, nil
				}
			}
		}
		if len(ids) < batch {
			return out, nil
		}
		start = "(" + ids[len(ids)-1]
	}
}

func (s *ValkeyStore) findByIdentity(ctx context.Context, q CustomerQuery) ([]Customer, error) {
	owner := ""
	for _, id := range []Identity{{Kind: IdentityPhone, Value: q.Phone}, {Kind: IdentityEmail, Value: q.Email}} {
		if id.Value == "" {
			continue
		}
		o, err := s.IdentityOwner(ctx, id)
		if errors.Is(err, ErrNotFound) || (err == nil && owner != "" && o != owner) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		owner = o
	}
	c, err := s.Customer(ctx, owner)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil || c.MergedInto != "" || !q.Matches(c) {
		return nil, err
	}
	return []Customer{c}, nil
}

// Timeline.

func (s *ValkeyStore) Append(ctx context.Context, ev Event) (Event, bool, error) {
	if err := ev.Validate(); err != nil {
		return Event{}, false, err
	}
	if err := s.ready(); err != nil {
		return Event{}, false, err
	}
	if !taggable(ev.CustomerID) {
		return Event{}, false, notFound("customer", ev.CustomerID)
	}
	now := time.Now().UTC()
	ev.Origin = "" // only merges write copies
	ev.stamp(now)
	head, tail, err := eventTemplate(ev)
	if err != nil {
		return Event{}, false, err
	}
	k := s.keys(ev.CustomerID)
	keys := []string{k.cus, k.tl, k.dedup}
	if ev.ConversationID != "" {
		keys = append(keys, k.conv(ev.ConversationID))
	}
	status, vals, err := s.run(ctx, valkeyAppend, keys, []string{ev.DedupKey(), head, tail, s.channel, formatTime(now)})
	if err != nil {
		return Event{}, false, s.fail("append to", ev.CustomerID, err)
	}
	switch status {
	case "ok":
		ev.Seq, err = replySeq(vals)
		return ev, true, err
	case "dup":
		stored, err := replyEvent(vals)
		return stored, false, err
	case "badconv":
		return Event{}, false, fmt.Errorf("%w: conversation %s is not customer %s's", ErrInvalid, ev.ConversationID, ev.CustomerID)
	}
	return Event{}, false, refused(ev.CustomerID, status, vals)
}

func (s *ValkeyStore) LastSeq(ctx context.Context, customerID string) (uint64, error) {
	if err := s.ready(); err != nil {
		return 0, err
	}
	if !taggable(customerID) {
		return 0, notFound("customer", customerID)
	}
	v, err := s.client.Do(ctx, s.client.B().Hget().Key(s.keys(customerID).cus).Field("seq").Build()).ToString()
	if valkey.IsValkeyNil(err) {
		return 0, notFound("customer", customerID)
	}
	if err != nil {
		return 0, s.fail("read customer", customerID, err)
	}
	return strconv.ParseUint(v, 10, 64)
}

func (s *ValkeyStore) Timeline(ctx context.Context, customerID string, after uint64, limit int) ([]Event, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	if !taggable(customerID) {
		return nil, notFound("customer", customerID)
	}
	k := s.keys(customerID)
	var entries []valkey.ValkeyMessage
	if after < math.MaxUint64 {
		var err error
		entries, err = s.client.Do(ctx, s.client.B().Xrange().Key(k.tl).Start(strconv.FormatUint(after+1, 10)).End("+").
			Count(int64(TimelineLimit(limit))).Build()).ToArray()
		if err != nil {
			return nil, s.fail("read timeline of", customerID, err)
		}
	}
	if len(entries) == 0 {
		// Only now tell an empty timeline from an unknown customer, to keep
		// the common read to one round trip.
		n, err := s.client.Do(ctx, s.client.B().Exists().Key(k.cus).Build()).AsInt64()
		if err != nil {
			return nil, s.fail("read customer", customerID, err)
		}
		if n == 0 {
			return nil, notFound("customer", customerID)
		}
		return nil, nil
	}
	out := make([]Event, len(entries))
	for i, e := range entries {
		// An entry is [id, [field, value]]; the one field is the event.
		kv, err := e.ToArray()
		if err == nil && len(kv) != 2 {
			err = errors.New("malformed stream entry")
		}
		var fields []valkey.ValkeyMessage
		if err == nil {
			fields, err = kv[1].ToArray()
		}
		if err == nil && len(fields) != 2 {
			err = errors.New("malformed stream entry")
		}
		var raw []byte
		if err == nil {
			raw, err = fields[1].AsBytes()
		}
		if err == nil {
			err = json.Unmarshal(raw, &out[i])
		}
		if err != nil {
			return nil, fmt.Errorf("sessions: timeline of %s: %w", customerID, err)
		}
	}
	return out, nil
}

// Conversations.

func (s *ValkeyStore) OpenConversation(ctx context.Context, customerID, topic, channel string) (Conversation, bool, error) {
	if err := ValidateTopic(topic, channel); err != nil {
		return Conversation{}, false, err
	}
	if err := s.ready(); err != nil {
		return Conversation{}, false, err
	}
	if !taggable(customerID) {
		return Conversation{}, false, notFound("customer", customerID)
	}
	k := s.keys(customerID)
	// Most calls find the conversation already open: answer those without
	// writing anything.
	holder, err := s.topicHolder(ctx, customerID, topic)
	if err != nil {
		return Conversation{}, false, err
	}
	if holder != "" {
		if cv, _, err := s.loadConversation(ctx, customerID, holder); err == nil && cv.Status.Active() {
			return cv, false, nil
		}
	}
	cv, openArgs, err := opening(customerID, topic, channel, time.Now().UTC())
	if err != nil {
		return Conversation{}, false, err
	}
	// The pointer and listing entries come first, so the conversation
	// never exists without them; an id left unused is removed below.
	if err := s.point(ctx, cv); err != nil {
		return Conversation{}, false, err
	}
	status, vals, err := s.run(ctx, valkeyOpen, []string{k.cus, k.tl, k.dedup, k.topics, k.convs, k.conv(cv.ID)},
		append([]string{topic, cv.ID, s.channel}, openArgs...))
	if err != nil {
		// Perhaps committed: leave the entries, which are only extra
		// candidates if it did not.
		return Conversation{}, false, s.fail("open conversation for", customerID, err)
	}
	if status == "created" {
		cv.LastSeq, err = replySeq(vals)
		return cv, true, err
	}
	s.unpoint(ctx, cv)
	if status == "exists" {
		got, _, err := s.loadConversation(ctx, customerID, replyString(vals))
		return got, false, err
	}
	return Conversation{}, false, refused(customerID, status, vals)
}

func (s *ValkeyStore) Intake(ctx context.Context, topic string, ev Event) (Conversation, Event, bool, error) {
	if err := validateIntake(topic, ev); err != nil {
		return Conversation{}, Event{}, false, err
	}
	if err := s.ready(); err != nil {
		return Conversation{}, Event{}, false, err
	}
	if !taggable(ev.CustomerID) {
		return Conversation{}, Event{}, false, notFound("customer", ev.CustomerID)
	}
	k := s.keys(ev.CustomerID)
	ev.Origin = ""
	// The script needs the conversation's key, so Go reads which one holds
	// the topic and the script appends only if it still does.
	for range 100 {
		holder, err := s.topicHolder(ctx, ev.CustomerID, topic)
		if err != nil {
			return Conversation{}, Event{}, false, err
		}
		now := time.Now().UTC()
		in := ev
		in.stamp(now)
		var opened Conversation
		var openArgs []string
		if holder == "" {
			if opened, openArgs, err = opening(ev.CustomerID, topic, ev.Channel, now); err != nil {
				return Conversation{}, Event{}, false, err
			}
			holder = opened.ID
		}
		in.ConversationID = holder
		head, tail, err := eventTemplate(in)
		if err != nil {
			return Conversation{}, Event{}, false, err
		}
		// As in OpenConversation: the pointer and listing entries of a new
		// conversation come first, and go again if it was not opened.
		if opened.ID != "" {
			if err := s.point(ctx, opened); err != nil {
				return Conversation{}, Event{}, false, err
			}
		}
		status, vals, err := s.run(ctx, valkeyIntake, []string{k.cus, k.tl, k.dedup, k.topics, k.convs, k.conv(holder)},
			append([]string{in.DedupKey(), topic, holder, head, tail, s.channel, formatTime(now)}, openArgs...))
		if err != nil {
			return Conversation{}, Event{}, false, s.fail("intake for", ev.CustomerID, err)
		}
		if status != "ok" && opened.ID != "" {
			s.unpoint(ctx, opened)
		}
		switch status {
		case "ok":
			in.Seq, err = replySeq(vals)
			if err != nil {
				return Conversation{}, Event{}, false, err
			}
			cv, err := replyConversation(vals[1:])
			return cv, in, true, err
		case "dup":
			stored, err := replyEvent(vals)
			if err != nil || stored.ConversationID == "" {
				return Conversation{}, stored, false, err
			}
			cv, err := s.Conversation(ctx, stored.ConversationID)
			return cv, stored, false, err
		case "moved":
			continue
		}
		return Conversation{}, Event{}, false, refused(ev.CustomerID, status, vals)
	}
	return Conversation{}, Event{}, false, fmt.Errorf("sessions: valkey intake for %s: too much contention", ev.CustomerID)
}

// topicHolder returns the id of the customer's active conversation on
// topic, "" for none. The customer is read in the same round trip so an
// unknown or merged one is refused, as the scripts would, before a caller
// writes a new conversation's pointer.
func (s *ValkeyStore) topicHolder(ctx context.Context, customerID, topic string) (string, error) {
	k := s.keys(customerID)
	b := s.client.B()
	res := s.client.DoMulti(ctx, b.Hmget().Key(k.cus).Field("seq", "merged").Build(), b.Hget().Key(k.topics).Field(topic).Build())
	state, err := res[0].ToArray()
	if err != nil {
		return "", s.fail("read customer", customerID, err)
	}
	if len(state) != 2 || state[0].IsNil() {
		return "", notFound("customer", customerID)
	}
	if into, err := state[1].ToString(); err == nil {
		return "", fmt.Errorf("customer %s into %s: %w", customerID, into, ErrMerged)
	}
	holder, err := res[1].ToString()
	if err != nil && !valkey.IsValkeyNil(err) {
		return "", s.fail("read topics of", customerID, err)
	}
	return holder, nil
}

// opening is a new conversation on topic and what the scripts' open takes
// for it after its topic, id and channel: its opening event's head and
// tail, then its field/value pairs.
func opening(customerID, topic, channel string, now time.Time) (Conversation, []string, error) {
	cv := Conversation{ID: NewID("cnv"), CustomerID: customerID, Status: StatusOpen, Channel: channel, Topic: topic,
		CreatedAt: now, UpdatedAt: now}
	ev := OpenedEvent(cv)
	ev.stamp(now)
	head, tail, err := eventTemplate(ev)
	if err != nil {
		return Conversation{}, nil, err
	}
	args := []string{head, tail}
	for i, v := range convValues(cv, 0) {
		args = append(args, convHashFields[i], v)
	}
	return cv, args, nil
}

// point writes a new conversation's owner pointer and listing entries.
func (s *ValkeyStore) point(ctx context.Context, cv Conversation) error {
	b := s.client.B()
	cmds := valkey.Commands{b.Set().Key(s.ownerKey(cv.ID)).Value(cv.CustomerID).Build()}
	for _, key := range s.indexKeys(cv) {
		cmds = append(cmds, b.Zadd().Key(key).ScoreMember().ScoreMember(0, cv.ID).Build())
	}
	for _, r := range s.client.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return s.fail("index conversation", cv.ID, err)
		}
	}
	return nil
}

// unpoint removes what point wrote for an id that was never used, so no
// one can be adding it concurrently.
func (s *ValkeyStore) unpoint(ctx context.Context, cv Conversation) {
	ctx, cancel := afterCommit(ctx)
	defer cancel()
	b := s.client.B()
	cmds := valkey.Commands{b.Del().Key(s.ownerKey(cv.ID)).Build()}
	for _, key := range s.indexKeys(cv) {
		cmds = append(cmds, b.Zrem().Key(key).Member(cv.ID).Build())
	}
	s.client.DoMulti(ctx, cmds...)
}

// index adds the conversation to the listing sets of its values.
func (s *ValkeyStore) index(ctx context.Context, cv Conversation) error {
	b := s.client.B()
	var cmds valkey.Commands
	for _, key := range s.indexKeys(cv) {
		cmds = append(cmds, b.Zadd().Key(key).ScoreMember().ScoreMember(0, cv.ID).Build())
	}
	for _, r := range s.client.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return s.fail("index conversation", cv.ID, err)
		}
	}
	return nil
}

// settle brings the listing sets in line with a conversation after a write
// that may have moved it out of the sets in left: it removes it from
// those, then reads the conversation and adds it to the sets of the values
// it holds. Every removal is followed by a read, so concurrent writers of
// one conversation converge: the last read sees the last write. Errors are
// ignored: the write has committed, an extra entry is filtered out by
// readers, and an entry can only go missing if this fails while a
// concurrent writer re-adds the value.
func (s *ValkeyStore) settle(ctx context.Context, customerID, id string, left []string) {
	if len(left) == 0 {
		return
	}
	ctx, cancel := afterCommit(ctx)
	defer cancel()
	b := s.client.B()
	cmds := make(valkey.Commands, len(left))
	for i, key := range left {
		cmds[i] = b.Zrem().Key(key).Member(id).Build()
	}
	s.client.DoMulti(ctx, cmds...)
	if cv, _, err := s.loadConversation(ctx, customerID, id); err == nil {
		_ = s.index(ctx, cv)
	}
}

// leftBehind is the listing sets of from that to is not in.
func (s *ValkeyStore) leftBehind(from, to Conversation) []string {
	keep := s.indexKeys(to)
	var out []string
	for _, key := range s.indexKeys(from) {
		if !slices.Contains(keep, key) {
			out = append(out, key)
		}
	}
	return out
}

func (s *ValkeyStore) loadConversation(ctx context.Context, customerID, id string) (Conversation, string, error) {
	m, err := s.client.Do(ctx, s.client.B().Hgetall().Key(s.keys(customerID).conv(id)).Build()).AsStrMap()
	if err != nil {
		return Conversation{}, "", s.fail("read conversation", id, err)
	}
	if len(m) == 0 {
		return Conversation{}, "", notFound("conversation", id)
	}
	cv, ver, err := parseConversation(m)
	if err != nil {
		return Conversation{}, "", fmt.Errorf("sessions: conversation %s: %w", id, err)
	}
	return cv, ver, nil
}

func (s *ValkeyStore) owner(ctx context.Context, convID string) (string, error) {
	owner, err := s.client.Do(ctx, s.client.B().Get().Key(s.ownerKey(convID)).Build()).ToString()
	if valkey.IsValkeyNil(err) || (err == nil && !taggable(owner)) {
		return "", notFound("conversation", convID)
	}
	if err != nil {
		return "", s.fail("read conversation", convID, err)
	}
	return owner, nil
}

func (s *ValkeyStore) Conversation(ctx context.Context, id string) (Conversation, error) {
	if err := s.ready(); err != nil {
		return Conversation{}, err
	}
	owner, err := s.owner(ctx, id)
	if err != nil {
		return Conversation{}, err
	}
	cv, _, err := s.loadConversation(ctx, owner, id)
	return cv, err
}

func (s *ValkeyStore) UpdateConversation(ctx context.Context, id string, u ConversationUpdate) (Conversation, Event, error) {
	if err := u.Validate(); err != nil {
		return Conversation{}, Event{}, err
	}
	if err := s.ready(); err != nil {
		return Conversation{}, Event{}, err
	}
	owner, err := s.owner(ctx, id)
	if err != nil {
		return Conversation{}, Event{}, err
	}
	// Optimistic, as UpdateCustomer: Apply in Go on what was read, written
	// only if the conversation's version is unchanged. Appends do not bump
	// the version, so a busy conversation does not starve updates.
	for range 100 {
		cv, ver, err := s.loadConversation(ctx, owner, id)
		if errors.Is(err, ErrNotFound) {
			// A merge may have moved it; the pointer says where to.
			if moved, perr := s.owner(ctx, id); perr == nil && moved != owner {
				owner = moved
				continue
			}
		}
		if err != nil {
			return Conversation{}, Event{}, err
		}
		now := time.Now().UTC()
		next := cv
		ev := u.Apply(&next, now)
		ev.stamp(now)
		head, tail, err := eventTemplate(ev)
		if err != nil {
			return Conversation{}, Event{}, err
		}
		if err := s.index(ctx, next); err != nil {
			return Conversation{}, Event{}, err
		}
		k := s.keys(owner)
		status, vals, err := s.run(ctx, valkeyUpdateConversation, []string{k.cus, k.tl, k.dedup, k.topics, k.conv(id)},
			[]string{ver, string(next.Status), next.Assignee, formatTime(next.ResolvedAt), formatTime(next.UpdatedAt),
				ev.DedupKey(), head, tail, s.channel})
		if err != nil {
			return Conversation{}, Event{}, s.fail("update conversation", id, err)
		}
		if status == "ok" {
			s.settle(ctx, owner, id, s.leftBehind(cv, next))
			ev.Seq, err = replySeq(vals)
			next.LastSeq = ev.Seq
			return next, ev, err
		}
		// Not written: take back what index added, as far as it is not true.
		s.settle(ctx, owner, id, s.leftBehind(next, cv))
		switch status {
		case "stale":
			continue
		case "conflict":
			return Conversation{}, Event{}, fmt.Errorf("reopen %s (topic held by %s): %w", id, replyString(vals), ErrConflict)
		case "notfound":
			if moved, perr := s.owner(ctx, id); perr == nil && moved != owner {
				owner = moved
				continue
			}
			return Conversation{}, Event{}, notFound("conversation", id)
		case "merged":
			// A merge is moving it: write it where merge step 2 put it,
			// or wait for that step.
			if into := replyString(vals); taggable(into) {
				if _, _, err := s.loadConversation(ctx, into, id); err == nil {
					owner = into
					continue
				}
			}
			if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
				return Conversation{}, Event{}, err
			}
			continue
		}
		return Conversation{}, Event{}, refused(owner, status, vals)
	}
	return Conversation{}, Event{}, fmt.Errorf("sessions: valkey update conversation %s: too much contention", id)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (s *ValkeyStore) Conversations(ctx context.Context, q ConversationQuery) ([]Conversation, string, error) {
	if err := s.ready(); err != nil {
		return nil, "", err
	}
	limit := PageLimit(q.Limit)
	// The narrowest set the query names; the per-customer set is written
	// by the scripts, so it is exact.
	x := s.prefix + "cvx:"
	key, owner := x+"all", ""
	switch {
	case q.CustomerID != "":
		if !taggable(q.CustomerID) {
			return nil, "", nil
		}
		key, owner = s.keys(q.CustomerID).convs, q.CustomerID
	case q.Assignee != "":
		key = x + "as:" + q.Assignee
	case q.Unassigned:
		key = x + "as:"
	case q.Status != "":
		key = x + "st:" + string(q.Status)
	case q.Channel != "":
		key = x + "ch:" + q.Channel
	}
	start := "+"
	if q.Cursor != "" {
		start = "(" + q.Cursor
	}
	batch := max(limit+1, 64)
	var page []Conversation
	for len(page) <= limit {
		ids, err := s.client.Do(ctx, s.client.B().Zrange().Key(key).Min(start).Max("-").Bylex().Rev().
			Limit(0, int64(batch)).Build()).AsStrSlice()
		if err != nil {
			return nil, "", s.fail("list conversations", key, err)
		}
		convs, err := s.loadConversations(ctx, owner, ids)
		if err != nil {
			return nil, "", err
		}
		for _, cv := range convs {
			if q.Matches(cv) {
				page = append(page, cv)
			}
		}
		if len(ids) < batch {
			break
		}
		start = "(" + ids[len(ids)-1]
	}
	if len(page) > limit {
		return page[:limit], page[limit-1].ID, nil
	}
	return page, "", nil
}

// loadConversations reads the conversations in ids order, skipping ids
// that lead nowhere. owner is their customer, or empty to look each up.
func (s *ValkeyStore) loadConversations(ctx context.Context, owner string, ids []string) ([]Conversation, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	b := s.client.B()
	owners := make([]string, len(ids))
	if owner != "" {
		for i := range owners {
			owners[i] = owner
		}
	} else {
		cmds := make(valkey.Commands, len(ids))
		for i, id := range ids {
			cmds[i] = b.Get().Key(s.ownerKey(id)).Build()
		}
		for i, r := range s.client.DoMulti(ctx, cmds...) {
			o, err := r.ToString()
			if err != nil && !valkey.IsValkeyNil(err) {
				return nil, s.fail("read conversation", ids[i], err)
			}
			if taggable(o) {
				owners[i] = o
			}
		}
	}
	var cmds valkey.Commands
	var found []string
	for i, id := range ids {
		if owners[i] != "" {
			cmds = append(cmds, b.Hgetall().Key(s.keys(owners[i]).conv(id)).Build())
			found = append(found, id)
		}
	}
	if len(cmds) == 0 {
		return nil, nil
	}
	out := make([]Conversation, 0, len(cmds))
	for i, r := range s.client.DoMulti(ctx, cmds...) {
		m, err := r.AsStrMap()
		if err != nil {
			return nil, s.fail("read conversation", found[i], err)
		}
		if len(m) == 0 {
			continue
		}
		cv, _, err := parseConversation(m)
		if err != nil {
			return nil, fmt.Errorf("sessions: conversation %s: %w", found[i], err)
		}
		out = append(out, cv)
	}
	return out, nil
}

// Merge. See the steps at the top of the file.

func (s *ValkeyStore) Merge(ctx context.Context, into, from, evidence, author string) (Event, error) {
	if into == from {
		return Event{}, fmt.Errorf("%w: cannot merge %s into itself", ErrInvalid, into)
	}
	if evidence == "" {
		return Event{}, fmt.Errorf("%w: merge needs evidence", ErrInvalid)
	}
	if err := s.ready(); err != nil {
		return Event{}, err
	}
	for _, id := range []string{into, from} {
		if !taggable(id) {
			return Event{}, notFound("customer", id)
		}
	}
	// Refuse before freezing from when into cannot take it.
	target, err := s.Customer(ctx, into)
	if err != nil {
		return Event{}, err
	}
	if target.MergedInto != "" {
		return Event{}, fmt.Errorf("customer %s into %s: %w", into, target.MergedInto, ErrMerged)
	}
	ki, kf := s.keys(into), s.keys(from)
	now := time.Now().UTC()

	// Step 1: freeze from. What is read of it below cannot change after.
	status, vals, err := s.run(ctx, valkeyMergeFreeze, []string{kf.cus}, []string{into, formatTime(now)})
	if err != nil {
		return Event{}, s.fail("merge", from, err)
	}
	if status != "ok" && status != "resumed" {
		return Event{}, refused(from, status, vals)
	}
	snap, err := s.snapshot(ctx, from)
	if err != nil {
		return Event{}, err
	}

	// Step 2: everything onto into, in one script.
	keys, args, err := s.mergeArgs(into, from, evidence, author, now, snap)
	if err != nil {
		return Event{}, err
	}
	// Conversations whose topic clashes are resolved by the script; their
	// new listing entry comes first, as everywhere.
	resolved := s.client.B().Zadd().Key(s.prefix + "cvx:st:" + string(StatusResolved)).ScoreMember()
	active := 0
	for _, cv := range snap.convs {
		if cv.Status.Active() {
			resolved = resolved.ScoreMember(0, cv.ID)
			active++
		}
	}
	if active > 0 {
		if err := s.client.Do(ctx, resolved.Build()).Error(); err != nil {
			return Event{}, s.fail("merge", from, err)
		}
	}
	status, vals, err = s.run(ctx, valkeyMergeInto, append([]string{ki.cus, ki.tl, ki.dedup, ki.ids, ki.topics, ki.convs, ki.merges}, keys...), args)
	if err != nil {
		return Event{}, s.fail("merge into", into, err)
	}
	if status != "ok" && status != "done" {
		// into was merged away or vanished since the check; nothing was
		// copied, so from takes writes again.
		_, _, _ = s.run(ctx, valkeyMergeUndo, []string{kf.cus}, []string{into})
		return Event{}, refused(into, status, vals)
	}
	merged, err := replyEvent(vals)
	if err != nil {
		return Event{}, fmt.Errorf("sessions: merge event of %s: %w", into, err)
	}

	// Steps 3 and 4 finish what step 2 committed, whatever the caller's
	// context says.
	ctx, cancel := afterCommit(ctx)
	defer cancel()
	var repoint []valkey.LuaExec
	for _, id := range snap.identities {
		repoint = append(repoint, valkey.LuaExec{Keys: []string{s.identityKey(id)}, Args: []string{from, into}})
	}
	for _, cv := range snap.convs {
		repoint = append(repoint, valkey.LuaExec{Keys: []string{s.ownerKey(cv.ID)}, Args: []string{from, into}})
	}
	if len(repoint) > 0 {
		for _, r := range valkeyRepoint.ExecMulti(ctx, s.client, repoint...) {
			if err := r.Error(); err != nil {
				return Event{}, s.fail("merge: re-point to", into, err)
			}
		}
	}
	if err := s.client.Do(ctx, s.client.B().Zrem().Key(s.customersKey()).Member(from).Build()).Error(); err != nil {
		return Event{}, s.fail("merge: unlist", from, err)
	}
	for _, cv := range snap.convs {
		if !cv.Status.Active() {
			continue
		}
		cur, _, err := s.loadConversation(ctx, into, cv.ID)
		if err != nil {
			return Event{}, err
		}
		var left []string
		for _, st := range []ConversationStatus{cv.Status, StatusResolved} {
			if st != cur.Status {
				left = append(left, s.prefix+"cvx:st:"+string(st))
			}
		}
		s.settle(ctx, into, cv.ID, left)
	}
	finish := []string{kf.cus, kf.ids, kf.topics, kf.convs}
	for _, cv := range snap.convs {
		finish = append(finish, kf.conv(cv.ID))
	}
	if _, _, err := s.run(ctx, valkeyMergeFinish, finish, nil); err != nil {
		return Event{}, s.fail("merge: finish", from, err)
	}
	return merged, nil
}

// mergeSnapshot is what a frozen customer hands over.
type mergeSnapshot struct {
	events     []Event
	identities []Identity
	convs      []Conversation // by id, as the script resolves clashes in that order
	vers       []int64
}

func (s *ValkeyStore) snapshot(ctx context.Context, id string) (mergeSnapshot, error) {
	var snap mergeSnapshot
	for {
		page, err := s.Timeline(ctx, id, uint64(len(snap.events)), 1000)
		if err != nil {
			return snap, err
		}
		snap.events = append(snap.events, page...)
		if len(page) < 1000 {
			break
		}
	}
	k := s.keys(id)
	b := s.client.B()
	res := s.client.DoMulti(ctx, b.Hvals().Key(k.ids).Build(), b.Zrange().Key(k.convs).Min("0").Max("-1").Build())
	raw, err := res[0].AsStrSlice()
	if err != nil {
		return snap, s.fail("merge: read identities of", id, err)
	}
	for _, r := range raw {
		var ident Identity
		if err := json.Unmarshal([]byte(r), &ident); err != nil {
			return snap, fmt.Errorf("sessions: identity of %s: %w", id, err)
		}
		snap.identities = append(snap.identities, ident)
	}
	convIDs, err := res[1].AsStrSlice()
	if err != nil {
		return snap, s.fail("merge: read conversations of", id, err)
	}
	for _, cid := range convIDs {
		cv, ver, err := s.loadConversation(ctx, id, cid)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return snap, err
		}
		v, _ := strconv.ParseInt(ver, 10, 64)
		snap.convs = append(snap.convs, cv)
		snap.vers = append(snap.vers, v)
	}
	return snap, nil
}

// mergeArgs lays out valkeyMergeInto's conversation keys and its ARGV.
func (s *ValkeyStore) mergeArgs(into, from, evidence, author string, now time.Time, snap mergeSnapshot) ([]string, []string, error) {
	copies := make([]Event, len(snap.events))
	lastCopy := map[string]int{} // conversation id -> 1-based index of the last copy in it
	for i, ev := range snap.events {
		copies[i] = CopyForMerge(ev, into)
		copies[i].stamp(now)
		if ev.ConversationID != "" {
			lastCopy[ev.ConversationID] = i + 1
		}
	}
	// MergedEvent computes FirstSeq from the last sequence, which only the
	// script knows: give it one that yields the placeholder.
	head, mid, tail, err := mergedTemplate(MergedEvent(into, from, evidence, author, len(copies), firstSeqHole-2), now)
	if err != nil {
		return nil, nil, err
	}
	args := []string{from, s.channel, formatTime(now), head, mid, tail,
		strconv.Itoa(len(snap.identities)), strconv.Itoa(len(snap.convs)), strconv.Itoa(len(copies))}
	for _, id := range snap.identities {
		id.CustomerID = into
		args = append(args, id.Key(), string(mustJSON(id)))
	}
	var keys []string
	resolved := StatusResolved
	ki := s.keys(into)
	for i, cv := range snap.convs {
		keys = append(keys, ki.conv(cv.ID))
		cv.CustomerID = into
		args = append(args, convValues(cv, snap.vers[i]+1)...)
		args = append(args, strconv.Itoa(lastCopy[cv.ID]))
		rh, rt := "", ""
		if cv.Status.Active() {
			ev := ConversationUpdate{Status: &resolved, Event: Event{Author: author}}.Apply(&cv, now)
			ev.stamp(now)
			if rh, rt, err = eventTemplate(ev); err != nil {
				return nil, nil, err
			}
		}
		args = append(args, rh, rt)
	}
	for _, cp := range copies {
		h, t, err := eventTemplate(cp)
		if err != nil {
			return nil, nil, err
		}
		args = append(args, cp.DedupKey(), h, t)
	}
	return keys, args, nil
}

// mergedTemplate splits the customers_merged event around its sequence
// and, when there are copies, its first_seq: head + seq + mid [+ first
// + tail].
func mergedTemplate(ev Event, now time.Time) (head, mid, tail string, err error) {
	ev.stamp(now)
	head, rest, err := eventTemplate(ev)
	if err != nil {
		return "", "", "", err
	}
	hole := `"first_seq":` + strconv.FormatUint(firstSeqHole, 10)
	i := strings.Index(rest, hole)
	if i < 0 {
		return head, rest, "", nil // no copies, no first_seq
	}
	return head, rest[:i+len(`"first_seq":`)], rest[i+len(hole):], nil
}

// Feed and lifecycle.

func (s *ValkeyStore) Subscribe(ctx context.Context) (*Subscription, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	return s.hub.subscribe(ctx)
}

func (s *ValkeyStore) Ping(ctx context.Context) error {
	if err := s.ready(); err != nil {
		return err
	}
	if err := s.client.Do(ctx, s.client.B().Ping().Build()).Error(); err != nil {
		return s.fail("ping", "", err)
	}
	return nil
}

// Close ends the feed, closes subscriptions with ErrClosed and waits for
// calls in flight before closing the connections.
func (s *ValkeyStore) Close() error {
	if s.closed.Swap(true) {
		return ErrClosed
	}
	s.stop()
	<-s.done
	s.hub.close()
	s.client.Close()
	return nil
}
