package api

// The tests in this file keep api/openapi.yaml honest: they compare it with the route table, the problem
// types, the response types and the limits of the handlers. They need neither PostgreSQL nor Temporal.
//
// routes() wraps its *mux.Router in middleware, so the router cannot be walked from here. The route table
// is read instead from the source of routes() (go/ast), and every route found there is then requested from
// the real handler to prove the router serves it, and every method a documented path lacks must answer 405.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ticketing/concert/booking"
)

// ---------------------------------------------------------------------------------------------------------
// The document, as generic YAML.

type oaDoc struct {
	t    *testing.T
	root map[string]any
}

// loadOpenAPI parses the embedded document; it fails the test unless it is one YAML mapping.
func loadOpenAPI(t *testing.T) *oaDoc {
	t.Helper()
	if len(bytes.TrimSpace(openAPI)) == 0 {
		t.Fatal("api/openapi.yaml is empty")
	}
	var root map[string]any
	if err := yaml.Unmarshal(openAPI, &root); err != nil {
		t.Fatalf("api/openapi.yaml is not valid YAML: %v", err)
	}
	return &oaDoc{t: t, root: root}
}

// oaObj returns v as a mapping with string keys, or nil.
func oaObj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// oaList returns v as a sequence, or nil.
func oaList(v any) []any {
	l, _ := v.([]any)
	return l
}

// oaStr returns v as a string, or "".
func oaStr(v any) string {
	s, _ := v.(string)
	return s
}

// oaNum returns v as an int64 and whether it is an integer.
func oaNum(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case uint64:
		return int64(n), true
	case float64:
		if n == float64(int64(n)) {
			return int64(n), true
		}
	}
	return 0, false
}

// pointer follows a local JSON pointer like #/components/schemas/Problem.
func (d *oaDoc) pointer(ref string) (any, bool) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, false
	}
	var cur any = d.root
	for _, part := range strings.Split(ref[2:], "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m := oaObj(cur)
		if m == nil {
			return nil, false
		}
		next, ok := m[part]
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, true
}

// resolve follows $ref until it reaches an object without one.
func (d *oaDoc) resolve(v any) map[string]any {
	d.t.Helper()
	m := oaObj(v)
	for i := 0; m != nil && m["$ref"] != nil; i++ {
		ref := oaStr(m["$ref"])
		target, ok := d.pointer(ref)
		if !ok || i > 20 {
			d.t.Fatalf("$ref %q does not resolve", ref)
		}
		m = oaObj(target)
	}
	return m
}

// schema returns the named component schema.
func (d *oaDoc) schema(name string) map[string]any {
	d.t.Helper()
	s := oaObj(oaObj(oaObj(d.root["components"])["schemas"])[name])
	if s == nil {
		d.t.Fatalf("components.schemas.%s is missing", name)
	}
	return s
}

// oaTypes returns the JSON Schema types of a schema: "type" as one string or a list.
func oaTypes(s map[string]any) []string {
	switch v := s["type"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, t := range v {
			out = append(out, oaStr(t))
		}
		return out
	}
	return nil
}

// oaOperation is one documented path and method.
type oaOperation struct {
	path, method string
	op           map[string]any
	pathParams   []any // the path item's parameters
}

func (o oaOperation) String() string { return o.method + " " + o.path }

var oaHTTPMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// operations lists every documented operation in path order.
func (d *oaDoc) operations() []oaOperation {
	d.t.Helper()
	paths := oaObj(d.root["paths"])
	if len(paths) == 0 {
		d.t.Fatal("the document has no paths")
	}
	var ops []oaOperation
	for path, item := range paths {
		pi := oaObj(item)
		if pi == nil {
			d.t.Fatalf("paths.%s is not an object", path)
		}
		for key, v := range pi {
			switch {
			case slices.Contains(oaHTTPMethods, key):
				op := oaObj(v)
				if op == nil {
					d.t.Fatalf("%s %s is not an object", strings.ToUpper(key), path)
				}
				ops = append(ops, oaOperation{path: path, method: strings.ToUpper(key), op: op, pathParams: oaList(pi["parameters"])})
			case key == "parameters" || key == "summary" || key == "description" || key == "servers" || strings.HasPrefix(key, "x-"):
			default:
				d.t.Errorf("paths.%s has an unexpected member %q (a method name in upper case?)", path, key)
			}
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].String() < ops[j].String() })
	return ops
}

// ---------------------------------------------------------------------------------------------------------
// The route table, read from the source of routes().

// oaRoute is one route of the router: method, path template and the handler function's name.
type oaRoute struct {
	method, path, handler string
}

func (r oaRoute) String() string { return r.method + " " + r.path }

// oaParsePackage parses the package's non-test Go files.
func oaParsePackage(t *testing.T) []*ast.File {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		files = append(files, f)
	}
	return files
}

// oaFindFunc finds a function or method of the package by name, or returns nil.
func oaFindFunc(files []*ast.File, name string) *ast.FuncDecl {
	for _, f := range files {
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == name {
				return fd
			}
		}
	}
	return nil
}

// oaFuncDecl finds a function or method of the package by name; the test fails without it.
func oaFuncDecl(t *testing.T, files []*ast.File, name string) *ast.FuncDecl {
	t.Helper()
	fd := oaFindFunc(files, name)
	if fd == nil {
		t.Fatalf("function %s not found in package api", name)
	}
	return fd
}

// oaStringConsts collects string constants declared in the package and in fn's body.
func oaStringConsts(files []*ast.File, fn *ast.FuncDecl) map[string]string {
	consts := map[string]string{}
	add := func(gd *ast.GenDecl) {
		if gd.Tok != token.CONST {
			return
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if s, err := strconv.Unquote(lit.Value); err == nil {
							consts[name.Name] = s
						}
					}
				}
			}
		}
	}
	for _, f := range files {
		for _, d := range f.Decls {
			if gd, ok := d.(*ast.GenDecl); ok {
				add(gd)
			}
		}
	}
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if ds, ok := n.(*ast.DeclStmt); ok {
			if gd, ok := ds.Decl.(*ast.GenDecl); ok {
				add(gd)
			}
		}
		return true
	})
	return consts
}

