// Package contract checks HTTP exchanges with the API against its OpenAPI document (api/openapi.yaml), with
// kin-openapi's validator: the end-to-end tests send every request through it, so a field, status, header
// or content type that drifts from the document fails the test that saw it. It is test infrastructure: it
// judges, it never changes a request or a response.
package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Checker validates exchanges against the document. It is safe for concurrent use.
type Checker struct {
	router routers.Router
}

// New loads and validates an OpenAPI document and returns its checker. The document's servers are
// replaced by one relative server, so exchanges with a test server on any address are routed.
func New(document []byte) (*Checker, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(document)
	if err != nil {
		return nil, fmt.Errorf("contract: load the document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("contract: the document is not valid OpenAPI: %w", err)
	}
	doc.Servers = openapi3.Servers{{URL: "/"}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("contract: route the document: %w", err)
	}
	return &Checker{router: router}, nil
}

// Exchange is one request and the response the API gave to it.
type Exchange struct {
	Request     *http.Request // its body is not read; give it as RequestBody
	RequestBody []byte
	Status      int
	Header      http.Header
	Body        []byte
}

// Check validates an exchange. The response must be one the document gives for the operation: a
// documented status, with its content type, headers and schema. The request is judged by the answer: a
// request the document rejects must not have been accepted (2xx), since a server that takes what its
// document forbids has drifted from it; requests that are meant to be bad (the error tests) are answered
// with a documented 4xx and pass. A path or method the document does not have must be answered 404 or 405.
func (c *Checker) Check(ctx context.Context, x Exchange) error {
	req := x.Request.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(x.RequestBody))
	// A server reads a field value without its surrounding whitespace, and an empty one as absent.
	req.Header = req.Header.Clone()
	for name, values := range req.Header {
		kept := values[:0]
		for _, v := range values {
			if v = strings.Trim(v, " \t"); v != "" {
				kept = append(kept, v)
			}
		}
		if len(kept) == 0 {
			delete(req.Header, name)
		} else {
			req.Header[name] = kept
		}
	}
	if req.Method == http.MethodHead {
		req.Method = http.MethodGet // the API answers HEAD wherever it answers GET, without the body
	}
	if len(x.RequestBody) > 0 {
		// The API reads every body as JSON whatever its Content-Type says (curl -d sends a form type), as
		// the document's description says; judge it as the server reads it.
		req.Header.Set("Content-Type", "application/json")
	}
	if unrouted(x) {
		return nil
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("%s %s is not in the document (%v), yet it was answered %d", req.Method, req.URL.Path, err, x.Status)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && x.Status >= 200 && x.Status < 300 {
		return fmt.Errorf("%s %s was answered %d, but the document rejects the request: %w", req.Method, req.URL.Path, x.Status, err)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: x.Status, Header: x.Header,
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true, MultiError: true,
			ExcludeResponseBody: x.Request.Method == http.MethodHead, // a HEAD answer has no body
		},
	}
	out.SetBodyBytes(x.Body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("%s %s answered %d, which the document does not allow: %w", req.Method, req.URL.Path, x.Status, err)
	}
	return nil
}

// unrouted reports whether the response is the router's own answer to a path or method it does not route
// (404 not-found, 405 method-not-allowed, a redirect to the clean path): the document describes the routed operations, and a path the
// document's router would still match (an escaped slash in a parameter, say) is no operation's either.
func unrouted(x Exchange) bool {
	switch x.Status {
	case http.StatusMovedPermanently, http.StatusPermanentRedirect:
		return true // the router's redirect of an unclean path (a doubled slash, a dot segment) to the clean one
	case http.StatusNotFound, http.StatusMethodNotAllowed:
	default:
		return false
	}
	var p struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(x.Body, &p) != nil {
		return x.Request.Method == http.MethodHead // a HEAD answer has no body to tell
	}
	return p.Type == "/problems/not-found" || p.Type == "/problems/method-not-allowed"
}
