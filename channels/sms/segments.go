package sms

import "unicode/utf16"

// Encoding is how an SMS carries its text.
type Encoding string

const (
	// GSM7 packs 7-bit characters of the GSM 03.38 alphabet: 160 in one
	// message, 153 per part of a concatenated one (the user data header
	// takes 7). Characters of the extension table cost two (an escape and
	// the character).
	GSM7 Encoding = "GSM-7"
	// UCS2 is UTF-16: 70 code units in one message, 67 per part. A
	// character outside the Basic Multilingual Plane (most emoji) costs two.
	UCS2 Encoding = "UCS-2"
)

// Segments describes how a text goes over the air.
type Segments struct {
	Encoding Encoding `json:"encoding"`
	// Count is how many messages the network bills; 0 for an empty text.
	Count int `json:"segments"`
	// Units is the length in septets (GSM-7) or UTF-16 code units (UCS-2).
	Units int `json:"units"`
}

// gsmBasic is the GSM 03.38 default alphabet (one septet each), as Unicode.
// 0x1B (the escape to the extension table) is not a character of its own.
const gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsmExtension is the extension table: two septets each (escape, char).
const gsmExtension = "\f^{}\\[~]|€"

var gsmCost = func() map[rune]int {
	m := make(map[rune]int, 140)
	for _, r := range gsmBasic {
		m[r] = 1
	}
	for _, r := range gsmExtension {
		m[r] = 2
	}
	return m
}()

// Count works out the encoding and segments of text. A text is GSM-7 when
// every character is in the GSM alphabet or its extension table, UCS-2
// otherwise (one Chinese character or emoji makes the whole message UCS-2).
//
// Concatenated parts never split a character: an escaped GSM character or
// a UTF-16 surrogate pair that would straddle a boundary starts the next
// part, as handsets and providers do, so the count can exceed
// ceil(units/153) or ceil(units/67).
func Count(text string) Segments {
	if text == "" {
		return Segments{Encoding: GSM7}
	}
	costs := make([]int, 0, len(text))
	enc := GSM7
	for _, r := range text {
		c, ok := gsmCost[r]
		if !ok {
			enc = UCS2
			break
		}
		costs = append(costs, c)
	}
	single, part := 160, 153
	if enc == UCS2 {
		single, part = 70, 67
		costs = costs[:0]
		for _, r := range text {
			if utf16.RuneLen(r) == 2 {
				costs = append(costs, 2)
			} else {
				costs = append(costs, 1) // including U+FFFD for invalid UTF-8
			}
		}
	}
	units := 0
	for _, c := range costs {
		units += c
	}
	if units <= single {
		return Segments{Encoding: enc, Count: 1, Units: units}
	}
	count, used := 1, 0
	for _, c := range costs {
		if used+c > part {
			count++
			used = 0
		}
		used += c
	}
	return Segments{Encoding: enc, Count: count, Units: units}
}
