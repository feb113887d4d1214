package api

import (
	"testing"

	"github.com/omnigate/omnigate/sessions"
)

func TestPickReplyChannel(t *testing.T) {
	t.Parallel()
	conv := sessions.Conversation{ID: "c1", Channel: sessions.ChannelWebchat}
	in := func(conv, channel string) sessions.Event {
		return sessions.Event{Kind: sessions.KindMessageIn, ConversationID: conv, Channel: channel}
	}
	out := func(channel string) sessions.Event {
		return sessions.Event{Kind: sessions.KindMessageOut, ConversationID: "c1", Channel: channel}
	}
	tests := []struct {
		name string
		evs  []sessions.Event
		want string
	}{
		{"empty timeline", nil, sessions.ChannelWebchat},
		{"only the conversation's channel", []sessions.Event{in("c1", sessions.ChannelWebchat)}, sessions.ChannelWebchat},
		{"customer moved to wechat", []sessions.Event{in("c1", sessions.ChannelWebchat), out(sessions.ChannelWebchat),
			in("c1", sessions.ChannelWeChat)}, sessions.ChannelWeChat},
		{"customer came back to webchat", []sessions.Event{in("c1", sessions.ChannelWeChat),
			in("c1", sessions.ChannelWebchat)}, sessions.ChannelWebchat},
		{"replies are not the customer", []sessions.Event{in("c1", sessions.ChannelWeChat), out(sessions.ChannelSMS)}, sessions.ChannelWeChat},
		{"another conversation's message", []sessions.Event{in("c1", sessions.ChannelWeChat),
			in("c2", sessions.ChannelSMS)}, sessions.ChannelWeChat},
		{"no message in this conversation", []sessions.Event{in("c2", sessions.ChannelSMS),
			{Kind: sessions.KindNote, ConversationID: "c1", Channel: sessions.ChannelSystem}}, sessions.ChannelWebchat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := pickReplyChannel(tc.evs, conv); got != tc.want {
				t.Errorf("pickReplyChannel = %q, want %q", got, tc.want)
			}
		})
	}
}
