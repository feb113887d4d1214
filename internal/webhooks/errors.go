package webhooks

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/sessions"
)

// This package answers with internal/api's error catalogue (api.Code),
// written by api.WriteError, so clients see one shape on every /v1 route.

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
	if status := e.Code.Status(); server || status == 0 || status >= 500 {
		log.LogAttrs(r.Context(), slog.LevelError, "webhooks request failed", slog.String("route", r.Pattern),
			slog.Int("status", status), slog.String("code", string(e.Code)), slog.Any("error", err))
	}
	api.WriteError(w, e)
}
