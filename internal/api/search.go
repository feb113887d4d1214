package api

import (
	"net/url"
	"strings"

	"github.com/omnigate/omnigate/sessions"
)

// customerQuery reads a customer search: phone, email, name and tag
// criteria, and q, one search box's text, read as the criterion it looks
// like: "#vip" a tag, anything with '@' an email, what normalises as a
// phone number (national numbers in region) a phone, else a name. Phone
// numbers are normalised ("+86 138-1234-5678" finds +8613812345678),
// emails lowercased.
func customerQuery(q url.Values, region string) (sessions.CustomerQuery, error) {
	cq := sessions.CustomerQuery{Phone: q.Get("phone"), Email: q.Get("email"), Name: q.Get("name"), Tag: q.Get("tag")}
	if text := strings.TrimSpace(q.Get("q")); text != "" {
		e164, perr := sessions.NormalizePhone(text, region)
		var field *string
		switch {
		case strings.HasPrefix(text, "#") && len(text) > 1:
			field, text = &cq.Tag, text[1:]
		case strings.Contains(text, "@"):
			field = &cq.Email
		case perr == nil:
			field, text = &cq.Phone, e164
		default:
			field = &cq.Name
		}
		if *field != "" && *field != text {
			return cq, errorf(CodeInvalid, "q and the criterion it reads as (%s) disagree", criterion(&cq, field))
		}
		*field = text
	}
	cq.Email = strings.ToLower(cq.Email)
	if cq.Phone != "" {
		e164, err := sessions.NormalizePhone(cq.Phone, region)
		if err != nil {
			// The message would echo the number; say what is wrong instead.
			return cq, errorf(CodeInvalid, "phone must be a number with its country code, such as +8613812345678 (URL-encode + as %%2B)%s",
				map[bool]string{true: ", or a national number of " + region}[region != ""])
		}
		cq.Phone = e164
	}
	if len(cq.Name) > 200 || len(cq.Tag) > 200 || len(cq.Email) > 320 {
		return cq, errorf(CodeInvalid, "search text is longer than 200 bytes")
	}
	return cq, nil
}

func criterion(cq *sessions.CustomerQuery, field *string) string {
	switch field {
	case &cq.Tag:
		return "tag"
	case &cq.Email:
		return "email"
	case &cq.Phone:
		return "phone"
	}
	return "name"
}
