package main

// Docker has no engine on the machines this project is built on, so docker-compose.yml and the Dockerfile are
// proven here by reading them: the services, ports and environment variables they use must agree with the code
// (config.go, main.go), the README and each other, and the image must leave the embedded dev server out.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"gopkg.in/yaml.v3"

	"github.com/ticketing/concert/workflows"
)

// wantSearchAttributes are the custom search attributes the workflows use (name to Temporal type, as the
// Temporal CLI spells it), which the compose stack must register.
func wantSearchAttributes() map[string]string {
	out := map[string]string{}
	for name, typ := range workflows.SearchAttributes() {
		out[name] = typ.String()
	}
	return out
}

// Where things are, relative to this package's directory (where `go test` runs).
const (
	repoRootDir      = "../.."
	composePath      = repoRootDir + "/docker-compose.yml"
	dockerfilePath   = repoRootDir + "/Dockerfile"
	readmeFile       = repoRootDir + "/README.md"
	goModPath        = repoRootDir + "/go.mod"
	configGoPath     = "config.go"
	mainGoPath       = "main.go"
	moduleImportPath = "github.com/ticketing/concert"
	commandPackage   = moduleImportPath + "/cmd/concert"
	setupService     = "temporal-setup"
	temporalService  = "temporal"
)

// ourServices are the compose services that run this repository's binary, with the subcommand each runs.
var ourServices = map[string]string{"api": "api", "worker": "worker", "migrate": "migrate"}

// requiredEnv lists, per subcommand, the variables it cannot run without outside `concert dev`.
var requiredEnv = map[string][]string{
	"api":     {envDatabaseURL, envTemporalAddress, envAdminToken, envTokenSecret},
	"worker":  {envDatabaseURL, envTemporalAddress},
	"migrate": {envDatabaseURL},
}

// devOnlyEnv are read by `concert dev` alone; setting them on another subcommand would do nothing.
var devOnlyEnv = []string{envTemporalPort, envTemporalUIPort, envDataDir}

// composeSecrets stand in for the values a user must pass to `docker compose up`.
var composeSecrets = map[string]string{
	envAdminToken:  "compose-test-admin-token",
	envTokenSecret: "compose-test-token-secret-0123456789",
}

func TestComposeDefinesTheWholeStack(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"postgres", temporalService, "temporal-schema", setupService, "temporal-ui",
		"migrate", "worker", "api"} {
		assert.Contains(t, c.Services, name, "docker-compose.yml has no service %q", name)
	}
}

func TestComposeImagesArePinned(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		if s.Build != nil {
			continue
		}
		require.NotEmpty(t, s.Image, "service %s has neither build nor image", name)
		assert.Regexp(t, `^[^:@\s]+(:[^:@\s]+)$`, s.Image, "service %s: image %q needs an explicit tag", name, s.Image)
		assert.NotRegexp(t, `:latest$`, s.Image, "service %s: pin a version, not latest", name)
	}
}

func TestComposeOurServicesBuildTheDockerfileAndRunARealSubcommand(t *testing.T) {
	c := loadCompose(t)
	subcommands := mainSubcommands(t)
	var built []string
	for name, s := range c.Services {
		if s.Build != nil {
			built = append(built, name)
		}
	}
	assert.ElementsMatch(t, slices.Collect(maps.Keys(ourServices)), built, "the services built from this repository")

	for name, cmd := range ourServices {
		s := c.Services[name]
		require.NotNil(t, s.Build, "service %s must build from the Dockerfile", name)
		assert.Equal(t, ".", filepath.Clean(s.Build.Context), "service %s: build context", name)
		dockerfile := s.Build.Dockerfile
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		assert.FileExists(t, filepath.Join(repoRootDir, s.Build.Context, dockerfile), "service %s: Dockerfile", name)
		assert.Equal(t, []string{cmd}, []string(s.Command), "service %s: command", name)
		assert.Contains(t, subcommands, cmd, "service %s runs %q, which main.go does not know", name, cmd)
		assert.NotEqual(t, "dev", cmd, "service %s: the image has no dev server", name)
	}
}

