package api_test

import (
	"encoding/json"
	"testing"
)

func TestListReps(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tt := range []struct {
		token string
		want  int
	}{
		{aliceToken, 200},
		{carolToken, 200},
		{adminToken, 200},
		{integratorToken, 403},
		{"", 401},
	} {
		resp := f.do("GET", "/v1/reps", tt.token, "")
		if resp.status != tt.want {
			t.Fatalf("token %q: status %d %s, want %d", tt.token, resp.status, resp.body, tt.want)
		}
	}
	resp := f.do("GET", "/v1/reps", aliceToken, "")
	var page struct {
		Data []struct {
			ID, Name, Role, Token string
		} `json:"data"`
		NextCursor *string `json:"next_cursor"`
	}
	if err := json.Unmarshal(resp.body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 3 || page.Data[0].ID != "alice" || page.Data[1].ID != "bob" || page.Data[2].ID != "carol" {
		t.Fatalf("reps = %+v, want alice, bob, carol", page.Data)
	}
	if page.Data[0].Name != "alice" || page.Data[2].Role != "supervisor" || page.Data[0].Token != "" {
		t.Errorf("reps = %+v (name defaults to id, roles kept, no token)", page.Data)
	}
	if page.NextCursor == nil || *page.NextCursor != "" {
		t.Errorf("next_cursor must be present and empty: %s", resp.body)
	}
	if r := f.do("GET", "/v1/reps?x=1", aliceToken, ""); r.status != 400 {
		t.Errorf("unknown query parameter: %d", r.status)
	}
}
