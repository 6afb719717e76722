package slacktest

import (
	"net/http"

	"github.com/promotebot/promotebot/slackui/fakeslack"
)

// viewsOpen implements views.open: any trigger ID is taken; the view is
// stored, and answered with the fields Slack adds.
func (s *Server) viewsOpen(p map[string]string) answer {
	if p["trigger_id"] == "" {
		return errAnswer("invalid_trigger_id")
	}
	view, code := s.ws.OpenView(p["view"])
	if code != "" {
		return errAnswer(code)
	}
	s.views = append(s.views, []byte(p["view"]))
	return answer{status: http.StatusOK, body: fakeslack.OK(map[string]any{"view": view})}
}
