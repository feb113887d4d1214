package api

import "github.com/omnigate/omnigate/contact"

// ContactDeps is the contact policy and the stores behind it, for the
// routes that show or change them.
type ContactDeps struct {
	Policy       *contact.Policy
	Ledger       contact.Ledger
	Suppressions contact.Suppressions
}
