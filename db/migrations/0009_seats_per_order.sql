-- An order (one session) may hold several seats of one performance, up to its concert's
-- max_seats_per_order, and one payment pays for all of them. The default of 1 keeps the one-seat contract.
-- HoldSeat counts the session's seats under the session's row lock, so the one-seat unique index goes and a
-- plain index keeps a session's seats quick to find.
ALTER TABLE concerts ADD COLUMN max_seats_per_order INT NOT NULL DEFAULT 1
    CHECK (max_seats_per_order BETWEEN 1 AND 10);
DROP INDEX seats_one_per_session;
CREATE INDEX seats_session ON seats (session_id) WHERE session_id IS NOT NULL;

-- Every seat a payment sold, at the price it was sold for. Its key is the seat, so no seat is paid twice.
-- A payments row keeps the order's first seat (the lowest number) and its total.
CREATE TABLE payment_seats (
    payment_id   UUID      NOT NULL REFERENCES payments (id),
    concert_code TEXT      NOT NULL,
    concert_date TIMESTAMP NOT NULL,
    seat_number  INT       NOT NULL,
    price        BIGINT    NOT NULL CHECK (price >= 0),
    PRIMARY KEY (concert_code, concert_date, seat_number),
    FOREIGN KEY (concert_code, concert_date, seat_number) REFERENCES seats (concert_code, concert_date, seat_number)
);
CREATE INDEX payment_seats_payment ON payment_seats (payment_id);
INSERT INTO payment_seats (payment_id, concert_code, concert_date, seat_number, price)
SELECT id, concert_code, concert_date, seat_number, amount FROM payments;
