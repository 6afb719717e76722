package slackui

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func FuzzDecodeInteraction(f *testing.F) {
	for _, id := range []string{"qa_approve", "qa_reject", "prod_deploy", "build_close", "open_qa", "prod_rollback",
		"qa_teardown", "qa_keep"} {
		f.Add(form(clickJSON(click{actionID: id, value: "BUILD1"})))
	}
	f.Add(form(clickJSON(click{actionID: ActionProdRollbackTo, value: `{"build":"BUILD1","image":"hello:1.3.2"}`})))
	f.Add(form(clickJSON(click{actionID: ActionProdRollbackTo, value: `{"build":"BUILD1"`})))
	f.Add(form(viewSubmissionJSON(RejectCallbackID, "BUILD1", reasonState("  broken login  "))))
	f.Add(form(viewSubmissionJSON(RejectCallbackID, "", "")))
	f.Add(form(viewSubmissionJSON(RollbackCallbackID, `{"build":"BUILD1","image":"hello:1.3.2","channel":"D1"}`,
		reasonState("bad deploy"))))
	f.Add(form(viewSubmissionJSON(RollbackCallbackID, "BUILD1", "")))
	for _, garbage := range []string{
		"", "payload=", "payload", "payload=%", "payload=%zz", "a=b;c=d", "payload=null", "payload={}",
		"payload=[]", "payload=\"x\"", "\x00\xff\xfe", "payload=%7B%22user%22%3A%7B%22id%22%3A%22U1%22%7D%7D",
		string(form(`{"type":"block_actions","user":{"id":"U1"},"actions":[null]}`)),
		string(form(`{"type":"block_actions","user":{"id":"U1"},"actions":[{"block_id":"b"}]}`)),
		string(form(`{"type":"block_actions","user":{"id":"U1"},"actions":[{"block_id":1}]}`)),
		string(form(`{"type":"block_actions","user":{"id":"U1"},"state":null,"actions":{}}`)),
		string(form(`{"type":"view_submission","user":{"id":"U1"},"view":{"callback_id":"qa_reject_reason","state":{"values":{"reason":null}}}}`)),
		string(form(`{"type":"view_submission","user":{"id":"U1"},"view":{"callback_id":"qa_reject_reason","state":null}}`)),
		string(form(`{"type":"view_submission","user":{"id":""},"view":null}`)),
	} {
		f.Add([]byte(garbage))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, err := DecodeInteraction(body)
		if err != nil {
			return
		}
		if cb.User.ID == "" {
			t.Fatalf("decoded a callback without a user from %q", body)
		}
		// Whatever decodes is handled without a panic, and is done in the
		// name of the user who sent it.
		a, r := &fakeActor{}, &fakeResponder{}
		h := newHandlers(a, r)
		answer := h.Interaction(context.Background(), cb)
		h.Wait()
		if answer != nil && cb.Type != slack.InteractionTypeViewSubmission {
			t.Errorf("answered %v to a %q", answer, cb.Type)
		}
		calls := a.snapshot()
		for _, act := range append(calls.Acts, calls.Allowed...) {
			if act.User != cb.User.ID {
				t.Errorf("acted for %q on a callback from %q", act.User, cb.User.ID)
			}
		}
	})
}

func FuzzVerify(f *testing.F) {
	click := form(clickJSON(click{actionID: "qa_approve", value: "BUILD1"}))
	tampered := bytes.Clone(click)
	tampered[bytes.Index(tampered, []byte("BUILD1"))+5] = '2'
	f.Add(testSecret, click, click)
	f.Add(testSecret, click, tampered)
	f.Add(testSecret, click, click[:len(click)-1])
	f.Add(testSecret, click, append(bytes.Clone(click), '&'))
	f.Add(testSecret, []byte("payload=%7B%7D"), []byte("payload={}"))
	f.Add(testSecret, []byte(""), []byte(""))
	f.Add(testSecret, []byte(""), []byte("x"))
	f.Add("s", []byte("a"), []byte("a "))
	f.Add("", []byte("x"), []byte("x"))
	f.Fuzz(func(t *testing.T, secret string, signedBody, sentBody []byte) {
		now := time.Now()
		h := sign(secret, now, signedBody)
		err := Verify(h, sentBody, secret)
		switch {
		case secret == "":
			if err == nil {
				t.Fatal("accepted a request with no secret configured")
			}
		case !bytes.Equal(signedBody, sentBody):
			if err == nil {
				t.Fatalf("accepted %q signed as %q", sentBody, signedBody)
			}
		default:
			if err != nil {
				t.Fatalf("refused a correctly signed body: %v", err)
			}
		}
		if err := Verify(h, sentBody, secret+"x"); err == nil {
			t.Fatal("accepted a signature made with another secret")
		}
		moved := h.Clone()
		moved.Set("X-Slack-Request-Timestamp", strconv.FormatInt(now.Unix()+1, 10))
		if err := Verify(moved, sentBody, secret); err == nil {
			t.Fatal("accepted a signature made for another timestamp")
		}
	})
}
