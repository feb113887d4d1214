package inbox

// Flush sends the list views' pending changes now, so tests need not wait
// for ListFlushInterval.
func (h *Hub) Flush() { h.flush() }