func TestComposeEnvironmentUsesOnlyTheCodesVariableNames(t *testing.T) {
	c := loadCompose(t)
	known := configEnvNames(t)
	readme := readRepoFile(t, readmeFile)
	prefixed := regexp.MustCompile(`^(CONCERT_|TEMPORAL_)|^DATABASE_URL$`)

	for name := range ourServices {
		for key, value := range c.Services[name].Environment {
			if !prefixed.MatchString(key) {
				continue
			}
			assert.Contains(t, known, key, "service %s sets %s, which config.go does not declare", name, key)
			assert.Contains(t, readme, "`"+key+"`", "service %s sets %s, which the README does not document", name, key)
			assert.NotContains(t, devOnlyEnv, key, "service %s sets %s, which only `concert dev` reads", name, key)
			// An interpolated variable with our prefixes is the same variable passed through from the user.
			for _, ref := range composeInterpolatedNames(value) {
				if prefixed.MatchString(ref) {
					assert.Equal(t, key, ref, "service %s: %s is set from ${%s}", name, key, ref)
				}
			}
		}
	}
}

func TestComposeServicesHaveTheVariablesTheirSubcommandNeeds(t *testing.T) {
	c := loadCompose(t)
	for name, cmd := range ourServices {
		env := c.Services[name].Environment
		for _, key := range requiredEnv[cmd] {
			assert.Contains(t, env, key, "service %s (concert %s) needs %s", name, cmd, key)
		}
	}
	// The secrets are the user's: no defaults in the file, and Compose refuses to start without them.
	for _, key := range []string{envAdminToken, envTokenSecret} {
		assert.True(t, strings.HasPrefix(c.Services["api"].Environment[key], "${"+key+":?"),
			"api: %s must be required from the user (${%s:?...}), is %q", key, key, c.Services["api"].Environment[key])
	}
}

// TestComposeEnvironmentIsAcceptedByTheCode runs each service's environment, resolved the way Compose resolves
// it with only the two secrets given, through the subcommand's own configuration parser.
func TestComposeEnvironmentIsAcceptedByTheCode(t *testing.T) {
	c := loadCompose(t)
	known := configEnvNames(t)

	for name, cmd := range ourServices {
		t.Run(name, func(t *testing.T) {
			env, explicit := map[string]string{}, map[string]string{}
			for key, value := range c.Services[name].Environment {
				resolved, err := composeInterpolate(value, composeSecrets)
				require.NoError(t, err, "%s=%s", key, value)
				env[key] = resolved
				if !isPassThrough(key, value) {
					explicit[key] = resolved
				}
			}
			cfg := parseConfigFromEnv(t, cmd, env, known, cmd == "api")

			// A variable the file passes through from the user (${NAME:-default}) must default to what the
			// code does when the variable is not set at all.
			want := parseConfigFromEnv(t, cmd, explicit, known, cmd == "api")
			assert.Equal(t, want, cfg, "the defaults of the variables passed through must be the code's")

			u, err := url.Parse(cfg.DatabaseURL)
			require.NoError(t, err)
			assert.Contains(t, c.Services, u.Hostname(), "DATABASE_URL must name the compose PostgreSQL service")
			if cmd == "migrate" {
				return
			}
			host, port, err := net.SplitHostPort(cfg.TemporalAddress)
			require.NoError(t, err, "%s=%q", envTemporalAddress, cfg.TemporalAddress)
			assert.Equal(t, temporalService, host, "%s must name the compose Temporal service", envTemporalAddress)
			assert.Equal(t, strconv.Itoa(defaultTemporalPort), port, "%s: the Temporal frontend port", envTemporalAddress)
			assert.Equal(t, c.Services[setupService].Environment[envTemporalNamespace], cfg.TemporalNamespace,
				"the namespace temporal-setup prepares")
		})
	}
}

