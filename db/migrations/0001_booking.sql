-- The store of record of the booking service. Seat ownership is decided here, by conditional UPDATEs and
-- unique indexes, never by workflow or memory state.

CREATE TABLE users (
    uuid       UUID        PRIMARY KEY,
    balance    BIGINT      NOT NULL DEFAULT 0 CHECK (balance >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every change to a balance is one row here; a balance always equals the sum of its user's rows.
CREATE TABLE ledger (
    id         BIGSERIAL   PRIMARY KEY,
    user_uuid  UUID        NOT NULL REFERENCES users (uuid),
    delta      BIGINT      NOT NULL CHECK (delta <> 0),
    kind       TEXT        NOT NULL CHECK (kind IN ('TOPUP', 'PAYMENT')),
    payment_id UUID,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ledger_user ON ledger (user_uuid);

CREATE TABLE concerts (
    code             TEXT        PRIMARY KEY,
    title            TEXT        NOT NULL,
    max_active       INT         NOT NULL CHECK (max_active > 0),
    admission_paused BOOLEAN     NOT NULL DEFAULT false,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE concert_dates (
    concert_code TEXT      NOT NULL REFERENCES concerts (code),
    concert_date TIMESTAMP NOT NULL,
    PRIMARY KEY (concert_code, concert_date)
);

-- A seat is AVAILABLE, HELD by one session until held_until, or SOLD. A HELD seat whose held_until has
-- passed may be taken by another session even before the release activity of the old one has run.
CREATE TABLE seats (
    concert_code   TEXT        NOT NULL,
    concert_date   TIMESTAMP   NOT NULL,
    seat_number    INT         NOT NULL CHECK (seat_number > 0),
    price          BIGINT      NOT NULL CHECK (price >= 0),
    status         TEXT        NOT NULL DEFAULT 'AVAILABLE' CHECK (status IN ('AVAILABLE', 'HELD', 'SOLD')),
    session_id     TEXT,
    reservation_id UUID,
    held_until     TIMESTAMPTZ,
    PRIMARY KEY (concert_code, concert_date, seat_number),
    FOREIGN KEY (concert_code, concert_date) REFERENCES concert_dates (concert_code, concert_date),
    CHECK ((status = 'AVAILABLE') = (session_id IS NULL)),
    CHECK ((status = 'HELD') = (held_until IS NOT NULL))
);
-- One session owns at most one seat, held or sold.
CREATE UNIQUE INDEX seats_one_per_session ON seats (session_id) WHERE session_id IS NOT NULL;
-- Answers "is anything left to sell?" without scanning sold seats.
CREATE INDEX seats_unsold ON seats (concert_code) WHERE status <> 'SOLD';

-- One row per booking session (one run of the session workflow; id is its run ID). The workflow moves it
-- forward; the API reads it to answer status polls and to check tokens without asking Temporal.
-- seq orders the waiting room: sessions are admitted in the order their tokens were issued.
CREATE TABLE sessions (
    id           TEXT        PRIMARY KEY,
    workflow_id  TEXT        NOT NULL,
    concert_code TEXT        NOT NULL REFERENCES concerts (code),
    user_uuid    UUID        NOT NULL REFERENCES users (uuid),
    seq          BIGSERIAL   NOT NULL UNIQUE,
    status       TEXT        NOT NULL CHECK (status IN ('WAITING', 'ACTIVE', 'HELD', 'PAID', 'EXPIRED', 'CANCELLED', 'SOLD_OUT')),
    notified     BOOLEAN     NOT NULL DEFAULT true,
    active_until TIMESTAMPTZ,
    held_until   TIMESTAMPTZ,
    admitted_at  TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    status_since TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sessions_waiting ON sessions (concert_code, seq) WHERE status = 'WAITING';
CREATE INDEX sessions_live ON sessions (concert_code) WHERE status IN ('ACTIVE', 'HELD');
CREATE INDEX sessions_unnotified ON sessions (concert_code) WHERE NOT notified;
CREATE INDEX sessions_admitted ON sessions (concert_code, admitted_at) WHERE admitted_at IS NOT NULL;
CREATE INDEX sessions_user ON sessions (user_uuid, concert_code);

-- A payment sells exactly one seat to exactly one session.
CREATE TABLE payments (
    id             UUID        PRIMARY KEY,
    session_id     TEXT        NOT NULL UNIQUE REFERENCES sessions (id),
    reservation_id UUID        NOT NULL,
    user_uuid      UUID        NOT NULL REFERENCES users (uuid),
    concert_code   TEXT        NOT NULL,
    concert_date   TIMESTAMP   NOT NULL,
    seat_number    INT         NOT NULL,
    amount         BIGINT      NOT NULL CHECK (amount >= 0),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (concert_code, concert_date, seat_number),
    FOREIGN KEY (concert_code, concert_date, seat_number) REFERENCES seats (concert_code, concert_date, seat_number)
);