// oaRouteTable reads the routes registered in (*Handler).routes: HandleFunc/Handle calls with .Methods(...) on
// the router or on subrouters made with PathPrefix(...).Subrouter(), with paths built from string literals
// and constants. Any construct it does not understand fails the test, so a route cannot hide from it.
func oaRouteTable(t *testing.T) []oaRoute {
	t.Helper()
	files := oaParsePackage(t)
	fn := oaFuncDecl(t, files, "routes")
	consts := oaStringConsts(files, fn)

	var evalString func(e ast.Expr) (string, bool)
	evalString = func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				s, err := strconv.Unquote(e.Value)
				return s, err == nil
			}
		case *ast.Ident:
			s, ok := consts[e.Name]
			return s, ok
		case *ast.ParenExpr:
			return evalString(e.X)
		case *ast.BinaryExpr:
			if e.Op == token.ADD {
				a, ok1 := evalString(e.X)
				b, ok2 := evalString(e.Y)
				return a + b, ok1 && ok2
			}
		}
		return "", false
	}
	method := func(e ast.Expr) (string, bool) {
		if sel, ok := e.(*ast.SelectorExpr); ok {
			if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "http" && strings.HasPrefix(sel.Sel.Name, "Method") {
				return strings.ToUpper(strings.TrimPrefix(sel.Sel.Name, "Method")), true
			}
		}
		return evalString(e)
	}
	var handlerName func(e ast.Expr) string
	handlerName = func(e ast.Expr) string {
		switch e := e.(type) {
		case *ast.Ident:
			return e.Name
		case *ast.SelectorExpr:
			return e.Sel.Name
		case *ast.CallExpr: // a wrapper like h.admin(h.createConcert)
			if len(e.Args) > 0 {
				return handlerName(e.Args[len(e.Args)-1])
			}
		}
		return ""
	}

	routers := map[string]string{} // router variable -> path prefix
	// routerOf evaluates mux.NewRouter() and X.PathPrefix("...").Subrouter().
	routerOf := func(e ast.Expr) (string, bool) {
		call, ok := e.(*ast.CallExpr)
		if !ok {
			return "", false
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return "", false
		}
		if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "mux" && sel.Sel.Name == "NewRouter" {
			return "", true
		}
		if sel.Sel.Name != "Subrouter" {
			return "", false
		}
		inner, ok := sel.X.(*ast.CallExpr)
		if !ok || len(inner.Args) != 1 {
			return "", false
		}
		isel, ok := inner.Fun.(*ast.SelectorExpr)
		if !ok || isel.Sel.Name != "PathPrefix" {
			return "", false
		}
		base, ok := isel.X.(*ast.Ident)
		if !ok {
			return "", false
		}
		prefix, known := routers[base.Name]
		p, ok := evalString(inner.Args[0])
		return prefix + p, known && ok
	}

	var routes []oaRoute
	registrations, subrouters, subroutersUnderstood := 0, 0, 0
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if len(n.Lhs) == 1 && len(n.Rhs) == 1 {
				if id, ok := n.Lhs[0].(*ast.Ident); ok {
					if prefix, ok := routerOf(n.Rhs[0]); ok {
						routers[id.Name] = prefix
						if c, ok := n.Rhs[0].(*ast.CallExpr); ok {
							if s, ok := c.Fun.(*ast.SelectorExpr); ok && s.Sel.Name == "Subrouter" {
								subroutersUnderstood++
							}
						}
					}
				}
			}
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch sel.Sel.Name {
			case "HandleFunc", "Handle":
				registrations++
			case "Subrouter":
				subrouters++
			case "Path", "Host", "NewRoute", "Queries", "Schemes", "Headers", "HeadersRegexp", "MatcherFunc", "Name", "PathPrefix":
				if sel.Sel.Name == "PathPrefix" {
					return true // checked through Subrouter
				}
				t.Fatalf("routes() uses %s, which this test does not understand: extend routeTable", sel.Sel.Name)
			case "Methods":
				inner, ok := sel.X.(*ast.CallExpr)
				if !ok {
					t.Fatalf("routes(): .Methods on something other than a HandleFunc call")
				}
				isel, ok := inner.Fun.(*ast.SelectorExpr)
				if !ok || (isel.Sel.Name != "HandleFunc" && isel.Sel.Name != "Handle") || len(inner.Args) != 2 {
					t.Fatalf("routes(): .Methods on something other than a HandleFunc call")
				}
				base, ok := isel.X.(*ast.Ident)
				prefix, known := "", false
				if ok {
					prefix, known = routers[base.Name]
				}
				path, okPath := evalString(inner.Args[0])
				if !known || !okPath {
					t.Fatalf("routes(): cannot evaluate the router or path of a route at offset %d", inner.Pos())
				}
				h := handlerName(inner.Args[1])
				if len(n.Args) == 0 {
					t.Fatalf("routes(): %s%s has .Methods() with no method", prefix, path)
				}
				for _, a := range n.Args {
					m, ok := method(a)
					if !ok {
						t.Fatalf("routes(): cannot evaluate a method of %s%s", prefix, path)
					}
					routes = append(routes, oaRoute{method: m, path: prefix + path, handler: h})
				}
			}
		}
		return true
	})
	if subrouters != subroutersUnderstood {
		t.Fatalf("routes() makes a subrouter this test does not understand: extend routeTable")
	}
	routed := map[string]bool{}
	for _, r := range routes {
		routed[r.path+"|"+r.handler] = true
	}
	if registrations != len(routed) {
		t.Fatalf("routes() registers %d handlers but %d have a path and .Methods(...) this test could read; "+
			"every route must name its methods", registrations, len(routed))
	}
	if len(routes) == 0 {
		t.Fatal("no routes found in routes()")
	}
	return routes
}

var oaParamRE = regexp.MustCompile(`\{[^}]*\}`)

// oaNormalizePath replaces every {param} by {} so templates compare regardless of parameter names.
func oaNormalizePath(p string) string { return oaParamRE.ReplaceAllString(p, "{}") }

// ---------------------------------------------------------------------------------------------------------
// A handler that needs neither PostgreSQL nor Temporal, for the routes that stop before reaching them.

const oaAdminToken = "openapi-test-admin-token"

func oaTestHandler(t *testing.T) http.Handler {
	t.Helper()
	tokens, err := NewTokens([]byte("openapi-test-secret-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{AdminToken: oaAdminToken, HoldWindow: time.Minute, AdmissionWindow: time.Minute, AdmissionTick: time.Second}
	// Routes that exist only when Config gives them a handler (like /metrics) get a stub, so they are routed.
	v := reflect.ValueOf(&cfg).Elem()
	handlerType := reflect.TypeFor[http.Handler]()
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).Type == handlerType {
			v.Field(i).Set(reflect.ValueOf(http.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
			}))))
		}
	}
	h := &Handler{tokens: tokens, cfg: cfg, log: slog.New(slog.DiscardHandler)}
	return h.routes()
}

// oaProblemType returns the problem type of a problem+json response, or "".
func oaProblemType(rec *httptest.ResponseRecorder) string {
	if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/problem+json") {
		return ""
	}
	var p struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &p)
	return p.Type
}