// TestComposeHealthChecksProbeWhatTheServiceListensOn checks that each of our services with a health check
// asks a port the service is configured to listen on, on every interface.
func TestComposeHealthChecksProbeWhatTheServiceListensOn(t *testing.T) {
	c := loadCompose(t)
	for name := range ourServices {
		s := c.Services[name]
		var probe string
		for _, arg := range s.Healthcheck.Test {
			if strings.HasPrefix(arg, "http://") {
				probe = arg
			}
		}
		if probe == "" {
			continue
		}
		u, err := url.Parse(probe)
		require.NoError(t, err)
		var listening []string
		for _, value := range s.Environment {
			if host, port, err := net.SplitHostPort(value); err == nil && (host == "0.0.0.0" || host == "::") {
				listening = append(listening, port)
			}
		}
		assert.Contains(t, listening, u.Port(), "service %s: the health check asks %s, which it does not listen on", name, probe)
	}
}

func TestComposeDatabaseURLNamesADatabaseThePostgresServiceCreates(t *testing.T) {
	c := loadCompose(t)
	owners := map[string]string{}
	for _, v := range c.Services["postgres"].Volumes {
		source, target, _ := strings.Cut(v, ":")
		if strings.HasPrefix(target, "/docker-entrypoint-initdb.d/") {
			for _, m := range regexp.MustCompile(`(?i)CREATE DATABASE (\w+) OWNER (\w+)`).
				FindAllStringSubmatch(readRepoFile(t, filepath.Join(repoRootDir, source)), -1) {
				owners[m[1]] = m[2]
			}
		}
	}
	require.NotEmpty(t, owners, "postgres mounts no init script that creates databases")
	for name := range ourServices {
		raw, err := composeInterpolate(c.Services[name].Environment[envDatabaseURL], composeSecrets)
		require.NoError(t, err)
		u, err := url.Parse(raw)
		require.NoError(t, err)
		db := strings.TrimPrefix(u.Path, "/")
		assert.Contains(t, owners, db, "service %s: database %q is not created by the init script", name, db)
		assert.Equal(t, owners[db], u.User.Username(), "service %s: connects as the owner of %s", name, db)
	}
}

func TestComposeAPIPublishesThePortItListensOn(t *testing.T) {
	c := loadCompose(t)
	api := c.Services["api"]
	_, readmePort, err := net.SplitHostPort(defaultHTTPAddr)
	require.NoError(t, err)

	target, ok := api.publishedTarget(readmePort)
	require.True(t, ok, "api must publish host port %s (the README's API address), has %v", readmePort, api.Ports)

	host, port, err := net.SplitHostPort(api.Environment[envHTTPAddr])
	require.NoError(t, err, "api: %s=%q", envHTTPAddr, api.Environment[envHTTPAddr])
	assert.Equal(t, target, port, "api: %s must listen on the published container port", envHTTPAddr)
	assert.Contains(t, []string{"", "0.0.0.0", "::"}, host, "api: %s must listen on every interface", envHTTPAddr)

	check := strings.Join(api.Healthcheck.Test, " ")
	assert.Contains(t, check, "127.0.0.1:"+target+"/readyz", "api: the health check asks /readyz on its own port")
}

func TestComposePublishesTheREADMEsTemporalPorts(t *testing.T) {
	c := loadCompose(t)
	ui := strconv.Itoa(defaultTemporalUIPort)
	target, ok := c.Services["temporal-ui"].publishedTarget(ui)
	assert.True(t, ok, "temporal-ui must publish %s (the README's UI port)", ui)
	assert.Equal(t, "8080", target, "temporal-ui: the UI image listens on 8080")

	frontend := strconv.Itoa(defaultTemporalPort)
	target, ok = c.Services[temporalService].publishedTarget(frontend)
	assert.True(t, ok, "temporal must publish %s", frontend)
	assert.Equal(t, frontend, target, "temporal: the frontend listens on %s", frontend)
}

