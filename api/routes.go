package api

import (
	"net/http"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"

	ogmav1 "github.com/ogma-dev/ogma/proto/ogma/v1"
)

// route is one REST path template of the service and its method.
type route struct {
	method string
	path   *regexp.Regexp
}

// routes are the service's REST routes, read from the HTTP rules of the
// .proto, so that a 405 can name the methods a path takes (Allow) without a
// second list of them.
var routes = func() []route {
	var out []route
	methods := ogmav1.File_ogma_v1_ogma_proto.Services().ByName("OgmaService").Methods()
	for i := range methods.Len() {
		rule, _ := proto.GetExtension(methods.Get(i).Options(), annotations.E_Http).(*annotations.HttpRule)
		if rule == nil {
			continue
		}
		for method, tmpl := range map[string]string{http.MethodGet: rule.GetGet(), http.MethodPost: rule.GetPost(),
			http.MethodPut: rule.GetPut(), http.MethodDelete: rule.GetDelete(), http.MethodPatch: rule.GetPatch()} {
			if tmpl != "" {
				out = append(out, route{method: method, path: templatePattern(tmpl)})
			}
		}
	}
	return out
}()

// templatePattern turns a path template ("/v1/people/{id}",
// "/v1/integrations/{vendor}:validate") into a pattern of the paths it
// takes: a {variable} is one segment.
func templatePattern(tmpl string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, part := range regexp.MustCompile(`\{[^}]*\}`).Split(tmpl, -1) {
		if b.Len() > 1 {
			b.WriteString(`[^/:]+`)
		}
		b.WriteString(regexp.QuoteMeta(part))
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// allowed returns the methods path takes, sorted.
func allowed(path string) []string {
	var out []string
	for _, r := range routes {
		if r.path.MatchString(path) && !slices.Contains(out, r.method) {
			out = append(out, r.method)
		}
	}
	slices.Sort(out)
	return out
}
