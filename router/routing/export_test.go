package routing

// ReassignAway runs the check the service runs every second, so a test
// with a moved clock need not wait for it.
func ReassignAway(s *Service) { s.reassignAway() }