func TestComposeDependenciesWaitUntilHealthyOrCompleted(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		for dep, cond := range s.DependsOn {
			target, ok := c.Services[dep]
			if !assert.True(t, ok, "service %s depends on unknown service %s", name, dep) {
				continue
			}
			switch cond {
			case "service_healthy":
				assert.NotEmpty(t, target.Healthcheck.Test, "%s waits for %s to be healthy, which has no health check", name, dep)
			case "service_completed_successfully":
				assert.Equal(t, "no", target.Restart, "%s waits for %s to complete, which must be a one-shot (restart: \"no\")", name, dep)
			default:
				t.Errorf("%s depends on %s with condition %q: wait for service_healthy or service_completed_successfully",
					name, dep, cond)
			}
		}
	}
	for _, name := range []string{"api", "worker"} {
		assert.Equal(t, "service_completed_successfully", c.Services[name].DependsOn["migrate"], "%s waits for migrate", name)
		assert.Equal(t, "service_completed_successfully", c.Services[name].DependsOn[setupService],
			"%s waits for the search attributes", name)
	}
	for _, name := range []string{"postgres", temporalService, "temporal-ui", "api", "worker"} {
		assert.NotEmpty(t, c.Services[name].Healthcheck.Test, "service %s has no health check", name)
	}
}

func TestComposeMountsFilesThatExist(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			source, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(source, ".") {
				_, err := os.Stat(filepath.Join(repoRootDir, source))
				assert.NoError(t, err, "service %s mounts %s", name, source)
			}
		}
	}
}

func TestComposeRegistersTheSearchAttributes(t *testing.T) {
	c := loadCompose(t)
	setup := c.Services[setupService]
	got := map[string]string{}
	for _, arg := range setup.Command {
		name, typ, ok := strings.Cut(arg, "=")
		require.True(t, ok, "%s: argument %q is not NAME=Type", setupService, arg)
		assert.NotContains(t, got, name, "%s registers %s twice", setupService, name)
		parsed, err := enumspb.IndexedValueTypeFromString(typ)
		if assert.NoError(t, err, "%s: %s has no Temporal type %q", setupService, name, typ) {
			assert.Equal(t, parsed.String(), typ, "%s: spell %s's type as the Temporal CLI does", setupService, name)
		}
		got[name] = typ
	}
	assert.Equal(t, wantSearchAttributes(), got, "the search attributes %s registers", setupService)

	// The arguments go to the script that registers them, mounted from the repository.
	require.Len(t, setup.Entrypoint, 2, "%s: entrypoint [sh, script]", setupService)
	script := composeHostPath(t, setup, setup.Entrypoint[1])
	assert.Contains(t, readRepoFile(t, script), "temporal operator search-attribute create")
	assert.Equal(t, "service_healthy", setup.DependsOn[temporalService], "%s waits for a healthy Temporal", setupService)
}

