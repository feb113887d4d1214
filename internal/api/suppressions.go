package api

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/internal/auth"
)

// The do-not-contact list's routes; who may use them is in contact.go.

func (s *Server) listSuppressions(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	q, err := Query(r, "cursor", "limit")
	if err != nil {
		return err
	}
	deps, err := s.policy()
	if err != nil {
		return err
	}
	limit, err := IntParam(q, "limit")
	if err != nil {
		return err
	}
	list, next, err := deps.Suppressions.List(r.Context(), q.Get("cursor"), limit)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, NewPage(list, next))
	return nil
}

// suppressionRequest names one do-not-contact entry.
type suppressionRequest struct {
	Kind    string `json:"kind"`
	Value   string `json:"value"`
	Channel string `json:"channel"`
	Purpose string `json:"purpose"`
	// Reason is for people ("asked on the phone"); DELETE ignores it.
	Reason string `json:"reason"`
}

// Sources of the entries the API writes (contact.Suppression.Source).
const (
	sourceAPI    = "api"
	sourceImport = "import"
)

// addSuppression adds one entry: 201 with it as stored, or 200 with the
// entry already there (adding is idempotent).
func (s *Server) addSuppression(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	deps, err := s.policy()
	if err != nil {
		return err
	}
	var req suppressionRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	// The store takes any lowercase word; an entry for a channel or
	// purpose the policy does not know would silently hold nothing back.
	if req.Channel != "" && !slices.Contains(contact.Channels(), req.Channel) {
		return errorf(CodeInvalid, "channel: %q is not a channel (%s, or empty for all)", req.Channel, strings.Join(contact.Channels(), ", "))
	}
	if purposes := deps.Policy.Purposes(); req.Purpose != "" && !slices.Contains(purposes, req.Purpose) {
		return errorf(CodeInvalid, "purpose: %q is not a configured purpose (%s, or empty for all)", req.Purpose, strings.Join(purposes, ", "))
	}
	if req.Kind == contact.KindCustomer {
		if _, err := s.store.Customer(r.Context(), req.Value); err != nil {
			return err
		}
	}
	stored, found, err := s.suppression(r.Context(), deps, req)
	if err != nil {
		return err
	}
	if found {
		WriteJSON(w, http.StatusOK, stored)
		return nil
	}
	if err := deps.Suppressions.Add(r.Context(), contact.Suppression{Kind: req.Kind, Value: req.Value, Channel: req.Channel,
		Purpose: req.Purpose, Reason: req.Reason, Source: sourceAPI, At: s.now()}); err != nil {
		return err
	}
	if stored, found, err = s.suppression(r.Context(), deps, req); err != nil {
		return err
	}
	if !found {
		return errors.New("api: an added suppression is not in the list")
	}
	WriteJSON(w, http.StatusCreated, stored)
	return nil
}

// suppression finds the one entry req names, as stored (its value
// normalized).
func (s *Server) suppression(ctx context.Context, deps *ContactDeps, req suppressionRequest) (contact.Suppression, bool, error) {
	found, err := deps.Suppressions.Match(ctx, []contact.Key{{Kind: req.Kind, Value: req.Value}}, req.Channel, req.Purpose)
	if err != nil {
		return contact.Suppression{}, false, err
	}
	// Match also returns the entries for all channels or all purposes.
	i := slices.IndexFunc(found, func(e contact.Suppression) bool { return e.Channel == req.Channel && e.Purpose == req.Purpose })
	if i < 0 {
		return contact.Suppression{}, false, nil
	}
	return found[i], true, nil
}

// removeSuppression deletes one entry named in the query (kind, value,
// channel, purpose) or, since a value can be an email or a phone number
// that is better kept out of URLs, in a JSON body.
func (s *Server) removeSuppression(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	q, err := Query(r, "kind", "value", "channel", "purpose")
	if err != nil {
		return err
	}
	deps, err := s.policy()
	if err != nil {
		return err
	}
	req := suppressionRequest{Kind: q.Get("kind"), Value: q.Get("value"), Channel: q.Get("channel"), Purpose: q.Get("purpose")}
	var body suppressionRequest
	if err := decodeJSON(r, &body, true); err != nil {
		return err
	}
	if body != (suppressionRequest{}) {
		if len(q) > 0 {
			return errorf(CodeInvalid, "name the entry in the query or in the body, not both")
		}
		req = body
	}
	if err := deps.Suppressions.Remove(r.Context(), req.Kind, req.Value, req.Channel, req.Purpose); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type importResponse struct {
	Imported int `json:"imported"`
}

// importSuppressions adds every line of a CSV body, or none: a bad line
// refuses the whole file (400, every bad line listed by number).
func (s *Server) importSuppressions(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	deps, err := s.policy()
	if err != nil {
		return err
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "text/csv" {
		return errorf(CodeUnsupportedMedia, "send the body as Content-Type: text/csv")
	}
	// Read it all first, so a body over the cap is refused before any
	// line is added.
	b, err := readBody(w, r, s.cfg.maxBody())
	if err != nil {
		return err
	}
	n, err := contact.ImportCSV(r.Context(), deps.Suppressions, bytes.NewReader(b), sourceImport, s.now())
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, importResponse{Imported: n})
	return nil
}

// exportSuppressions streams the list as CSV, in ImportCSV's format.
func (s *Server) exportSuppressions(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	deps, err := s.policy()
	if err != nil {
		return err
	}
	out := &csvWriter{w: w}
	if err := contact.ExportCSV(r.Context(), deps.Suppressions, out); err != nil {
		if !out.started {
			return err
		}
		// Half a file has gone out as if whole: cut the connection so the
		// client sees a failed download, not a short list.
		s.log.LogAttrs(r.Context(), slog.LevelError, "api: suppressions export failed part way",
			slog.String("request_id", requestID(r.Context())), slog.Any("error", err))
		panic(http.ErrAbortHandler)
	}
	if !out.started { // an empty list still has its header
		out.start()
	}
	return nil
}

// csvWriter sets the CSV headers on the first write, so that an export
// failing before it wrote anything still answers a JSON error.
type csvWriter struct {
	w       http.ResponseWriter
	started bool
}

func (c *csvWriter) start() {
	c.started = true
	h := c.w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="suppressions.csv"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	c.w.WriteHeader(http.StatusOK)
}

func (c *csvWriter) Write(b []byte) (int, error) {
	if !c.started {
		c.start()
	}
	return c.w.Write(b)
}

// customerSuppressions lists the entries that apply to one customer.
func (s *Server) customerSuppressions(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	deps, err := s.policy()
	if err != nil {
		return err
	}
	c, err := s.store.Customer(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	list, err := deps.Policy.CustomerSuppressions(r.Context(), c.ID)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, NewPage(list, ""))
	return nil
}
