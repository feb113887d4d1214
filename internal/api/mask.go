package api

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/omnigate/omnigate/sessions/redact"
)

// maskingWriter holds a rep's whole answer, success or error, until the
// handler is done and then writes it through redact.JSON. Masking the
// bytes that leave, rather than the fields a handler remembers to mask,
// is what keeps a new field or route from showing a rep a number. Answers
// are pages of at most a few hundred items, so holding one is cheap.
type maskingWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (m *maskingWriter) WriteHeader(code int) {
	if m.status == 0 {
		m.status = code
	}
}

func (m *maskingWriter) Write(b []byte) (int, error) {
	m.WriteHeader(http.StatusOK)
	return m.body.Write(b)
}

// flush writes the masked answer. A handler that panicked is not flushed:
// instrument answers 500 instead.
func (m *maskingWriter) flush() {
	if m.status == 0 {
		return
	}
	body := m.body.Bytes()
	switch {
	case len(body) == 0:
	case strings.HasPrefix(m.Header().Get("Content-Type"), "text/csv"):
		// A CSV export (reports): masked as text, cell by cell alike.
		body = []byte(redact.Text(string(body)))
	default:
		body = redact.JSON(body)
	}
	m.ResponseWriter.WriteHeader(m.status)
	_, _ = m.ResponseWriter.Write(body)
}
