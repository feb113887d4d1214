package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/sessions"
)

// This package answers with internal/api's error catalogue (api.Code) in
// the same JSON shape, {"error":{"code","message"}}. api's writer is
// unexported, so writeError below is a minimal copy of it; once api
// exports one (WriteError), this file should call it instead.

func apiError(code api.Code, msg string) *api.Error { return &api.Error{Code: code, Message: msg} }

// toAPIError places an error from the store or the outbox in the
// catalogue; server errors get a fixed message (the cause is logged).
func toAPIError(err error) (e *api.Error, server bool) {
	if e, ok := errors.AsType[*api.Error](err); ok {
		return e, false
	}
	switch {
	case errors.Is(err, sessions.ErrInvalid):
		return apiError(api.CodeInvalid, err.Error()), false
	case errors.Is(err, sessions.ErrNotFound), errors.Is(err, ErrNotFound):
		return apiError(api.CodeNotFound, err.Error()), false
	case errors.Is(err, sessions.ErrMerged):
		return apiError(api.CodeMerged, err.Error()), false
	case errors.Is(err, sessions.ErrIdentityTaken):
		return apiError(api.CodeIdentityTaken, err.Error()), false
	case errors.Is(err, sessions.ErrConflict), errors.Is(err, ErrConflict):
		return apiError(api.CodeConflict, err.Error()), false
	case errors.Is(err, sessions.ErrClosed), errors.Is(err, ErrClosed),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return apiError(api.CodeStoreUnavailable, "the store is unavailable; retry later"), true
	}
	return apiError(api.CodeInternal, "internal error"), true
}

func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e, server := toAPIError(err)
	status := e.Code.Status()
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if server || status >= 500 {
		log.LogAttrs(r.Context(), slog.LevelError, "webhooks request failed", slog.String("route", r.Pattern),
			slog.Int("status", status), slog.String("code", string(e.Code)), slog.Any("error", err))
	}
	var body struct {
		Error struct {
			Code    api.Code `json:"code"`
			Message string   `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = e.Code, e.Message
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