func TestDockerfileBuildsWithoutTheDevServerAndShipsOnlyTheBinary(t *testing.T) {
	stages := parseDockerfile(t, readRepoFile(t, dockerfilePath))
	require.GreaterOrEqual(t, len(stages), 2, "the Dockerfile must be multi-stage")
	names := map[string]bool{}
	for _, s := range stages {
		assert.Regexp(t, `^[^:@\s]+:[^:@\s]+$`, s.image, "stage %s: pin the base image tag", s.name)
		assert.NotRegexp(t, `:latest$`, s.image, "stage %s: pin a version, not latest", s.name)
		names[s.name] = true
	}

	// The Go toolchain of the build is the one go.mod names.
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(readRepoFile(t, goModPath))
	require.NotNil(t, goLine, "go.mod has no go line")
	assert.True(t, strings.HasPrefix(stages[0].image, "golang:"+goLine[1]+"-") || stages[0].image == "golang:"+goLine[1],
		"build stage %q must use Go %s", stages[0].image, goLine[1])

	var buildCmd string
	for _, s := range stages[:len(stages)-1] {
		for _, in := range s.instructions {
			if in.op == "RUN" && strings.Contains(in.args, "go build") {
				buildCmd = in.args
			}
		}
	}
	require.NotEmpty(t, buildCmd, "no stage runs go build")
	assert.Regexp(t, `-tags[= ]'?"?([\w,]*,)?nodev\b`, buildCmd, "the image binary must be built with -tags nodev")
	assert.Contains(t, buildCmd, "./cmd/concert")
	assert.Contains(t, buildCmd, "CGO_ENABLED=0", "a static binary, for a runtime image without libc guarantees")

	final := stages[len(stages)-1]
	var entrypoint, cmd, expose, user string
	for _, in := range final.instructions {
		switch in.op {
		case "COPY", "ADD":
			from := regexp.MustCompile(`--from=(\S+)`).FindStringSubmatch(in.args)
			if assert.NotNil(t, from, "the final stage copies from the build context (%s %s): no source in the image",
				in.op, in.args) {
				assert.True(t, names[from[1]], "the final stage copies from %q, which is not a build stage", from[1])
			}
		case "ENTRYPOINT":
			entrypoint = in.args
		case "CMD":
			cmd = in.args
		case "EXPOSE":
			expose = in.args
		case "USER":
			user = in.args
		}
	}
	assert.JSONEq(t, `["/concert"]`, entrypoint, "ENTRYPOINT")
	assert.JSONEq(t, `["api"]`, cmd, "CMD")
	c := loadCompose(t)
	apiPort, _ := c.Services["api"].publishedTarget(strings.Split(defaultHTTPAddr, ":")[1])
	assert.Equal(t, apiPort, expose, "EXPOSE the port the compose api listens on")
	assert.NotEmpty(t, user, "the final stage must not run as root")
	assert.NotRegexp(t, `^(root|0)(:|$)`, user, "the final stage must not run as root")

	// The compose health check of the API runs wget inside this image.
	if slices.Contains(c.Services["api"].Healthcheck.Test, "wget") {
		assert.Regexp(t, `^(alpine|busybox):`, final.image, "the api health check needs wget in the runtime image")
	}
}

// TestNodevBuildLeavesOutTheDevServer proves the build tag the Dockerfile uses keeps the embedded Temporal server
// and Web UI out of the binary, and that without it they are in (so this test can fail).
func TestNodevBuildLeavesOutTheDevServer(t *testing.T) {
	embedded := regexp.MustCompile(`^(go\.temporal\.io/server|github\.com/temporalio/ui-server)(/|$)`)
	count := func(args ...string) int {
		out := runGoCommand(t, append([]string{"list", "-deps"}, args...)...)
		n := 0
		for line := range strings.Lines(out) {
			if embedded.MatchString(strings.TrimSpace(line)) {
				n++
			}
		}
		return n
	}
	assert.Positive(t, count(commandPackage), "without -tags nodev the dev server is linked")
	assert.Zero(t, count("-tags", "nodev", commandPackage), "with -tags nodev no package of the dev server is linked")
}

// TestNodevBinaryRefusesDev builds the binary with the Dockerfile's build tag and runs `concert dev` with it.
func TestNodevBinaryRefusesDev(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "concert")
	runGoCommand(t, "build", "-tags", "nodev", "-o", bin, commandPackage)

	info := runGoCommand(t, "version", "-m", bin)
	assert.NotContains(t, info, "go.temporal.io/server", "the nodev binary's modules")
	assert.NotContains(t, info, "github.com/temporalio/ui-server", "the nodev binary's modules")

	var stderr bytes.Buffer
	cmd := exec.Command(bin, "dev")
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "concert dev must fail in a nodev binary: %v", err)
	assert.Contains(t, stderr.String(), "built without the dev server")
}

// composeFile is the part of docker-compose.yml these tests read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string                     `yaml:"image"`
	Build       *composeBuild              `yaml:"build"`
	Command     composeList                `yaml:"command"`
	Entrypoint  composeList                `yaml:"entrypoint"`
	Environment composeEnv                 `yaml:"environment"`
	Ports       []composePort              `yaml:"ports"`
	Volumes     []string                   `yaml:"volumes"`
	DependsOn   composeDeps                `yaml:"depends_on"`
	Healthcheck struct{ Test composeList } `yaml:"healthcheck"`
	Restart     string                     `yaml:"restart"`
}