// oaProbe sends a request that every handler refuses before it touches the store or Temporal (no token, a
// malformed UUID, a body that is not JSON), so whether the router routed it shows in the answer.
func oaProbe(h http.Handler, method, template string) *httptest.ResponseRecorder {
	path := oaParamRE.ReplaceAllStringFunc(template, func(p string) string {
		if p == "{UUID}" {
			return "not-a-uuid"
		}
		return "PROBE"
	})
	req := httptest.NewRequest(method, path, strings.NewReader("["))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// ---------------------------------------------------------------------------------------------------------
// (a) The document and the router have the same routes.

func TestOpenAPIRoutesMatchRouter(t *testing.T) {
	doc := loadOpenAPI(t)
	routes := oaRouteTable(t)

	router := map[string]oaRoute{}
	for _, r := range routes {
		key := r.method + " " + oaNormalizePath(r.path)
		if prev, dup := router[key]; dup {
			t.Errorf("the router registers %s twice (%s and %s)", key, prev.handler, r.handler)
		}
		router[key] = r
	}
	documented := map[string]oaOperation{}
	for _, op := range doc.operations() {
		key := op.method + " " + oaNormalizePath(op.path)
		if prev, dup := documented[key]; dup {
			t.Errorf("the document has %s twice (%s and %s)", key, prev.path, op.path)
		}
		documented[key] = op
	}

	for key, r := range router {
		op, ok := documented[key]
		if !ok {
			t.Errorf("route %s (handler %s) is not documented in openapi.yaml", r, r.handler)
			continue
		}
		if op.path != r.path {
			t.Errorf("route %s is documented as %s: path parameter names differ", r, op)
		}
	}
	for key, op := range documented {
		if _, ok := router[key]; !ok {
			t.Errorf("openapi.yaml documents %s, which the router does not serve", op)
		}
	}

	// The route table read from the source is the one the handler serves: each documented route is routed
	// (not 404/405), and each method a documented path does not document answers 405.
	h := oaTestHandler(t)
	byPath := map[string][]string{}
	for _, op := range documented {
		byPath[op.path] = append(byPath[op.path], op.method)
	}
	for path, methods := range byPath {
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			rec := oaProbe(h, m, path)
			got := oaProblemType(rec)
			if slices.Contains(methods, m) {
				if got == ProblemTypeBase+"not-found" || got == ProblemTypeBase+"method-not-allowed" {
					t.Errorf("%s %s is documented but the router answers %d %s", m, path, rec.Code, got)
				}
			} else if rec.Code != http.StatusMethodNotAllowed || got != ProblemTypeBase+"method-not-allowed" {
				t.Errorf("%s %s is not documented but the router answers %d %s, not 405 method-not-allowed",
					m, path, rec.Code, got)
			}
		}
	}
	// The probe can tell an unrouted path.
	if rec := oaProbe(h, "GET", "/api/v1/no-such-endpoint"); rec.Code != http.StatusNotFound || oaProblemType(rec) != ProblemTypeBase+"not-found" {
		t.Errorf("an unknown path answers %d %s, not 404 not-found", rec.Code, oaProblemType(rec))
	}
}

// ---------------------------------------------------------------------------------------------------------
// (b) Every problem type is documented, with its status and title.

var oaProblemRowRE = regexp.MustCompile("(?m)^\\|\\s*`/problems/([a-z0-9-]+)`\\s*\\|\\s*(\\d{3})\\s*\\|\\s*(.*?)\\s*\\|\\s*$")

// oaProblemTable reads the type | status | title table of the Problem schema's description.
func oaProblemTable(t *testing.T, doc *oaDoc) map[string]struct {
	status int
	title  string
} {
	t.Helper()
	desc := oaStr(doc.schema("Problem")["description"])
	rows := map[string]struct {
		status int
		title  string
	}{}
	for _, m := range oaProblemRowRE.FindAllStringSubmatch(desc, -1) {
		status, _ := strconv.Atoi(m[2])
		if _, dup := rows[m[1]]; dup {
			t.Errorf("the Problem table lists /problems/%s twice", m[1])
		}
		rows[m[1]] = struct {
			status int
			title  string
		}{status, m[3]}
	}
	return rows
}

func TestOpenAPIProblemTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	rows := oaProblemTable(t, doc)
	for slug, title := range problemTitles {
		if !bytes.Contains(openAPI, []byte(ProblemTypeBase+slug)) {
			t.Errorf("problem type %s%s does not appear in openapi.yaml", ProblemTypeBase, slug)
		}
		row, ok := rows[slug]
		if !ok {
			t.Errorf("the Problem schema's table does not list %s%s", ProblemTypeBase, slug)
			continue
		}
		if row.title != title {
			t.Errorf("%s%s: the table's title is %q, the code's %q", ProblemTypeBase, slug, row.title, title)
		}
	}
	for slug := range rows {
		if _, ok := problemTitles[slug]; !ok {
			t.Errorf("the Problem table lists %s%s, which problemTitles does not have", ProblemTypeBase, slug)
		}
	}
	for et, bp := range businessProblems {
		if row, ok := rows[bp.slug]; ok && row.status != bp.status {
			t.Errorf("business error %s is %d %s in the code, %d in the Problem table", et, bp.status, bp.slug, row.status)
		}
	}
	// Every problem the code builds, problem(http.StatusX, "slug", ...) or h.storeProblem(..., "slug", ...),
	// has a title in problemTitles and is in the table, with the same status.
	used, reported := 0, map[string]bool{}
	for _, f := range oaParsePackage(t) {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			name := ""
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				name = fn.Name
			case *ast.SelectorExpr:
				name = fn.Sel.Name
			}
			if name != "problem" && name != "storeProblem" {
				return true
			}
			// The slug is the first string literal argument; a slug passed on in a variable (businessProblems,
			// storeProblem's parameter) is checked where it is written.
			var lit *ast.BasicLit
			for _, a := range call.Args {
				if l, ok := a.(*ast.BasicLit); ok && l.Kind == token.STRING {
					lit = l
					break
				}
			}
			if lit == nil {
				return true
			}
			slug, _ := strconv.Unquote(lit.Value)
			if slug == "" || reported[slug] {
				return true
			}
			used++
			if _, ok := problemTitles[slug]; !ok {
				reported[slug] = true
				t.Errorf("the code answers with problem type %q, which has no title in problemTitles", slug)
			}
			row, ok := rows[slug]
			if !ok {
				reported[slug] = true
				t.Errorf("the code answers with problem type %q, which the Problem table does not list", slug)
				return true
			}
			if sel, ok := call.Args[0].(*ast.SelectorExpr); ok && name == "problem" {
				if code, ok := oaStatusConsts[sel.Sel.Name]; ok && code != row.status {
					t.Errorf("the code answers %s with status %d, the Problem table says %d", slug, code, row.status)
				}
			}
			return true
		})
	}
	if used == 0 {
		t.Fatal("found no problem(...) calls in the code; has problem been renamed?")
	}

	// No stale or misspelt type anywhere in the document.
	for _, m := range regexp.MustCompile(`/problems/([a-z0-9-]+)`).FindAllStringSubmatch(string(openAPI), -1) {
		if _, ok := problemTitles[m[1]]; !ok && !reported[m[1]] {
			reported[m[1]] = true
			t.Errorf("openapi.yaml mentions /problems/%s, which problemTitles does not have", m[1])
		}
	}
}

