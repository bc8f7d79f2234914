package devserver

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// internalIP is where the history, matching and worker services listen: only this process talks to them.
const internalIP = "127.0.0.1"

// ports are the TCP ports one dev stack listens on. Internal services get ports the kernel picks at start rather
// than ports derived from Port (7234, 7235, ...), so two stacks side by side can never collide whatever Port and
// UIPort they use.
type ports struct {
	frontend, history, matching, worker int
	ui                                  int // 0 when the UI is disabled
}

// portRequest is one listener choosePorts must find room for.
type portRequest struct {
	name string
	ip   string
	port int // 0 means any free port
	dst  *int
}

// choosePorts checks that the requested ports are free and picks free ports for the rest. All listeners are held
// at once, so the picked ports are distinct, then released for the server to bind. Another process could take a
// picked port in the moment between release and bind; the kernel hands out ephemeral ports in rotation, so in
// practice it does not. A requested port that is busy is reported here with a clear error, because the server
// itself would only log a fatal error when it failed to bind.
func choosePorts(opts Options) (ports, error) {
	var p ports
	reqs := []portRequest{
		{name: "frontend", ip: opts.IP, port: opts.Port, dst: &p.frontend},
		{name: "history", ip: internalIP, dst: &p.history},
		{name: "matching", ip: internalIP, dst: &p.matching},
		{name: "worker", ip: internalIP, dst: &p.worker},
	}
	if opts.UIPort != NoUI {
		reqs = append(reqs, portRequest{name: "web UI", ip: opts.IP, port: opts.UIPort, dst: &p.ui})
	}

	listeners := make([]net.Listener, 0, len(reqs))
	defer func() {
		for _, l := range listeners {
			_ = l.Close() // nothing was accepted; closing cannot lose data
		}
	}()
	for _, r := range reqs {
		addr := net.JoinHostPort(r.ip, strconv.Itoa(r.port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return ports{}, fmt.Errorf("devserver: %s port %s is not available (another dev server running?): %w",
				r.name, addr, err)
		}
		listeners = append(listeners, l)
		tcp, ok := l.Addr().(*net.TCPAddr)
		if !ok {
			return ports{}, errors.New("devserver: listener has no TCP address")
		}
		*r.dst = tcp.Port
	}
	return p, nil
}
