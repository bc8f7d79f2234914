package api

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/ticketing/concert/booking"
)

// balanceResponse is a user's balance.
type balanceResponse struct {
	UUID    string `json:"UUID"`
	Balance int64  `json:"balance"`
}

// createUser registers a user with a zero balance.
func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if _, p := readBody(w, r, true); p != nil {
		writeProblem(w, r, p)
		return
	}
	u, err := h.store.CreateUser(r.Context())
	if err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "", ""))
		return
	}
	writeJSON(w, http.StatusCreated, balanceResponse{UUID: u.UUID, Balance: u.Balance})
}

// balance returns a user's balance.
func (h *Handler) balance(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, p := pathUser(r)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	u, err := h.store.GetUser(r.Context(), id)
	if err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "user-not-found", "no user has UUID "+id))
		return
	}
	writeJSON(w, http.StatusOK, balanceResponse{UUID: u.UUID, Balance: u.Balance})
}

// topUp adds to a user's balance; at most booking.MaxTopUp won at a time. With an Idempotency-Key a retry
// credits once: the key is stored with the ledger row in the same transaction.
func (h *Handler) topUp(w http.ResponseWriter, r *http.Request) {
	if p := h.limitAddress(r); p != nil {
		writeLimited(w, r, p)
		return
	}
	id, p := pathUser(r)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	if p := h.limitUser(id); p != nil {
		writeLimited(w, r, p)
		return
	}
	h.idempotent(w, r, "topup:"+id, func(w http.ResponseWriter, r *http.Request, _ string) {
		b, p := readBody(w, r, false)
		if p != nil {
			writeProblem(w, r, p)
			return
		}
		amount, p := b.integer("amount")
		if p != nil {
			writeProblem(w, r, p)
			return
		}
		if amount <= 0 || amount > booking.MaxTopUp {
			writeProblem(w, r, invalid("amount must be a whole number of won between 1 and %d", booking.MaxTopUp))
			return
		}
		u, err := h.store.TopUpOnce(r.Context(), id, amount, r.Header.Get("Idempotency-Key"))
		if err != nil {
			writeProblem(w, r, h.storeProblem(r.Context(), err, "user-not-found", "no user has UUID "+id))
			return
		}
		writeJSON(w, http.StatusOK, balanceResponse{UUID: u.UUID, Balance: u.Balance})
	})
}

// pathUser reads the UUID path parameter; a malformed one is a 400.
func pathUser(r *http.Request) (string, *Problem) {
	id, err := booking.ParseUserID(mux.Vars(r)["UUID"])
	if err != nil {
		return "", invalid("%s", err.Error())
	}
	return id, nil
}