// TestOpenAPIProblemExtensions checks that every extension member the code adds to a problem (p.with("name",
// ...)) is a property of the Problem schema, and that the schema has the RFC 9457 members.
func TestOpenAPIProblemExtensions(t *testing.T) {
	doc := loadOpenAPI(t)
	props := oaObj(doc.schema("Problem")["properties"])
	for _, name := range []string{"type", "title", "status", "detail", "instance"} {
		if props[name] == nil {
			t.Errorf("the Problem schema lacks the RFC 9457 member %q", name)
		}
	}
	found := 0
	for _, f := range oaParsePackage(t) {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "with" {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("a problem extension is added under a name that is not a string literal")
				return true
			}
			name, _ := strconv.Unquote(lit.Value)
			found++
			if props[name] == nil {
				t.Errorf("the code adds the problem extension %q, which the Problem schema does not document", name)
			}
			return true
		})
	}
	if found == 0 {
		t.Fatal("found no problem extensions in the code; has (*Problem).with been renamed?")
	}
}

// ---------------------------------------------------------------------------------------------------------
// (c) The document's structure.

func TestOpenAPIDocumentStructure(t *testing.T) {
	doc := loadOpenAPI(t)
	if v := oaStr(doc.root["openapi"]); !regexp.MustCompile(`^3\.[01]\.\d+$`).MatchString(v) {
		t.Fatalf("openapi is %q, not 3.0.x or 3.1.x", v)
	}
	info := oaObj(doc.root["info"])
	if oaStr(info["title"]) == "" || oaStr(info["version"]) == "" || oaStr(info["description"]) == "" {
		t.Error("info needs a title, a version and a description")
	}
	servers := oaList(doc.root["servers"])
	if len(servers) == 0 || oaStr(oaObj(servers[0])["url"]) != "http://127.0.0.1:8080" {
		t.Error("the first server must be http://127.0.0.1:8080")
	}
	schemes := oaObj(oaObj(doc.root["components"])["securitySchemes"])
	for _, name := range []string{"queueToken", "adminToken"} {
		s := oaObj(schemes[name])
		if oaStr(s["type"]) != "http" || !strings.EqualFold(oaStr(s["scheme"]), "bearer") {
			t.Errorf("securitySchemes.%s must be an http bearer scheme", name)
		}
	}

	// Every $ref in the document resolves.
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, ok := doc.pointer(ref); !ok {
					t.Errorf("%s: $ref %q does not resolve", at, ref)
				}
			}
			for k, c := range v {
				walk(c, at+"."+k)
			}
		case []any:
			for i, c := range v {
				walk(c, fmt.Sprintf("%s[%d]", at, i))
			}
		case map[any]any:
			t.Errorf("%s: a mapping with non-string keys (quote response codes like '200')", at)
		}
	}
	walk(doc.root, "")

	titles := oaProblemTable(t, doc)
	operationIDs := map[string]string{}
	for _, o := range doc.operations() {
		op := o.op
		if id := oaStr(op["operationId"]); id == "" {
			t.Errorf("%s has no operationId", o)
		} else if prev, dup := operationIDs[id]; dup {
			t.Errorf("%s and %s share operationId %q", prev, o, id)
		} else {
			operationIDs[id] = o.String()
		}
		if oaStr(op["summary"]) == "" {
			t.Errorf("%s has no summary", o)
		}

		// Path parameters: each {name} of the template is declared, required, in the path.
		params := map[string]map[string]any{}
		for _, p := range append(slices.Clone(o.pathParams), oaList(op["parameters"])...) {
			pm := doc.resolve(p)
			params[oaStr(pm["in"])+":"+oaStr(pm["name"])] = pm
			if pm["schema"] == nil {
				t.Errorf("%s: parameter %s has no schema", o, oaStr(pm["name"]))
			}
		}
		for _, m := range oaParamRE.FindAllString(o.path, -1) {
			p := params["path:"+strings.Trim(m, "{}")]
			if p == nil {
				t.Errorf("%s: path parameter %s is not declared", o, m)
			} else if p["required"] != true {
				t.Errorf("%s: path parameter %s must be required", o, m)
			}
		}

		// Security: the queue-token endpoints answer 401 and 403, the admin ones 401.
		var schemesUsed []string
		for _, req := range oaList(op["security"]) {
			for name := range oaObj(req) {
				schemesUsed = append(schemesUsed, name)
				if schemes[name] == nil {
					t.Errorf("%s uses the undefined security scheme %s", o, name)
				}
			}
		}

		responses := oaObj(op["responses"])
		if len(responses) == 0 {
			t.Errorf("%s has no responses", o)
			continue
		}
		want := []string{}
		if slices.Contains(schemesUsed, "queueToken") {
			want = append(want, "401", "403")
		}
		if slices.Contains(schemesUsed, "adminToken") {
			want = append(want, "401")
		}
		if rb := doc.resolve(op["requestBody"]); rb != nil {
			content := oaObj(rb["content"])
			if oaObj(content["application/json"])["schema"] == nil {
				t.Errorf("%s: the request body needs an application/json schema", o)
			}
			want = append(want, "400", "413")
		}
		for _, code := range want {
			if responses[code] == nil {
				t.Errorf("%s does not declare its %s response", o, code)
			}
		}

		success := 0
		for code, rv := range responses {
			status, err := strconv.Atoi(code)
			if err != nil {
				t.Errorf("%s: response code %q is not a status code", o, code)
				continue
			}
			resp := doc.resolve(rv)
			if oaStr(resp["description"]) == "" {
				t.Errorf("%s %s: no description", o, code)
			}
			content := oaObj(resp["content"])
			switch {
			case status >= 200 && status < 300:
				success++
				if len(content) == 0 {
					t.Errorf("%s %s: a success response without content", o, code)
				}
				for mt, c := range content {
					if oaObj(c)["schema"] == nil {
						t.Errorf("%s %s: %s has no schema", o, code, mt)
					}
				}
			case status == http.StatusRequestHeaderFieldsTooLarge:
				// net/http's own answer, before any handler runs: plain text, not a problem.
				if oaObj(content["text/plain"]) == nil || len(content) != 1 {
					t.Errorf("%s %s: the HTTP server's 431 is text/plain", o, code)
				}
			case status >= 400:
				pj := oaObj(content["application/problem+json"])
				if pj == nil || len(content) != 1 {
					t.Errorf("%s %s: an error response must have exactly application/problem+json content", o, code)
					continue
				}
				if ref := oaStr(oaObj(pj["schema"])["$ref"]); ref != "#/components/schemas/Problem" {
					t.Errorf("%s %s: the problem schema must be $ref #/components/schemas/Problem, not %q", o, code, ref)
				}
				// Its examples are real problems: a known type of this status, with the code's title.
				var examples []map[string]any
				if ex := oaObj(pj["example"]); ex != nil {
					examples = append(examples, ex)
				}
				for _, ex := range oaObj(pj["examples"]) {
					examples = append(examples, oaObj(doc.resolve(ex)["value"]))
				}
				if len(examples) == 0 {
					t.Errorf("%s %s: no example problem", o, code)
				}
				for _, ex := range examples {
					slug := strings.TrimPrefix(oaStr(ex["type"]), ProblemTypeBase)
					title, known := problemTitles[slug]
					if !known {
						t.Errorf("%s %s: example type %q is no known problem type", o, code, ex["type"])
						continue
					}
					if s, _ := oaNum(ex["status"]); int(s) != status {
						t.Errorf("%s %s: example %s has status %v", o, code, slug, ex["status"])
					}
					if titles[slug].status != status {
						t.Errorf("%s %s: example %s, which the Problem table lists as %d", o, code, slug, titles[slug].status)
					}
					if oaStr(ex["title"]) != title {
						t.Errorf("%s %s: example %s has title %q, the code writes %q", o, code, slug, ex["title"], title)
					}
					if oaStr(ex["instance"]) == "" {
						t.Errorf("%s %s: example %s has no instance", o, code, slug)
					}
				}
			}
		}
		if success == 0 {
			t.Errorf("%s has no 2xx response", o)
		}
	}
}

