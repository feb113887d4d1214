package webhooks

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// TestIntakeBothForms: /v1/events takes today's form and the Standard
// Webhooks envelope (the shape Omnigate's own deliveries have), and the
// two record the same thing: the customer, its update, the topic's
// conversation and the integrator's data on the timeline.
func TestIntakeBothForms(t *testing.T) {
	t.Parallel()
	r := newIntake(t)
	ctx := context.Background()
	forms := []struct{ name, email, body string }{
		{"plain", "plain@example.com", `{"customer":{"email":"Plain@Example.com"},"type":"order.shipped",` +
			`"data":{"order":"7","carrier":"SF"},"update":{"vip":true,"tags":["ecommerce"]},"conversation":{"topic":"order-7","open":true}}`},
		{"envelope", "env@example.com", `{"type":"order.shipped","timestamp":"2026-05-01T10:00:00.5Z","data":{` +
			`"customer":{"email":"Env@Example.com"},"order":"7","update":{"vip":true,"tags":["ecommerce"]},` +
			`"carrier":"SF","conversation":{"topic":"order-7","open":true}}}`},
	}
	for i, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			id := "wh_form_" + strconv.Itoa(i)
			resp := decodeResp(t, r.post(id, f.body, time.Now(), nil))
			c, err := r.store.Customer(ctx, resp.CustomerID)
			if err != nil {
				t.Fatal(err)
			}
			if !c.VIP || len(c.Tags) != 1 || c.Tags[0] != "ecommerce" {
				t.Fatalf("customer not updated: %+v", c)
			}
			found, err := r.store.FindCustomers(ctx, sessions.CustomerQuery{Email: f.email})
			if err != nil || len(found) != 1 || found[0].ID != c.ID {
				t.Fatalf("customer by %s: %+v %v", f.email, found, err)
			}
			cs, _, _ := r.store.Conversations(ctx, sessions.ConversationQuery{CustomerID: c.ID})
			if len(cs) != 1 || cs[0].Topic != "order-7" || cs[0].ID != resp.ConversationID {
				t.Fatalf("conversations %+v, answer %+v", cs, resp)
			}
			tl, _ := r.store.Timeline(ctx, c.ID, 0, 100)
			var p IntegratorPayload
			for _, ev := range tl {
				if ev.ID == resp.EventID {
					if err := json.Unmarshal(ev.Payload, &p); err != nil {
						t.Fatal(err)
					}
				}
			}
			var data map[string]string
			if err := json.Unmarshal(p.Data, &data); err != nil {
				t.Fatalf("data %s: %v", p.Data, err)
			}
			if p.Type != "order.shipped" || p.Integration != "shop" || len(data) != 2 || data["order"] != "7" || data["carrier"] != "SF" {
				t.Fatalf("payload %+v, data %v", p, data)
			}
			if want := f.name == "envelope"; p.Timestamp.Equal(time.Date(2026, 5, 1, 10, 0, 0, 5e8, time.UTC)) != want {
				t.Fatalf("payload timestamp %v", p.Timestamp)
			}
			// A retry of the same webhook-id is a replay in either form.
			w := r.post(id, f.body, time.Now(), nil)
			if got := decodeResp(t, w); got != resp || w.Header().Get("Omnigate-Duplicate") != "true" {
				t.Fatalf("replay: %+v %v", got, w.Header())
			}
		})
	}
}

// TestIntakeEnvelopeRefusals: a body that mixes the two forms, or an
// envelope that is incomplete, is refused saying what to change, and
// stores nothing.
func TestIntakeEnvelopeRefusals(t *testing.T) {
	t.Parallel()
	r := newIntake(t)
	const ts = `"timestamp":"2026-05-01T10:00:00Z"`
	tests := []struct {
		name, body string
		code       int
		want       string
	}{
		{"mixed: customer outside data", `{"type":"x",` + ts + `,"customer":{"email":"m@x.y"},"data":{}}`, 400, `both forms`},
		{"mixed: update outside data", `{"type":"x",` + ts + `,"data":{"customer":{"email":"m@x.y"}},"update":{"vip":true}}`, 400, `both forms`},
		{"mixed: conversation outside data", `{"type":"x",` + ts + `,"data":{"customer":{"email":"m@x.y"}},"conversation":{"topic":"t","open":true}}`, 400, `both forms`},
		{"ambiguous: customer only inside data, no timestamp", `{"type":"x","data":{"customer":{"email":"m@x.y"}}}`, 400, `read only in the Standard Webhooks envelope`},
		{"envelope without data", `{"type":"x",` + ts + `}`, 400, `data.customer`},
		{"envelope with data null", `{"type":"x",` + ts + `,"data":null}`, 400, `data.customer`},
		{"envelope data not an object", `{"type":"x",` + ts + `,"data":[1]}`, 400, `data`},
		{"envelope without customer", `{"type":"x",` + ts + `,"data":{"order":"1"}}`, 400, `data.customer`},
		{"envelope bad timestamp", `{"type":"x","timestamp":"yesterday","data":{"customer":{"email":"m@x.y"}}}`, 400, `timestamp`},
		{"envelope timestamp not a string", `{"type":"x","timestamp":1714557600,"data":{"customer":{"email":"m@x.y"}}}`, 400, `timestamp`},
		{"envelope unknown field", `{"type":"x",` + ts + `,"data":{"customer":{"email":"m@x.y"}},"extra":1}`, 400, `"malformed_json"`},
		{"envelope customer unknown field", `{"type":"x",` + ts + `,"data":{"customer":{"email":"m@x.y","fax":"1"}}}`, 400, `data.customer`},
		{"envelope update unknown field", `{"type":"x",` + ts + `,"data":{"customer":{"email":"m@x.y"},"update":{"colour":"red"}}}`, 400, `data.update`},
		{"envelope bad tier", `{"type":"x",` + ts + `,"data":{"customer":{"email":"m@x.y"},"update":{"tier":"Z"}}}`, 400, `tier`},
		{"envelope trailing data", `{"type":"x",` + ts + `,"data":{"customer":{"email":"m@x.y"}}} {}`, 400, `"malformed_json"`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := r.post("wh_env_"+strconv.Itoa(i), tt.body, time.Now(), nil)
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.want) {
				t.Fatalf("%d %s, want %d containing %s", w.Code, w.Body, tt.code, tt.want)
			}
		})
	}
	if found, err := r.store.FindCustomers(context.Background(), sessions.CustomerQuery{Email: "m@x.y"}); err != nil || len(found) != 0 {
		t.Fatalf("a refused event stored its customer: %+v %v", found, err)
	}
}

// TestParseEventEnvelope: ParseEvent reads both forms alike.
func TestParseEventEnvelope(t *testing.T) {
	t.Parallel()
	plain, pid, err := ParseEvent([]byte(`{"customer":{"phone":"138 1234 5678"},"type":"t","update":{"vip":true}}`), "CN")
	if err != nil {
		t.Fatal(err)
	}
	env, eid, err := ParseEvent([]byte(`{"type":"t","timestamp":"2026-05-01T10:00:00Z","data":{"customer":{"phone":"138 1234 5678"},"update":{"vip":true}}}`), "CN")
	if err != nil {
		t.Fatal(err)
	}
	if pid != eid || plain.Type != env.Type || env.Update == nil || env.Update.VIP == nil || !*env.Update.VIP || len(env.Data) != 0 {
		t.Fatalf("plain %+v %+v, envelope %+v %+v", plain, pid, env, eid)
	}
}
