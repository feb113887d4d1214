package webhooks

import (
	"github.com/omnigate/omnigate/internal/api"
)

// This package's routes are served by internal/api (Service.Routes), which
// writes their errors from its one catalogue: handlers return an
// *api.Error for a refusal of their own, and errors from the store and the
// outbox as they are.

// outboxError is a sentinel that errors.Is also takes for like.
type outboxError struct {
	msg  string
	like error
}

func (e *outboxError) Error() string        { return e.msg }
func (e *outboxError) Is(target error) bool { return target == e.like }

func apiError(code api.Code, msg string) *api.Error { return &api.Error{Code: code, Message: msg} }