// ---------------------------------------------------------------------------------------------------------
// oaProperties returns a schema's sorted property names and whether all are required.
func oaProperties(doc *oaDoc, name string) (names []string, required []string) {
	s := doc.schema(name)
	for p := range oaObj(s["properties"]) {
		names = append(names, p)
	}
	for _, r := range oaList(s["required"]) {
		required = append(required, oaStr(r))
	}
	sort.Strings(names)
	sort.Strings(required)
	return names, required
}

// oaStatusConsts are the status constants of net/http, by name.
var oaStatusConsts = map[string]int{
	"StatusContinue":                      100,
	"StatusSwitchingProtocols":            101,
	"StatusProcessing":                    102,
	"StatusEarlyHints":                    103,
	"StatusOK":                            200,
	"StatusCreated":                       201,
	"StatusAccepted":                      202,
	"StatusNonAuthoritativeInfo":          203,
	"StatusNoContent":                     204,
	"StatusResetContent":                  205,
	"StatusPartialContent":                206,
	"StatusMultiStatus":                   207,
	"StatusAlreadyReported":               208,
	"StatusIMUsed":                        226,
	"StatusMultipleChoices":               300,
	"StatusMovedPermanently":              301,
	"StatusFound":                         302,
	"StatusSeeOther":                      303,
	"StatusNotModified":                   304,
	"StatusUseProxy":                      305,
	"StatusTemporaryRedirect":             307,
	"StatusPermanentRedirect":             308,
	"StatusBadRequest":                    400,
	"StatusUnauthorized":                  401,
	"StatusPaymentRequired":               402,
	"StatusForbidden":                     403,
	"StatusNotFound":                      404,
	"StatusMethodNotAllowed":              405,
	"StatusNotAcceptable":                 406,
	"StatusProxyAuthRequired":             407,
	"StatusRequestTimeout":                408,
	"StatusConflict":                      409,
	"StatusGone":                          410,
	"StatusLengthRequired":                411,
	"StatusPreconditionFailed":            412,
	"StatusRequestEntityTooLarge":         413,
	"StatusRequestURITooLong":             414,
	"StatusUnsupportedMediaType":          415,
	"StatusRequestedRangeNotSatisfiable":  416,
	"StatusExpectationFailed":             417,
	"StatusTeapot":                        418,
	"StatusMisdirectedRequest":            421,
	"StatusUnprocessableEntity":           422,
	"StatusLocked":                        423,
	"StatusFailedDependency":              424,
	"StatusTooEarly":                      425,
	"StatusUpgradeRequired":               426,
	"StatusPreconditionRequired":          428,
	"StatusTooManyRequests":               429,
	"StatusRequestHeaderFieldsTooLarge":   431,
	"StatusUnavailableForLegalReasons":    451,
	"StatusInternalServerError":           500,
	"StatusNotImplemented":                501,
	"StatusBadGateway":                    502,
	"StatusServiceUnavailable":            503,
	"StatusGatewayTimeout":                504,
	"StatusHTTPVersionNotSupported":       505,
	"StatusVariantAlsoNegotiates":         506,
	"StatusInsufficientStorage":           507,
	"StatusLoopDetected":                  508,
	"StatusNotExtended":                   510,
	"StatusNetworkAuthenticationRequired": 511,
}

// oaSuccessStatuses returns the 2xx statuses a handler function names (http.StatusOK, ...); none means the
// implicit 200 of a handler that writes without WriteHeader.
func oaSuccessStatuses(t *testing.T, files []*ast.File, fn string) []string {
	t.Helper()
	set := map[string]bool{}
	ast.Inspect(oaFuncDecl(t, files, fn).Body, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "http" {
				if code, ok := oaStatusConsts[sel.Sel.Name]; ok && code >= 200 && code < 300 {
					set[strconv.Itoa(code)] = true
				}
			}
		}
		return true
	})
	if len(set) == 0 {
		set["200"] = true
	}
	var out []string
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Response bodies: for each route, the documented 2xx statuses are the ones its handler writes, and the
// schema of its JSON body has exactly the members the handler writes. The bodies are read from the
// handlers' source: writeJSON(w, status, X) where X is a struct literal of a type of this package, a map
// literal, or a variable assigned one of these; members of maps, slices made with make([]T, ...) and
// struct fields are followed down.

// oaShape is what a handler writes as JSON, as far as the source tells.
type oaShape struct {
	kind     string              // "object", "array", "string", "integer", "number", "boolean", "" (unknown)
	nullable bool                // a pointer
	format   string              // "date-time" for time.Time
	members  map[string]*oaShape // objects: every member, with its shape (nil shape: unknown)
	required map[string]bool     // objects: the members always written
	items    *oaShape            // arrays
	from     string              // where the shape comes from, for messages
}

// oaBodies reads the shapes of the package's response bodies.
type oaBodies struct {
	t     *testing.T
	files []*ast.File
	types map[string]*ast.StructType
}

func newOABodies(t *testing.T, files []*ast.File) *oaBodies {
	b := &oaBodies{t: t, files: files, types: map[string]*ast.StructType{}}
	for _, f := range files {
		for _, d := range f.Decls {
			if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.TYPE {
				for _, spec := range gd.Specs {
					ts := spec.(*ast.TypeSpec)
					if st, ok := ts.Type.(*ast.StructType); ok {
						b.types[ts.Name.Name] = st
					}
				}
			}
		}
	}
	return b
}

