//go:build nodev

package main

import (
	"context"
	"errors"
	"io"
)

// errNoDevServer is what `concert dev` answers in a binary built with -tags nodev. Such a binary (the Docker
// image) links neither the embedded Temporal server nor its Web UI, which are large and only for development;
// a deployment runs `concert api` and `concert worker` against a real Temporal cluster instead.
var errNoDevServer = errors.New("this binary was built without the dev server (-tags nodev); " +
	"use `concert api` and `concert worker` against a Temporal cluster (TEMPORAL_ADDRESS) and PostgreSQL (DATABASE_URL)")

// runDev stands in for the dev server in a nodev build and refuses to run.
func runDev(context.Context, config, io.Writer) error {
	return errNoDevServer
}