// publishedTarget returns the container port published on host port hostPort.
func (s composeService) publishedTarget(hostPort string) (string, bool) {
	for _, p := range s.Ports {
		if p.published == hostPort {
			return p.target, true
		}
	}
	return "", false
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

// UnmarshalYAML accepts both `build: .` and `build: {context: ., dockerfile: ...}`.
func (b *composeBuild) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	type plainBuild composeBuild
	return n.Decode((*plainBuild)(b))
}

// composeList accepts a YAML list or a single string (split on spaces, as Compose does for simple commands).
type composeList []string

func (l *composeList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strings.Fields(n.Value)
		return nil
	}
	return n.Decode((*[]string)(l))
}

// composeEnv accepts both the mapping form and the list of KEY=VALUE.
type composeEnv map[string]string

func (e *composeEnv) UnmarshalYAML(n *yaml.Node) error {
	*e = composeEnv{}
	if n.Kind == yaml.MappingNode {
		return n.Decode((*map[string]string)(e))
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		(*e)[k] = v
	}
	return nil
}

// composeDeps maps each dependency to its condition; the short list form has no condition ("").
type composeDeps map[string]string

func (d *composeDeps) UnmarshalYAML(n *yaml.Node) error {
	*d = composeDeps{}
	if n.Kind == yaml.SequenceNode {
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, name := range names {
			(*d)[name] = ""
		}
		return nil
	}
	var m map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	for name, dep := range m {
		(*d)[name] = dep.Condition
	}
	return nil
}

// composePort is one published port, from the short syntax ("[ip:]published:target[/proto]") or the long one.
type composePort struct{ published, target string }

func (p *composePort) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		var long struct {
			Published string `yaml:"published"`
			Target    string `yaml:"target"`
		}
		if err := n.Decode(&long); err != nil {
			return err
		}
		p.published, p.target = long.Published, long.Target
		return nil
	}
	spec, _, _ := strings.Cut(n.Value, "/")
	parts := strings.Split(spec, ":")
	p.target = parts[len(parts)-1]
	if len(parts) >= 2 {
		p.published = parts[len(parts)-2]
	}
	return nil
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	require.NoError(t, yaml.Unmarshal([]byte(readRepoFile(t, composePath)), &c), "parse docker-compose.yml")
	require.NotEmpty(t, c.Services, "docker-compose.yml has no services")
	return c
}

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// composeHostPath maps a path inside service s's container to the repository file mounted there.
func composeHostPath(t *testing.T, s composeService, inContainer string) string {
	t.Helper()
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], ".") {
			continue
		}
		if rel, err := filepath.Rel(parts[1], inContainer); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join(repoRootDir, parts[0], rel)
		}
	}
	t.Fatalf("%s is not mounted from the repository (volumes %v)", inContainer, s.Volumes)
	return ""
}

// configEnvNames returns the environment variable names config.go declares (its env* string constants), read
// from the source so that a new variable is known here the moment it is declared.
func configEnvNames(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), configGoPath, nil, 0)
	require.NoError(t, err)
	var names []string
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, id := range vs.Names {
				if !strings.HasPrefix(id.Name, "env") || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, err := strconv.Unquote(lit.Value)
					require.NoError(t, err)
					names = append(names, v)
				}
			}
		}
	}
	require.Contains(t, names, envDatabaseURL, "config.go's env constants were not found")
	return names
}

// mainSubcommands returns the subcommands main.go's run dispatches on (the string cases of its switch).
func mainSubcommands(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), mainGoPath, nil, 0)
	require.NoError(t, err)
	var cmds []string
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "run" {
			continue
		}
		ast.Inspect(fn, func(n ast.Node) bool {
			if cc, ok := n.(*ast.CaseClause); ok {
				for _, e := range cc.List {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						cmds = append(cmds, s)
					}
				}
			}
			return true
		})
	}
	require.Contains(t, cmds, "api", "main.go's subcommands were not found")
	return cmds
}