// typeShape is the JSON shape of a Go type expression.
func (b *oaBodies) typeShape(e ast.Expr) *oaShape {
	switch e := e.(type) {
	case *ast.StarExpr:
		s := *b.typeShape(e.X)
		s.nullable = true
		return &s
	case *ast.ArrayType:
		return &oaShape{kind: "array", items: b.typeShape(e.Elt)}
	case *ast.MapType:
		return &oaShape{kind: "object"}
	case *ast.InterfaceType:
		return &oaShape{}
	case *ast.SelectorExpr:
		if pkg, ok := e.X.(*ast.Ident); ok && pkg.Name == "time" && e.Sel.Name == "Time" {
			return &oaShape{kind: "string", format: "date-time"}
		}
	case *ast.Ident:
		switch e.Name {
		case "string":
			return &oaShape{kind: "string"}
		case "bool":
			return &oaShape{kind: "boolean"}
		case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
			return &oaShape{kind: "integer"}
		case "float32", "float64":
			return &oaShape{kind: "number"}
		case "any":
			return &oaShape{}
		}
		if st, ok := b.types[e.Name]; ok {
			return b.structShape(e.Name, st)
		}
	}
	return &oaShape{}
}

// structShape is the JSON shape of a struct type: its fields by JSON name; omitempty ones are optional.
func (b *oaBodies) structShape(name string, st *ast.StructType) *oaShape {
	s := &oaShape{kind: "object", members: map[string]*oaShape{}, required: map[string]bool{}, from: "type " + name}
	for _, f := range st.Fields.List {
		tag := ""
		if f.Tag != nil {
			raw, _ := strconv.Unquote(f.Tag.Value)
			tag = reflect.StructTag(raw).Get("json")
		}
		jsonName, opts, _ := strings.Cut(tag, ",")
		if jsonName == "-" {
			continue
		}
		if len(f.Names) == 0 {
			b.t.Errorf("type %s embeds a field; oaBodies does not follow embedded fields", name)
			continue
		}
		for _, n := range f.Names {
			if !n.IsExported() {
				continue
			}
			member := jsonName
			if member == "" {
				member = n.Name
			}
			s.members[member] = b.typeShape(f.Type)
			s.required[member] = !strings.Contains(opts, "omitempty")
		}
	}
	return s
}

// exprShape is the JSON shape of an expression in function fn.
func (b *oaBodies) exprShape(fn *ast.FuncDecl, e ast.Expr) *oaShape {
	switch e := e.(type) {
	case *ast.UnaryExpr:
		if e.Op == token.AND {
			return b.exprShape(fn, e.X)
		}
	case *ast.CompositeLit:
		switch ty := e.Type.(type) {
		case *ast.Ident:
			if st, ok := b.types[ty.Name]; ok {
				return b.structShape(ty.Name, st)
			}
		case *ast.MapType:
			s := &oaShape{kind: "object", members: map[string]*oaShape{}, required: map[string]bool{}, from: "a map literal in " + fn.Name.Name}
			for _, el := range e.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				if lit, ok := kv.Key.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					k, _ := strconv.Unquote(lit.Value)
					s.members[k] = b.valueShape(fn, kv.Value)
					s.required[k] = true
				} else {
					b.t.Errorf("%s: a map body with a key that is not a string literal", fn.Name.Name)
				}
			}
			return s
		case *ast.ArrayType:
			return &oaShape{kind: "array", items: b.typeShape(ty.Elt)}
		}
	case *ast.CallExpr:
		if id, ok := e.Fun.(*ast.Ident); ok && id.Name == "make" && len(e.Args) > 0 {
			return b.typeShape(e.Args[0])
		}
		// A call of this package's function that returns one body type (paymentAnswer, say).
		if id, ok := e.Fun.(*ast.Ident); ok {
			if f := oaFindFunc(b.files, id.Name); f != nil && f.Type.Results != nil && len(f.Type.Results.List) == 1 {
				return b.typeShape(f.Type.Results.List[0].Type)
			}
		}
	case *ast.Ident:
		return b.varShape(fn, e.Name)
	}
	return &oaShape{}
}

// valueShape is exprShape for map members, where only literals and variables are followed.
func (b *oaBodies) valueShape(fn *ast.FuncDecl, e ast.Expr) *oaShape {
	switch e.(type) {
	case *ast.CompositeLit, *ast.Ident, *ast.UnaryExpr, *ast.CallExpr:
		return b.exprShape(fn, e)
	}
	return &oaShape{}
}

// varShape follows a local variable to the literal or make(...) it was first assigned. Members a map
// variable gets later (v["k"] = ...) are optional; elements a slice variable gets (v[i] = literal) give its
// items' shape.
func (b *oaBodies) varShape(fn *ast.FuncDecl, name string) *oaShape {
	var shape *oaShape
	var later []*ast.AssignStmt
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		as, ok := n.(*ast.AssignStmt)
		if !ok {
			return true
		}
		for i, lhs := range as.Lhs {
			switch l := lhs.(type) {
			case *ast.Ident:
				if l.Name == name && shape == nil && len(as.Rhs) == len(as.Lhs) {
					switch as.Rhs[i].(type) {
					case *ast.CompositeLit, *ast.CallExpr, *ast.UnaryExpr:
						shape = b.exprShape(fn, as.Rhs[i])
					}
				}
			case *ast.IndexExpr:
				if id, ok := l.X.(*ast.Ident); ok && id.Name == name {
					later = append(later, as)
				}
			}
		}
		return true
	})
	if shape == nil {
		return &oaShape{}
	}
	for _, as := range later {
		for i, lhs := range as.Lhs {
			ix, ok := lhs.(*ast.IndexExpr)
			if !ok {
				continue
			}
			if id, ok := ix.X.(*ast.Ident); !ok || id.Name != name {
				continue
			}
			var rhs ast.Expr
			if len(as.Rhs) == len(as.Lhs) {
				rhs = as.Rhs[i]
			}
			switch shape.kind {
			case "object":
				if lit, ok := ix.Index.(*ast.BasicLit); ok && lit.Kind == token.STRING && shape.members != nil {
					k, _ := strconv.Unquote(lit.Value)
					if _, known := shape.members[k]; !known {
						shape.members[k] = &oaShape{}
						if rhs != nil {
							shape.members[k] = b.valueShape(fn, rhs)
						}
						shape.required[k] = false
					}
				}
			case "array":
				if rhs != nil && (shape.items == nil || shape.items.kind == "object" && shape.items.members == nil) {
					if s := b.exprShape(fn, rhs); s.kind != "" {
						shape.items = s
					}
				}
			}
		}
	}
	return shape
}

// handlerBodies returns the shape of every writeJSON body of a handler function.
func (b *oaBodies) handlerBodies(fn *ast.FuncDecl) []*oaShape {
	var out []*oaShape
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		// writeJSON(w, status, X) writes X; a handler serving a cached body builds it with encodeBody(X).
		if id, ok := call.Fun.(*ast.Ident); ok && id.Name == "writeJSON" && len(call.Args) == 3 {
			out = append(out, b.exprShape(fn, call.Args[2]))
		}
		if id, ok := call.Fun.(*ast.Ident); ok && id.Name == "encodeBody" && len(call.Args) == 1 {
			out = append(out, b.exprShape(fn, call.Args[0]))
		}
		return true
	})
	return out
}

