package gateway

// CallerKind is what kind of holder asks the gateway for something.
type CallerKind string

// Caller kinds (DESIGN.md, "Who may call what").
const (
	// CallerPOS is a lane's POS terminal: it acts on its own lane only.
	CallerPOS CallerKind = "pos"
	// CallerSupervisor is a store supervisor: it acts on any lane of its
	// store, and may reverse any of its sales.
	CallerSupervisor CallerKind = "supervisor"
	// CallerOperator is an operator on the gateway's host, through its
	// admin socket: HQ's documents, the audit log, the outbox; never a
	// lane's payments.
	CallerOperator CallerKind = "operator"
)

// Caller is who asks: the adapter that received the call fills it from
// what authenticated the caller (a verified certificate, a unix socket's
// peer credentials), never from the request. The zero Caller is nobody and
// may act on nothing.
type Caller struct {
	Kind CallerKind
	// Store is the store a POS terminal or supervisor belongs to.
	Store string
	// Lane is a POS terminal's lane.
	Lane string
	// Name is a supervisor's or operator's name.
	Name string
	// ID names the caller in the audit log and the logs: its SPIFFE ID, or
	// for example "unix:uid=0" for an operator on the admin socket.
	ID string
}

// MayActOn reports whether c may act on lane of store: a POS terminal on its
// own lane of its own store, a supervisor on any lane of its store, nobody
// else on any.
func (c Caller) MayActOn(store, lane string) bool {
	switch c.Kind {
	case CallerPOS:
		return c.Store == store && c.Lane == lane && lane != ""
	case CallerSupervisor:
		return c.Store == store && store != ""
	}
	return false
}

// String returns c's ID, or "nobody" for the zero Caller.
func (c Caller) String() string {
	if c.ID == "" {
		return "nobody"
	}
	return c.ID
}