// parseConfigFromEnv runs parseConfig for cmd with exactly env set among the known variables.
func parseConfigFromEnv(t *testing.T, cmd string, env map[string]string, known []string, serving bool) config {
	t.Helper()
	for _, name := range known {
		t.Setenv(name, env[name]) // empty means unset to config.go
	}
	cfg, err := parseConfig(cmd, nil, false, serving)
	require.NoError(t, err, "concert %s rejects the compose environment", cmd)
	return cfg
}

// composeInterpolation matches Compose's ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}
// and $NAME.
var composeInterpolation = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// composeInterpolate resolves value the way Compose does, with vars as the user's environment.
func composeInterpolate(value string, vars map[string]string) (string, error) {
	var errs []error
	out := composeInterpolation.ReplaceAllStringFunc(value, func(m string) string {
		if m == "$$" {
			return "$"
		}
		g := composeInterpolation.FindStringSubmatch(m)
		name, op, arg := g[1], g[2], g[3]
		if name == "" {
			name = g[4]
		}
		v, set := vars[name]
		empty := !set || (strings.HasPrefix(op, ":") && v == "")
		switch {
		case strings.HasSuffix(op, "-") && empty:
			return arg
		case strings.HasSuffix(op, "?") && empty:
			errs = append(errs, fmt.Errorf("%s: %s", name, arg))
		}
		return v
	})
	return out, errors.Join(errs...)
}

// isPassThrough says whether value only passes variable key through from the user, with a default:
// ${KEY:-default} or ${KEY-default}.
func isPassThrough(key, value string) bool {
	g := composeInterpolation.FindStringSubmatch(value)
	return g != nil && g[0] == value && g[1] == key && strings.HasSuffix(g[2], "-")
}

// composeInterpolatedNames returns the variable names value interpolates.
func composeInterpolatedNames(value string) []string {
	var names []string
	for _, g := range composeInterpolation.FindAllStringSubmatch(value, -1) {
		if g[1] != "" {
			names = append(names, g[1])
		} else if g[4] != "" {
			names = append(names, g[4])
		}
	}
	return names
}

type dockerStage struct {
	image, name  string
	instructions []dockerInstruction
}

type dockerInstruction struct{ op, args string }

// parseDockerfile splits a Dockerfile into stages of instructions, joining continued lines and dropping
// comments.
func parseDockerfile(t *testing.T, text string) []dockerStage {
	t.Helper()
	var stages []dockerStage
	var pending string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && pending == "") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending += cont + " "
			continue
		}
		line, pending = pending+line, ""
		op, args, _ := strings.Cut(line, " ")
		op, args = strings.ToUpper(op), strings.TrimSpace(args)
		if op == "FROM" {
			fields := strings.Fields(args)
			fields = slices.DeleteFunc(fields, func(f string) bool { return strings.HasPrefix(f, "--") })
			require.NotEmpty(t, fields, "FROM without an image")
			st := dockerStage{image: fields[0], name: strconv.Itoa(len(stages))}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				st.name = fields[2]
			}
			stages = append(stages, st)
			continue
		}
		require.NotEmpty(t, stages, "Dockerfile instruction %s before FROM", op)
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, dockerInstruction{op, args})
	}
	require.NoError(t, sc.Err())
	return stages
}

// runGoCommand runs the go command of the toolchain running this test in the repository root.
func runGoCommand(t *testing.T, args ...string) string {
	t.Helper()
	//lint:ignore SA1019 the go command of the toolchain running this test is the one wanted; PATH is the fallback
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin, err = exec.LookPath("go")
		require.NoError(t, err, "no go command")
	}
	cmd := exec.Command(gobin, args...)
	cmd.Dir = repoRootDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go %s: %s", strings.Join(args, " "), stderr.String())
	return string(out)
}