// compare reports where the schema s (at path at) differs from the shape the code writes.
func (d *oaDoc) compare(t *testing.T, at string, schema any, shape *oaShape) {
	t.Helper()
	s := d.resolve(schema)
	if s == nil {
		t.Errorf("%s: no schema", at)
		return
	}
	if shape == nil || shape.kind == "" {
		return // the source does not tell
	}
	got := oaTypes(s)
	want := []string{shape.kind}
	if shape.nullable {
		want = append(want, "null")
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: the schema's type is %v; the code writes %v", at, got, want)
		return
	}
	if shape.format != "" && oaStr(s["format"]) != shape.format {
		t.Errorf("%s: the schema needs format %s", at, shape.format)
	}
	switch shape.kind {
	case "array":
		d.compare(t, at+"[]", s["items"], shape.items)
	case "object":
		if shape.members == nil {
			return
		}
		props := oaObj(s["properties"])
		required := map[string]bool{}
		for _, r := range oaList(s["required"]) {
			required[oaStr(r)] = true
		}
		for name, ms := range shape.members {
			if props[name] == nil {
				t.Errorf("%s: %s writes member %q, which the schema does not have", at, shape.from, name)
				continue
			}
			if shape.required[name] != required[name] {
				t.Errorf("%s.%s: required is %t in the schema, but %s writes it %s", at, name, required[name], shape.from,
					map[bool]string{true: "always", false: "only sometimes"}[shape.required[name]])
			}
			d.compare(t, at+"."+name, props[name], ms)
		}
		for name := range props {
			if _, ok := shape.members[name]; !ok {
				t.Errorf("%s: the schema has member %q, which %s does not write", at, name, shape.from)
			}
		}
	}
}

func TestOpenAPIResponsesMatchHandlers(t *testing.T) {
	doc := loadOpenAPI(t)
	files := oaParsePackage(t)
	bodies := newOABodies(t, files)

	documented := map[string]oaOperation{}
	for _, op := range doc.operations() {
		documented[op.method+" "+oaNormalizePath(op.path)] = op
	}
	checked := 0
	for _, r := range oaRouteTable(t) {
		op, ok := documented[r.method+" "+oaNormalizePath(r.path)]
		if !ok {
			continue // reported by TestOpenAPIRoutesMatchRouter
		}
		fn := oaFindFunc(files, r.handler)
		if fn == nil {
			// A handler from outside the package (Config.Metrics): only its documented content can be checked.
			for code, resp := range oaObj(op.op["responses"]) {
				if strings.HasPrefix(code, "2") && oaObj(doc.resolve(resp)["content"])["application/json"] != nil {
					t.Errorf("%s %s: handler %s is not this package's; document its own media type, not application/json", r, code, r.handler)
				}
			}
			continue
		}
		responses := oaObj(op.op["responses"])
		var codes []string
		for code := range responses {
			if strings.HasPrefix(code, "2") {
				codes = append(codes, code)
			}
		}
		sort.Strings(codes)
		if want := oaSuccessStatuses(t, files, r.handler); !slices.Equal(codes, want) {
			t.Errorf("%s documents 2xx %v; handler %s writes %v", r, codes, r.handler, want)
		}

		shapes := bodies.handlerBodies(fn)
		for _, code := range codes {
			content := oaObj(doc.resolve(responses[code])["content"])
			if len(shapes) == 0 {
				// Not a JSON handler (it writes the document itself, for one).
				if content["application/json"] != nil {
					t.Errorf("%s %s is documented as application/json, but handler %s does not call writeJSON", r, code, r.handler)
				}
				continue
			}
			js := oaObj(content["application/json"])
			if js == nil {
				t.Errorf("%s %s: handler %s writes JSON; document it as application/json", r, code, r.handler)
				continue
			}
			for _, shape := range shapes {
				if shape.kind == "" {
					t.Errorf("%s: cannot tell what handler %s writes; write a struct or map literal (or extend oaBodies)", r, r.handler)
					continue
				}
				checked++
				doc.compare(t, fmt.Sprintf("%s %s", r, code), js["schema"], shape)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no response body was checked")
	}
}

// oaIntConst returns the value of a package-level integer constant written as a literal.
func oaIntConst(files []*ast.File, name string) (int64, bool) {
	for _, f := range files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name != name || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.INT {
						v, err := strconv.ParseInt(strings.ReplaceAll(lit.Value, "_", ""), 0, 64)
						return v, err == nil
					}
				}
			}
		}
	}
	return 0, false
}

// ---------------------------------------------------------------------------------------------------------
// Request limits: the document's bounds are the code's.

