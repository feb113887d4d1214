package webhooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/omnigate/omnigate/internal/api"
)

// envelope is the Standard Webhooks form of a POST /v1/events body, the
// shape Omnigate's own deliveries have (Body): {"type", "timestamp",
// "data"}, with the customer, update and conversation inside data and
// the rest of data the integrator's own payload.
type envelope struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// ours are the fields of an event that Omnigate reads rather than keeps:
// at the top of the plain form, inside data in the envelope.
var ours = []string{"customer", "update", "conversation"}

// decodeEvent decodes a body in either form into an EventRequest. A body
// with "timestamp" at the top is an envelope; any other is the plain
// form. A body that is neither cleanly (ours at the top beside a
// timestamp, or the customer only inside data without one) is refused
// saying so, rather than read one way and silently dropping the rest.
// Decoding stays strict: unknown fields outside data are errors, and
// ours inside data are decoded as strictly as at the top.
func decodeEvent(body []byte) (EventRequest, error) {
	var top map[string]json.RawMessage
	if err := api.UnmarshalJSON(body, &top); err != nil {
		return EventRequest{}, err
	}
	if _, ok := top["timestamp"]; !ok {
		if _, ok := top["customer"]; !ok && dataHas(top["data"], "customer") {
			return EventRequest{}, apiError(api.CodeInvalid, "customer is missing: data.customer is read only in the "+
				"Standard Webhooks envelope, which has a timestamp; send timestamp, or customer beside type")
		}
		var req EventRequest
		err := api.UnmarshalJSON(body, &req)
		return req, err
	}
	for _, k := range ours {
		if _, ok := top[k]; ok {
			return EventRequest{}, apiError(api.CodeInvalid, "the body mixes both forms: with timestamp (the Standard "+
				"Webhooks envelope) put "+k+" inside data; without it, leave timestamp out")
		}
	}
	var env envelope
	if err := api.UnmarshalJSON(body, &env); err != nil {
		return EventRequest{}, err
	}
	ts, err := time.Parse(time.RFC3339Nano, env.Timestamp)
	if err != nil {
		return EventRequest{}, apiError(api.CodeInvalid, fmt.Sprintf("timestamp: %q is not an RFC 3339 time", env.Timestamp))
	}
	req := EventRequest{Type: env.Type, Timestamp: ts.UTC()}
	data := bytes.TrimSpace(env.Data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return EventRequest{}, apiError(api.CodeInvalid, "data.customer is required in the envelope: data is missing")
	}
	var fields map[string]json.RawMessage
	if data[0] != '{' || json.Unmarshal(data, &fields) != nil {
		return EventRequest{}, apiError(api.CodeInvalid, "data must be a JSON object with the customer in data.customer")
	}
	if _, ok := fields["customer"]; !ok {
		return EventRequest{}, apiError(api.CodeInvalid, "data.customer is required in the envelope")
	}
	dst := map[string]any{"customer": &req.Customer, "update": &req.Update, "conversation": &req.Conversation}
	for _, k := range ours {
		raw, ok := fields[k]
		if !ok {
			continue
		}
		if err := api.UnmarshalJSON(raw, dst[k]); err != nil {
			if e, ok := errors.AsType[*api.Error](err); ok {
				return EventRequest{}, apiError(e.Code, "data."+k+": "+e.Message)
			}
			return EventRequest{}, err
		}
		delete(fields, k)
	}
	if len(fields) > 0 {
		// The integrator's own fields, kept on the timeline as data (as
		// JSON: key order and white space are not kept).
		if req.Data, err = json.Marshal(fields); err != nil {
			return EventRequest{}, err
		}
	}
	return req, nil
}

// dataHas says whether raw is a JSON object with key.
func dataHas(raw json.RawMessage, key string) bool {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return false
	}
	_, ok := fields[key]
	return ok
}