func TestOpenAPILimitsMatchCode(t *testing.T) {
	doc := loadOpenAPI(t)
	prop := func(schema, name string) map[string]any {
		p := doc.resolve(oaObj(doc.schema(schema)["properties"])[name])
		if p == nil {
			t.Fatalf("schema %s has no property %s", schema, name)
		}
		return p
	}
	bound := func(schema, name, key string, want int64) {
		t.Helper()
		if got, ok := oaNum(prop(schema, name)[key]); !ok || got != want {
			t.Errorf("%s.%s %s is %v, the code's limit is %d", schema, name, key, prop(schema, name)[key], want)
		}
	}
	bound("TopUpRequest", "amount", "minimum", 1)
	bound("TopUpRequest", "amount", "maximum", booking.MaxTopUp)
	bound("ReserveRequest", "seatNumber", "minimum", 1)
	bound("NewConcert", "title", "minLength", 1)
	bound("NewConcert", "title", "maxLength", maxTitleLength)
	bound("NewConcert", "maxActive", "minimum", 1)
	bound("NewConcert", "maxActive", "maximum", maxMaxActive)
	bound("NewConcert", "dates", "minItems", 1)
	bound("NewConcert", "dates", "maxItems", maxDates)
	bound("NewConcertDate", "seats", "minimum", 1)
	bound("NewConcertDate", "seats", "maximum", maxConcertSeats)
	bound("NewConcertDate", "price", "minimum", 0)
	bound("NewConcertDate", "price", "maximum", maxTicketPrice)
	bound("NewConcert", "maxSeatsPerOrder", "maximum", booking.MaxSeatsPerOrder)
	bound("ReserveRequest", "seatNumbers", "maxItems", booking.MaxSeatsPerOrder)
	bound("AdmissionRequest", "maxActive", "minimum", 1)
	bound("AdmissionRequest", "maxActive", "maximum", maxMaxActive)
	// The page size of the bookings list, if the package has one.
	if limit, ok := oaIntConst(oaParsePackage(t), "maxListLimit"); ok {
		found := false
		for _, p := range oaList(oaObj(oaObj(oaObj(doc.root["paths"])["/api/v1/admin/bookings"])["get"])["parameters"]) {
			pm := doc.resolve(p)
			if oaStr(pm["name"]) == "limit" {
				found = true
				if got, _ := oaNum(oaObj(pm["schema"])["maximum"]); got != limit {
					t.Errorf("GET /api/v1/admin/bookings limit maximum is %d, the code's maxListLimit is %d", got, limit)
				}
			}
		}
		if !found {
			t.Error("GET /api/v1/admin/bookings does not document its limit parameter")
		}
	}
	for schema, fields := range map[string][]string{
		"TokenRequest":   {"UUID"},
		"ReserveRequest": {"UUID", "concertDate"}, // and seatNumber or seatNumbers
		"TopUpRequest":   {"amount"},
		"PaymentRequest": {"UUID"},
		"NewConcert":     {"concertCode", "title", "maxActive", "dates"},
		"NewConcertDate": {"concertDate", "seats", "price"},
	} {
		_, required := oaProperties(doc, schema)
		sort.Strings(fields)
		if !slices.Equal(required, fields) {
			t.Errorf("schema %s requires %v; the handler requires %v", schema, required, fields)
		}
	}
	for _, f := range []struct{ schema, name string }{
		{"TopUpRequest", "amount"}, {"NewConcert", "maxActive"},
		{"NewConcertDate", "seats"}, {"NewConcertDate", "price"},
	} {
		if !slices.Equal(oaTypes(prop(f.schema, f.name)), []string{"integer"}) {
			t.Errorf("%s.%s must be an integer", f.schema, f.name)
		}
	}
	if oaStr(doc.schema("UserUUID")["format"]) != "uuid" {
		t.Error("UserUUID must have format uuid")
	}
	if ex := oaObj(doc.resolve(oaObj(oaObj(doc.root["components"])["responses"])["PayloadTooLarge"])); !strings.Contains(
		fmt.Sprint(oaObj(oaObj(oaObj(ex["content"])["application/problem+json"])["example"])["detail"]), strconv.Itoa(maxBodyBytes)) {
		t.Errorf("the PayloadTooLarge example must name the body limit of %d bytes", maxBodyBytes)
	}

	// The patterns accept and refuse what the code does.
	pattern := func(schema string) *regexp.Regexp {
		re, err := regexp.Compile(oaStr(doc.schema(schema)["pattern"]))
		if err != nil {
			t.Fatalf("schema %s: pattern: %v", schema, err)
		}
		return re
	}
	codeRE := pattern("ConcertCode")
	for _, c := range []string{"DEMO", "xmas-2026", "a", "A_b-9", strings.Repeat("a", 64), strings.Repeat("a", 65), "-a", "_a", "a b", "a/b", "", "한국", "a.b"} {
		if codeRE.MatchString(c) != booking.ValidConcertCode(c) {
			t.Errorf("ConcertCode pattern and booking.ValidConcertCode disagree on %q", c)
		}
	}
	uuidRE := pattern("UserUUID")
	for _, u := range []string{"11111111-1111-4111-8111-111111111111", "3F2A6C1E-8D4B-4C8E-9A51-2B7F0E9D4C11", "{11111111-1111-4111-8111-111111111111}",
		"111111111111411181111111111111111111", "11111111-1111-4111-8111-11111111111", "urn:uuid:11111111-1111-4111-8111-111111111111", "not-a-uuid", "1111111g-1111-4111-8111-111111111111"} {
		_, err := booking.ParseUserID(u)
		if uuidRE.MatchString(u) != (err == nil) {
			t.Errorf("UserUUID pattern and booking.ParseUserID disagree on %q", u)
		}
	}
	dateRE := pattern("ConcertDate")
	for _, d := range []string{"2026-12-24T19:00:00", "2026-12-24", "2026-12-24T19:00:00Z", "2026-12-24T19:00:00+09:00", "2026-12-24 19:00:00", "2026-2-24T19:00:00", "2026-12-24T19:00"} {
		_, err := booking.ParseDate(d)
		if dateRE.MatchString(d) != (err == nil) {
			t.Errorf("ConcertDate pattern and booking.ParseDate disagree on %q", d)
		}
	}
}

// ---------------------------------------------------------------------------------------------------------
// (d) GET /openapi.yaml serves exactly the embedded document, which is the file in the repository.

func TestOpenAPIServedDocument(t *testing.T) {
	onDisk, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, openAPI) || !bytes.Equal(OpenAPI(), openAPI) {
		t.Fatal("the embedded document is not api/openapi.yaml")
	}
	rec := httptest.NewRecorder()
	oaTestHandler(t).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.yaml", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.yaml: status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/yaml") {
		t.Errorf("GET /openapi.yaml: Content-Type %q, want application/yaml", ct)
	}
	if !bytes.Equal(rec.Body.Bytes(), onDisk) {
		t.Errorf("GET /openapi.yaml served %d bytes that differ from api/openapi.yaml (%d bytes)", rec.Body.Len(), len(onDisk))
	}
	// And the document's own entry for it says so.
	doc := loadOpenAPI(t)
	ok := oaObj(oaObj(oaObj(oaObj(oaObj(doc.root["paths"])["/openapi.yaml"])["get"])["responses"])["200"])
	if oaObj(ok["content"])["application/yaml"] == nil {
		t.Error("GET /openapi.yaml must be documented as 200 application/yaml")
	}
}

// A 405 names the methods the resource has in its Allow header (RFC 9110, 15.5.6), and HEAD is answered
// wherever GET is (RFC 9110, 9.1), with the headers of the GET and no body.
func TestMethodNotAllowedNamesTheAllowedMethodsAndHeadIsAnswered(t *testing.T) {
	doc := loadOpenAPI(t)
	byPath := map[string][]string{}
	for _, op := range doc.operations() {
		byPath[op.path] = append(byPath[op.path], op.method)
	}
	h := oaTestHandler(t)
	for path, methods := range byPath {
		want := []string{}
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if slices.Contains(methods, m) {
				want = append(want, m)
				if m == "GET" {
					want = append(want, "HEAD")
				}
			}
		}
		for _, m := range []string{"PUT", "DELETE"} {
			if slices.Contains(methods, m) {
				continue
			}
			rec := oaProbe(h, m, path)
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s answers %d, not 405", m, path, rec.Code)
				continue
			}
			if got := rec.Header().Get("Allow"); got != strings.Join(want, ", ") {
				t.Errorf("%s %s: Allow %q, want %q", m, path, got, strings.Join(want, ", "))
			}
		}
	}

	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, path := range []string{"/healthz", "/openapi.yaml"} {
		get, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = get.Body.Close()
		head, err := http.Head(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(head.Body)
		_ = head.Body.Close()
		if head.StatusCode != get.StatusCode || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") || len(body) != 0 {
			t.Errorf("HEAD %s: %d %q with %d body bytes; GET answers %d %q", path, head.StatusCode,
				head.Header.Get("Content-Type"), len(body), get.StatusCode, get.Header.Get("Content-Type"))
		}
	}
}
